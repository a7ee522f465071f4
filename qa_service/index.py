"""The index as the service reads it: loaded once, read-only, all in memory.

A :class:`LoadedIndex` is immutable once built. Admin writes build a new one and swap the
reference the app holds, so a reader never sees a half-updated index.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer import store
from indexer.schema import Article, Passage


@dataclass
class LoadedIndex:
    path: Path
    version: str
    manifest: dict
    content: store.IndexContent
    faiss_index: object
    bm25: object | None
    passage_by_id: dict[str, int]
    article_of: np.ndarray  # passage row -> article row
    article_ids: list[str]
    dates: np.ndarray  # per passage, ISO string or "" (for date filters)
    sources: np.ndarray  # per passage, source or ""
    idf: dict[str, float]
    background: np.ndarray  # a fixed, evenly spaced sample of vectors (see Retriever.background)

    @property
    def passages(self) -> list[Passage]:
        return self.content.passages

    @property
    def articles(self) -> dict[str, Article]:
        return self.content.articles

    @property
    def vectors(self) -> np.ndarray:
        return self.content.vectors  # type: ignore[return-value]

    def article_passages(self, article_id: str) -> list[int]:
        row = self._article_row.get(article_id)
        if row is None:
            return []
        return np.flatnonzero(self.article_of == row).tolist()

    def __post_init__(self) -> None:
        self._article_row = {a: i for i, a in enumerate(self.article_ids)}


def _idf(tokens: list[list[str]]) -> dict[str, float]:
    """BM25's idf per token; used to weigh how much of a query the keyword signal matched."""
    n = len(tokens)
    df: dict[str, int] = {}
    for doc in tokens:
        for t in set(doc):
            df[t] = df.get(t, 0) + 1
    return {t: float(np.log(1 + (n - d + 0.5) / (d + 0.5))) for t, d in df.items()}


def _background(vectors: np.ndarray | None, size: int = 2048) -> np.ndarray:
    if vectors is None or len(vectors) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    step = max(1, len(vectors) // size)
    return np.ascontiguousarray(vectors[::step][:size])


def from_content(
    path: Path, version: str, manifest: dict, content: store.IndexContent, faiss_index, bm25
):
    article_ids = list(content.articles)
    row_of = {a: i for i, a in enumerate(article_ids)}
    article_of = np.array([row_of[p.article_id] for p in content.passages], dtype=np.int64)
    dates = np.array(
        [content.articles[p.article_id].date or "" for p in content.passages], dtype=object
    )
    sources = np.array(
        [content.articles[p.article_id].source or "" for p in content.passages], dtype=object
    )
    return LoadedIndex(
        path=path,
        version=version,
        manifest=manifest,
        content=content,
        faiss_index=faiss_index,
        bm25=bm25,
        passage_by_id={p.passage_id: i for i, p in enumerate(content.passages)},
        article_of=article_of,
        article_ids=article_ids,
        dates=dates,
        sources=sources,
        idf=_idf(content.tokens),
        background=_background(content.vectors),
    )


def load(index_path: Path) -> LoadedIndex:
    """Load and verify the index the path points at now (raises ``IndexStoreError``)."""
    version = store.resolve_version(index_path)
    manifest, content = store.load_version_content(version)
    faiss_index, bm25 = store.load_search_structures(version, manifest)
    return from_content(Path(index_path), version.name, manifest, content, faiss_index, bm25)
