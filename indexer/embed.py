"""The embedding model as the indexer and the service use it.

A thin layer over sentence-transformers: the model's own query/document prompts are applied
by ``encode_query`` / ``encode_document``, vectors come back L2-normalised float32 so that
inner product is cosine similarity (what the FAISS index expects).

The model runs on the CPU or on a CUDA GPU (the ``device`` setting); on a GPU in half
precision (bfloat16 where the card has it, else float16) and in large batches. Either way the
vectors are normalised again in float32, so an index has one format whatever built it.
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


#: Passages per forward pass when ``embed_batch_size`` is unset. On a CPU larger batches gain
#: nothing (one pass already fills the cores); a GPU needs hundreds of passages per pass to be
#: busy (about 18,000 passages/s in bfloat16 at 256, 20,000 at 1,024 on an H200; see
#: ../shared/MODELS.md), and 512 short passages of a small model fit any card.
DEFAULT_BATCH_SIZE = {"cpu": 32, "cuda": 512}


class DeviceError(RuntimeError):
    """The device asked for is not on this machine; the message says what to set instead."""


def resolve_device(device: str) -> str:
    """``cpu`` or ``cuda:N``: ``auto`` is the current CUDA GPU when torch sees one, else the
    CPU; ``cuda`` and ``cuda:N`` must exist, or :class:`DeviceError` says so plainly."""
    if device == "cpu":
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        if device == "auto":
            return "cpu"
        why = (
            f"this torch ({torch.__version__}) was built without CUDA"
            if torch.version.cuda is None
            else "no GPU is visible (check the driver and CUDA_VISIBLE_DEVICES)"
        )
        raise DeviceError(
            f"the device setting is {device!r} (NEWSQA_DEVICE), but there is no CUDA GPU on "
            f"this machine: {why}. Set NEWSQA_DEVICE=cpu, or auto to use a GPU only where "
            "there is one."
        )
    if device in ("auto", "cuda"):
        return f"cuda:{torch.cuda.current_device()}"
    number, count = int(device.split(":", 1)[1]), torch.cuda.device_count()
    if number >= count:
        raise DeviceError(
            f"the device setting is {device!r} (NEWSQA_DEVICE), but this machine has {count} "
            f"CUDA GPU(s): cuda:0 to cuda:{count - 1}."
        )
    return device


def resolve_dtype(dtype: str, device: str = "cpu") -> str:
    """``auto`` on a CPU is bfloat16 where the CPU has it (about 2x faster, the same retrieval
    quality, see BENCHMARKS.md), float32 elsewhere; on a GPU it is bfloat16 where the card
    computes it (compute capability 8.0 and later), else float16."""
    if dtype != "auto":
        return dtype
    if device == "cpu":
        return "bfloat16" if cpu_has_bf16() else "float32"
    import torch

    return "bfloat16" if torch.cuda.is_bf16_supported(including_emulation=False) else "float16"


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
        self.settings = settings or get_settings()
        # The device first: a missing GPU is said before anything heavy is loaded.
        self.device = resolve_device(self.settings.device)
        import torch
        from sentence_transformers import SentenceTransformer

        name = model or self.settings.model
        path = models.resolve(name, self.settings.models_dir)
        if self.settings.torch_threads:
            torch.set_num_threads(self.settings.torch_threads)
        dtype = resolve_dtype(dtype or self.settings.model_dtype, self.device)
        half = {"bfloat16": torch.bfloat16, "float16": torch.float16}
        kwargs = {"torch_dtype": half[dtype]} if dtype in half else {}
        self.dtype = dtype
        kind = self.device.split(":", 1)[0]
        self.batch_size: int = self.settings.embed_batch_size or DEFAULT_BATCH_SIZE[kind]
        self.path: Path = path
        self.model = SentenceTransformer(
            str(path), device=self.device, local_files_only=True, model_kwargs=kwargs
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

    def build_info(self) -> dict[str, str]:
        """How this embedder computes, as an index's manifest records it (``build``)."""
        info = {"device": self.device, "dtype": self.dtype}
        if self.device != "cpu":
            import torch

            info["gpu"] = torch.cuda.get_device_name(self.device)
        return info

    def _encode(self, fn, texts: list[str], batch_size: int | None, progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.script_fold:
            texts = [script.fold(t) for t in texts]
        batch = batch_size or self.batch_size
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
