"""The embedding model as the indexer and the service use it.

A thin layer over sentence-transformers: the model's own query/document prompts are applied
by ``encode_query`` / ``encode_document``, vectors come back L2-normalised float32 so that
inner product is cosine similarity (what the FAISS index expects).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from indexer import models, script
from indexer.settings import Settings, get_settings

# Nothing may reach a model hub at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def single_thread_blas() -> None:
    """Run the pthreads builds of OpenBLAS (numpy's, scipy's) on one thread, process-wide.

    Their work here is small (a query against a sample of vectors, norms), but after each call
    their worker threads keep spinning for a while, and on a machine with few cores they take
    the cores torch needs for the next forward pass: a 12-character query took ~120 ms to
    embed right after a search instead of ~45 ms (BENCHMARKS.md, "Fast query path"). torch's
    and faiss's OpenMP threads (and faiss's OpenMP build of OpenBLAS) are left alone."""
    from threadpoolctl import ThreadpoolController

    ThreadpoolController().select(threading_layer="pthreads").limit(limits=1)


def cpu_has_bf16() -> bool:
    """Does this CPU compute bfloat16 natively (AVX512-BF16 or AMX)? Elsewhere torch emulates
    it, several times slower than float32."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(dtype: str) -> str:
    """``auto`` is bfloat16 where the CPU has it (about 2x faster, the same retrieval quality,
    see BENCHMARKS.md), float32 elsewhere."""
    if dtype == "auto":
        return "bfloat16" if cpu_has_bf16() else "float32"
    return dtype


@dataclass(frozen=True)
class ModelIdentity:
    """What an index records about the model that built it."""

    name: str
    checksum: str
    dimension: int


class Embedder:
    def __init__(
        self,
        model: str | None = None,
        settings: Settings | None = None,
        dtype: str | None = None,
    ) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        self.settings = settings or get_settings()
        name = model or self.settings.model
        path = models.resolve(name, self.settings.models_dir)
        if self.settings.torch_threads:
            torch.set_num_threads(self.settings.torch_threads)
        dtype = resolve_dtype(dtype or self.settings.model_dtype)
        kwargs = {"torch_dtype": torch.bfloat16} if dtype == "bfloat16" else {}
        self.dtype = dtype
        self.path: Path = path
        self.model = SentenceTransformer(
            str(path), device="cpu", local_files_only=True, model_kwargs=kwargs
        )
        single_thread_blas()  # after the imports above have loaded every BLAS
        info = models.describe(path)
        dim = self.model.get_embedding_dimension() or info.dimension or 0
        self.identity = ModelIdentity(info.name, info.checksum, int(dim))
        # One forward pass at a time: torch already spreads one pass over every core, and
        # concurrent passes from server threads only thrash the CPU caches and threads.
        self._lock = threading.Lock()
        # Queries, passages and answer sentences are embedded in folded script: a simplified
        # question is then as close to a traditional passage as to its simplified original
        # (indexer.script; BENCHMARKS.md). The tokenizer's fingerprint records the setting.
        self.script_fold = self.settings.script_fold

    @property
    def dimension(self) -> int:
        return self.identity.dimension

    def _encode(self, fn, texts: list[str], batch_size: int | None, progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.script_fold:
            texts = [script.fold(t) for t in texts]
        batch = batch_size or self.settings.embed_batch_size
        order = np.argsort([-len(t) for t in texts], kind="stable")  # similar lengths pad less
        texts = [texts[i] for i in order]
        parts = []
        with tqdm(total=len(texts), desc="embedding", unit="passage", disable=not progress) as bar:
            for i in range(0, len(texts), batch):
                # Locked per batch, so a long indexing job never stalls queries for long.
                with self._lock:
                    parts.append(
                        fn(
                            texts[i : i + batch],
                            batch_size=batch,
                            normalize_embeddings=True,
                            convert_to_numpy=True,
                            show_progress_bar=False,
                        )
                    )
                bar.update(len(parts[-1]))
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        vectors[order] = np.concatenate(parts)
        # Normalised again in float32: bfloat16 arithmetic leaves norms up to ~0.5% off 1.
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def encode_query(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        return self._encode(self.model.encode_query, texts, batch_size, False)

    def encode_document(
        self, texts: list[str], batch_size: int | None = None, progress: bool = False
    ) -> np.ndarray:
        return self._encode(self.model.encode_document, texts, batch_size, progress)
