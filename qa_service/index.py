"""The index as the service reads it: loaded once, read-only, all in memory.

A :class:`LoadedIndex` is immutable once built. Admin writes build a new one and swap the
reference the app holds, so a reader never sees a half-updated index.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer import store
from indexer.clean import squash
from indexer.schema import Article, Passage


@dataclass
class LoadedIndex:
    """Everything a request reads, precomputed at load so that no request scans the index."""

    path: Path
    version: str
    manifest: dict
    content: store.IndexContent
    faiss_index: object
    bm25: object | None
    passage_by_id: dict[str, int]
    article_of: np.ndarray  # passage row -> article row
    article_ids: list[str]
    article_row: dict[str, int]
    rows_of_article: list[list[int]]  # article row -> its passage rows, in order
    dates: np.ndarray  # per passage, YYYYMMDD as int32, 0 when unknown (date filters)
    source_names: list[str]  # distinct sources ("" for none)
    source_of: np.ndarray  # per passage, index into source_names
    rows_by_text: dict[int, list[int]]  # hash of the white-space-free text -> passage rows
    idf: dict[str, float]
    max_idf: float  # what a query token the collection never saw weighs
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
        row = self.article_row.get(article_id)
        return [] if row is None else self.rows_of_article[row]

    def same_text_rows(self, row: int) -> list[int]:
        """Passages whose text equals this one's, white space aside (the row itself included)."""
        key = squash(self.passages[row].text)
        return [
            r for r in self.rows_by_text.get(hash(key), []) if squash(self.passages[r].text) == key
        ]


def date_number(iso: str | None) -> int:
    """``2023-02-08`` -> 20230208, comparable as numbers; 0 for no date."""
    return int(iso.replace("-", "")) if iso else 0


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
) -> LoadedIndex:
    article_ids = list(content.articles)
    article_row = {a: i for i, a in enumerate(article_ids)}
    article_of = np.array([article_row[p.article_id] for p in content.passages], dtype=np.int64)
    rows_of_article: list[list[int]] = [[] for _ in article_ids]
    rows_by_text: dict[int, list[int]] = {}
    for row, p in enumerate(content.passages):
        rows_of_article[article_of[row]].append(row)
        rows_by_text.setdefault(hash(squash(p.text)), []).append(row)
    articles = [content.articles[a] for a in article_ids]
    source_names = sorted({a.source or "" for a in articles})
    source_code = {s: i for i, s in enumerate(source_names)}
    per_article_source = np.array([source_code[a.source or ""] for a in articles], dtype=np.int32)
    per_article_date = np.array([date_number(a.date) for a in articles], dtype=np.int32)
    idf = _idf(content.tokens)
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
        article_row=article_row,
        rows_of_article=rows_of_article,
        dates=per_article_date[article_of] if len(article_of) else np.zeros(0, np.int32),
        source_names=source_names,
        source_of=per_article_source[article_of] if len(article_of) else np.zeros(0, np.int32),
        rows_by_text=rows_by_text,
        idf=idf,
        max_idf=max(idf.values(), default=1.0),
        background=_background(content.vectors),
    )


def load(index_path: Path) -> LoadedIndex:
    """Load and verify the index the path points at now (raises ``IndexStoreError``)."""
    version = store.resolve_version(index_path)
    manifest, content = store.load_version_content(version)
    faiss_index, bm25 = store.load_search_structures(version, manifest)
    return from_content(Path(index_path), version.name, manifest, content, faiss_index, bm25)
