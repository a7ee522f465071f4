"""The vector component: passage vectors and the FAISS index over them.

``vectors.npy`` (float32, row i = passage with vec_id i) is the truth; ``faiss.index`` is
derived from it and rebuilt on every write. Vectors are L2-normalised, so inner product is
cosine similarity. One class, build/save/load/search, as txtai's ``ann`` backends do.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

VECTORS = "vectors.npy"
FAISS = "faiss.index"
FILES = (VECTORS, FAISS)

# FAISS parameters, chosen with `python -m eval bench vectors` (BENCHMARKS.md).
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128  # real questions: recall@10 0.986 (0.958 with 64) for ~0.2 ms more
IVF_MIN_VECTORS = 1024  # below this there is too little to train the lists on
BACKGROUND_SAMPLE = 2048


def ivf_lists(n: int) -> tuple[int, int]:
    """(nlist, nprobe) of an IVF index over ``n`` vectors."""
    nlist = max(16, int(4 * np.sqrt(n)))
    return nlist, max(8, nlist // 16)


def build_faiss(vectors: np.ndarray, kind: str):
    """An inner-product FAISS index over normalised vectors; ids are row numbers.

    "flat" (exact) is the default: at 100k passages it answers in ~20 ms, below the query
    embedding, with nothing to train."""
    import faiss

    n, dim = vectors.shape if vectors.ndim == 2 else (0, vectors.shape[-1])
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    elif kind == "ivf" and n >= IVF_MIN_VECTORS:
        nlist, nprobe = ivf_lists(n)
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = nprobe
    else:  # exact; also IVF on collections too small to train
        index = faiss.IndexFlatIP(dim)
    if n:
        index.add(vectors)
    return index


@dataclass(frozen=True)
class VectorIndex:
    vectors: np.ndarray  # (n, dim) float32, normalised
    faiss_index: object
    kind: str = "flat"

    @classmethod
    def build(cls, vectors: np.ndarray, kind: str = "flat") -> VectorIndex:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        return cls(vectors, build_faiss(vectors, kind), kind)

    def save(self, folder: Path) -> None:
        import faiss

        np.save(Path(folder) / VECTORS, self.vectors, allow_pickle=False)
        faiss.write_index(self.faiss_index, str(Path(folder) / FAISS))

    @staticmethod
    def load_vectors(folder: Path) -> np.ndarray:
        from indexer.manifest import IndexStoreError

        try:
            return np.load(Path(folder) / VECTORS, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise IndexStoreError(
                f"The vectors file of {folder} is damaged ({exc}). Rebuild."
            ) from exc

    @classmethod
    def load(cls, folder: Path, kind: str = "flat", vectors: np.ndarray | None = None):
        import faiss

        from indexer.manifest import IndexStoreError

        if vectors is None:
            vectors = cls.load_vectors(folder)
        try:
            faiss_index = faiss.read_index(str(Path(folder) / FAISS))
        except RuntimeError as exc:
            raise IndexStoreError(
                f"The FAISS index of {folder} cannot be read ({exc}). Rebuild."
            ) from exc
        if faiss_index.ntotal != len(vectors):
            raise IndexStoreError(
                f"The FAISS index of {folder} holds {faiss_index.ntotal} vectors, "
                f"vectors.npy {len(vectors)}. Rebuild."
            )
        return cls(vectors, faiss_index, kind)

    def __len__(self) -> int:
        return len(self.vectors)

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> dict[int, float]:
        """The ``k`` nearest rows by inner product; ``allowed`` is a boolean row mask."""
        import faiss

        n = len(self.vectors)
        if n == 0 or k <= 0:
            return {}
        k = min(k, n)
        q = query.reshape(1, -1).astype(np.float32)
        if allowed is None:
            scores, ids = self.faiss_index.search(q, k)
        else:
            rows = np.flatnonzero(allowed).astype(np.int64)
            if len(rows) == 0:
                return {}
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(rows))
            scores, ids = self.faiss_index.search(q, min(k, len(rows)), params=params)
        return {int(i): float(s) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0}

    def scores(self, query: np.ndarray, rows: list[int]) -> dict[int, float]:
        """Exact similarities of chosen rows (those another signal found)."""
        if not rows:
            return {}
        sims = self.vectors[rows] @ query
        return dict(zip(rows, sims.tolist(), strict=True))

    def background(self, query: np.ndarray) -> float:
        """Median similarity of the query to a fixed, evenly spaced sample of the collection:
        what "unrelated" looks like for this query (answer confidence compares against it)."""
        sample = self._background_sample
        return float(np.median(sample @ query)) if len(sample) else 0.0

    @cached_property
    def _background_sample(self) -> np.ndarray:
        step = max(1, len(self.vectors) // BACKGROUND_SAMPLE)
        return np.ascontiguousarray(self.vectors[::step][:BACKGROUND_SAMPLE])
