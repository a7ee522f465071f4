"""A shard opened from its files, with only what a query needs in memory.

What a query reads for every passage stays in memory, compactly: the passage id, the BM25
postings (row and term frequency per token of the passage), its length, the filter columns
(date, source, article) and a hash of its text. The vectors are memory-mapped
(``np.load(mmap_mode="r")``): the kernel's page cache holds them, shared by every process
that serves the shard. Texts, articles and tokens stay in SQLite: a query reads the passages
of its final top-k, and an article when one is asked for. BENCHMARKS.md ("Memory per
passage") has the figures against a :class:`~qa_service.index.LoadedIndex`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from indexer import store
from indexer.manifest import IndexStoreError
from indexer.schema import Article, Passage
from indexer.vectors import VECTORS, VectorIndex
from qa_service.index import date_number
from qa_service.shard import Postings, ShardSearcher, text_key


class SqliteRecords:
    """Passages and articles read from a shard's database when asked for.

    One read-only connection, opened now and shared under a lock (each read is a few rows):
    it keeps the file open, so a shard that a later generation reuses (hard links) goes on
    reading even after the directory it was opened from is deleted."""

    def __init__(self, database: Path, sources: list[str]) -> None:
        self.database = database
        self._sources = sources
        self._conn = connect(database)
        self._lock = threading.Lock()
        self._sentences = _sentences(database.parent)

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        if not len(rows):
            return []
        with self._lock:
            return store.read_passages(self._conn, [int(r) for r in rows])

    def article(self, article_id: str) -> Article | None:
        with self._lock:
            return store.read_articles(self._conn, [article_id]).get(article_id)

    def article_rows(self, article_id: str) -> list[int]:
        with self._lock:
            found = self._conn.execute(
                "SELECT vec_id FROM passages WHERE article_id = ? ORDER BY vec_id", (article_id,)
            ).fetchall()
        return [row for (row,) in found]

    def row_of(self, passage_id: str) -> int | None:
        with self._lock:
            found = self._conn.execute(
                "SELECT vec_id FROM passages WHERE passage_id = ?", (passage_id,)
            ).fetchone()
        return None if found is None else found[0]

    def sources(self) -> list[str]:
        return self._sources

    def sentences(self, rows: Sequence[int]) -> list:
        sentences = self._sentences
        return [None if sentences is None else sentences.of_passage(int(r)) for r in rows]


def _sentences(version: Path):
    """The version's stored sentence vectors (``indexer.sentences``), memory-mapped; None
    for an index without them."""
    try:
        from indexer.sentences import SPANS, VECTORS, SentenceIndex
    except ImportError:  # a checkout without stored sentence vectors
        return None
    if not (version / SPANS).exists():
        return None
    spans = np.load(version / SPANS, mmap_mode="r", allow_pickle=False)
    return SentenceIndex(spans, np.load(version / VECTORS, mmap_mode="r", allow_pickle=False))


def connect(database: Path) -> sqlite3.Connection:
    """Read-only; ``immutable``: a version directory never changes, so SQLite need not lock."""
    return sqlite3.connect(
        f"file:{database}?mode=ro&immutable=1", uri=True, check_same_thread=False
    )


def open_shard(version: Path) -> ShardSearcher:
    """Open one index version directory (a plain index, or one shard of a generation),
    checking its files against its manifest first."""
    version = Path(version)
    manifest = store.read_manifest(version)
    store.verify_components(version, manifest)
    settings = manifest.settings
    try:
        vectors = np.load(version / VECTORS, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise IndexStoreError(
            f"The vectors file of {version} is damaged ({exc}). Rebuild."
        ) from exc
    database = version / store.SQLITE
    conn = connect(database)
    try:
        article_ids, article_dates, article_sources = [], [], []
        for aid, date, source in conn.execute(
            "SELECT article_id, date, source FROM articles ORDER BY rowid"
        ):
            article_ids.append(aid)
            article_dates.append(date_number(date))
            article_sources.append(source or "")
        article_row = {a: i for i, a in enumerate(article_ids)}
        passage_ids: list[str] = []
        article_of: list[int] = []
        keys: list[int] = []

        def tokens() -> Iterator[list[str]]:
            for pid, aid, text, toks in conn.execute(
                "SELECT passage_id, article_id, text, tokens FROM passages ORDER BY vec_id"
            ):
                passage_ids.append(pid)
                article_of.append(article_row[aid])
                keys.append(text_key(text))
                yield toks.split(" ") if toks else []

        postings = Postings.build(tokens())
    except sqlite3.DatabaseError as exc:
        raise IndexStoreError(
            f"The index database {database} is damaged ({exc}). Rebuild."
        ) from exc
    finally:
        conn.close()
    if vectors.shape[0] != len(passage_ids):
        raise IndexStoreError(
            f"The index has {len(passage_ids)} passages but {vectors.shape[0]} vectors. Rebuild."
        )
    source_names = sorted(set(article_sources))
    code = {s: i for i, s in enumerate(source_names)}
    of = np.asarray(article_of, dtype=np.int32)
    dates = np.asarray(article_dates, dtype=np.int32)
    sources = np.asarray([code[s] for s in article_sources], dtype=np.int32)
    return ShardSearcher(
        version=version.name,
        passage_ids=passage_ids,
        vectors=vectors,
        vector_index=(
            None
            if settings.faiss_kind == "flat"
            else VectorIndex.load(version, settings.faiss_kind, vectors=np.asarray(vectors))
        ),
        postings=postings,
        dates=dates[of] if len(of) else np.zeros(0, np.int32),
        source_names=source_names,
        source_of=sources[of] if len(of) else np.zeros(0, np.int32),
        article_of=of,
        article_row=article_row,
        text_keys=np.asarray(keys, dtype=np.uint64),
        records=SqliteRecords(database, [s for s in source_names if s]),
        k1=settings.bm25_k1,
        b=settings.bm25_b,
    )
