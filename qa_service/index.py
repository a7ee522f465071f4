"""The index as the service reads it: loaded once, read-only, all in memory.

A :class:`LoadedIndex` is immutable once built. Admin writes build a new one and swap the
reference the app holds, so a reader never sees a half-updated index. A sharded index
(``indexer.shards``) loads as a :class:`qa_service.sharded.ShardedIndex`, which reads the
same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from indexer import shards, store
from indexer.clean import squash
from indexer.keywords import KeywordIndex
from indexer.manifest import Manifest
from indexer.schema import Article, Passage
from indexer.vectors import VectorIndex


@dataclass
class LoadedIndex:
    """Everything a request reads, precomputed at load so that no request scans the index."""

    path: Path
    version: str
    manifest: Manifest
    content: store.IndexContent
    vector_index: VectorIndex
    keyword_index: KeywordIndex
    passage_by_id: dict[str, int]
    article_of: np.ndarray  # passage row -> article row
    article_ids: list[str]
    article_row: dict[str, int]
    rows_of_article: list[list[int]]  # article row -> its passage rows, in order
    dates: np.ndarray  # per passage, YYYYMMDD as int32, 0 when unknown (date filters)
    source_names: list[str]  # distinct sources ("" for none)
    source_of: np.ndarray  # per passage, index into source_names
    rows_by_text: dict[int, list[int]]  # hash of the white-space-free text -> passage rows

    @property
    def passages(self) -> list[Passage]:
        return self.content.passages

    @property
    def articles(self) -> dict[str, Article]:
        return self.content.articles

    @property
    def vectors(self) -> np.ndarray:
        return self.vector_index.vectors

    @property
    def idf(self) -> dict[str, float]:
        return self.keyword_index.idf

    def passage_sentences(self, row: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``(spans, vectors)`` of passage ``row``'s sentences, stored at index time
        (``indexer.sentences``); None for an index written before sentence vectors."""
        sentences = self.content.sentences
        return None if sentences is None else sentences.of_passage(row)

    @cached_property
    def router(self):
        """Candidates for a query (``qa_service.router``): this index as one shard."""
        from qa_service.router import Router
        from qa_service.shard import ShardSearcher

        return Router.local(ShardSearcher.from_loaded(self))

    def prefetch(self, rows) -> None:
        """Nothing to do: every passage is in memory (a sharded index reads them here)."""

    def unready(self) -> str | None:
        """None: loaded is ready (a sharded index asks its shards)."""
        return None

    def topology(self) -> list[dict] | None:
        """None: not sharded (a sharded index lists its shards and their replicas)."""
        return None

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


def from_content(
    path: Path,
    version: str,
    manifest: Manifest,
    content: store.IndexContent,
    vector_index: VectorIndex,
    keyword_index: KeywordIndex,
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
    return LoadedIndex(
        path=path,
        version=version,
        manifest=manifest,
        content=content,
        vector_index=vector_index,
        keyword_index=keyword_index,
        passage_by_id={p.passage_id: i for i, p in enumerate(content.passages)},
        article_of=article_of,
        article_ids=article_ids,
        article_row=article_row,
        rows_of_article=rows_of_article,
        dates=per_article_date[article_of] if len(article_of) else np.zeros(0, np.int32),
        source_names=source_names,
        source_of=per_article_source[article_of] if len(article_of) else np.zeros(0, np.int32),
        rows_by_text=rows_by_text,
    )


def load(index_path: Path) -> LoadedIndex:
    """Load and verify the index the path points at now (raises ``IndexStoreError``)."""
    if shards.is_sharded(index_path):
        from qa_service import sharded

        return sharded.load(index_path)
    version = store.resolve_version(index_path)
    manifest, content = store.load_version_content(version)
    vectors, keywords = store.load_search_structures(version, manifest, content)
    return from_content(Path(index_path), version.name, manifest, content, vectors, keywords)


def from_written(index_path: Path, written: store.WrittenIndex, content) -> LoadedIndex:
    """The index a write just produced, from memory (no second read from disk)."""
    if isinstance(written, shards.WrittenGeneration):
        from qa_service import sharded

        return sharded.from_written(index_path, written)
    return from_content(
        Path(index_path),
        written.version.name,
        written.manifest,
        content,
        written.vectors,
        written.keywords,
    )
