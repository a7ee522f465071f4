"""A sharded index as the engine reads it: the router over its shards, and the passages and
articles of whichever shard holds them, by router row.

:class:`ShardedIndex` offers what the engine and the HTTP layer read of a
:class:`~qa_service.index.LoadedIndex` (``passages[row]``, ``articles.get``,
``article_passages``, ``passage_by_id``, ``vectors[rows]``, ``same_text_rows``, ``idf``), so
``Engine`` and the response models serve both unchanged. Passages are read from their shard
when a query has ranked them (``prefetch``: the final top-k only, one call per shard) and
kept in a small cache; nothing else of a shard's text is held here.

The shards are in this process (:func:`load`) or Ray Serve deployments
(``qa_service.serve_ray``): only the :class:`~qa_service.router.ShardClient` differs.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexer import shards as layout
from indexer.clean import squash
from indexer.manifest import Manifest
from indexer.schema import Article, Passage
from qa_service.router import STRIDE, Bounded, LocalShard, Router, ShardClient
from qa_service.shard import ShardSearcher

#: Passages and articles kept after a query read them (enough for many concurrent answers).
CACHE_ENTRIES = 20_000
#: What is read of each passage a query ranked: the passage, and its stored sentences.
READS = ("passages", "sentences")


@dataclass(frozen=True)
class Files:
    """What the service reads of an index's content besides passages and articles."""

    files: dict[str, str] = field(default_factory=dict)


class ShardedIndex:
    def __init__(
        self, path: Path, opened: layout.OpenGeneration, clients: Sequence[ShardClient]
    ) -> None:
        generation = opened.generation
        self.path = Path(path)
        self.opened = opened
        self.version = opened.path.name
        self.manifest: Manifest = generation.manifest()
        self.content = Files(dict(generation.source_files))
        self.clients = list(clients)
        self.router = Router.connect(
            clients, generation.settings.bm25_k1, generation.settings.bm25_b
        )
        self.shard_info: list[dict] = self.router.call_all("describe")
        self.source_names = sorted({s for info in self.shard_info for s in info["sources"]})
        self.idf = self.router.idf
        self._passages = Bounded(CACHE_ENTRIES)
        self._sentences = Bounded(CACHE_ENTRIES)
        self._articles = Bounded(CACHE_ENTRIES)
        self.passages = _Passages(self)
        self.articles = _Articles(self)
        self.passage_by_id = _PassageIds(self)
        self.vectors = _Vectors(self)
        self.dates = _Dates(self)

    @property
    def shard_count(self) -> int:
        return len(self.clients)

    def unready(self) -> str | None:
        """None when every shard of this generation answers now; else which does not."""
        return next((p for p in (c.probe() for c in self.clients) if p), None)

    def topology(self) -> list[dict]:
        """Each shard: its version, what it holds, and its replicas by state."""
        return [
            {
                "shard": client.name,
                "version": info["version"],
                "articles": info["articles"],
                "passages": info["passages"],
                "replicas": client.replicas(),
            }
            for client, info in zip(self.clients, self.shard_info, strict=True)
        ]

    # ------------------------------------------------------------------ passages

    def prefetch(self, rows: Sequence[int]) -> None:
        """Read the passages of these router rows that are not cached, one call per shard."""
        missing = [r for r in dict.fromkeys(rows) if r not in self._passages]
        groups = self.router.by_shard(missing)
        calls = [(i, what, (locals_,)) for i, locals_ in groups.items() for what in READS]
        found = iter(self.router.call_some(calls))
        for i, locals_ in groups.items():
            passages, sentences = next(found), next(found)
            for local, passage, stored in zip(locals_, passages, sentences, strict=True):
                self._sentences.put(i * STRIDE + local, stored)
                self._passages.put(i * STRIDE + local, passage)

    def passage(self, row: int) -> Passage:
        passage = self._passages.get(row)
        if passage is None:
            self.prefetch([row])
            passage = self._passages.get(row)
        return passage

    def passage_sentences(self, row: int):
        """The passage's stored sentences and their vectors (None: an index without them),
        as ``LoadedIndex.passage_sentences``; read with the passage."""
        self.passage(row)
        return self._sentences.get(row)

    # ------------------------------------------------------------------ articles

    def _article(self, article_id: str) -> tuple[Article | None, list[int]]:
        """The article and its router rows, read from the shard its id hashes to."""
        cached = self._articles.get(article_id)
        if cached is not None:
            return cached
        shard = layout.shard_of(article_id, self.shard_count)
        article, rows = self.router.call_one(shard, "article", article_id)
        found = (article, [shard * STRIDE + r for r in rows])
        if article is not None:
            self._articles.put(article_id, found)
        return found

    def article_passages(self, article_id: str) -> list[int]:
        rows = self._article(article_id)[1]
        self.prefetch(rows)
        return rows

    def same_text_rows(self, row: int) -> list[int]:
        """Passages whose text equals this one's, white space aside, in any shard."""
        key = squash(self.passage(row).text)
        found = self.router.call_all("rows_with_text", key)
        return [i * STRIDE + r for i, rows in enumerate(found) for r in rows]


class _Passages:
    def __init__(self, index: ShardedIndex) -> None:
        self.index = index

    def __getitem__(self, row: int) -> Passage:
        return self.index.passage(row)

    def __len__(self) -> int:
        return sum(info["passages"] for info in self.index.shard_info)


class _Articles:
    def __init__(self, index: ShardedIndex) -> None:
        self.index = index

    def get(self, article_id: str, default=None) -> Article | None:
        article = self.index._article(article_id)[0]
        return default if article is None else article

    def __getitem__(self, article_id: str) -> Article:
        article = self.get(article_id)
        if article is None:
            raise KeyError(article_id)
        return article

    def __contains__(self, article_id: object) -> bool:
        return isinstance(article_id, str) and self.get(article_id) is not None

    def __len__(self) -> int:
        return sum(info["articles"] for info in self.index.shard_info)

    def __iter__(self) -> Iterator[str]:
        raise TypeError("a sharded index does not list its articles; ask for one by id")


class _PassageIds:
    def __init__(self, index: ShardedIndex) -> None:
        self.index = index

    def get(self, passage_id: str, default=None) -> int | None:
        for i, row in enumerate(self.index.router.call_all("row_of", passage_id)):
            if row is not None:
                return i * STRIDE + row
        return default


class _Vectors:
    def __init__(self, index: ShardedIndex) -> None:
        self.index = index

    def __getitem__(self, rows) -> np.ndarray:
        one = isinstance(rows, int | np.integer)
        wanted = [int(rows)] if one else [int(r) for r in rows]
        groups = self.index.router.by_shard(wanted)
        found = self.index.router.call_some([(i, "vectors_of", (g,)) for i, g in groups.items()])
        by_row = {
            i * STRIDE + local: vectors[k]
            for (i, g), vectors in zip(groups.items(), found, strict=True)
            for k, local in enumerate(g)
        }
        stacked = np.stack([by_row[r] for r in wanted])
        return stacked[0] if one else stacked


class _Dates:
    """Each passage's date number (YYYYMMDD, 0: none), as the recency boost reads it: the
    dates of a query's candidates came back with them; others are asked for."""

    def __init__(self, index: ShardedIndex) -> None:
        self.index = index

    def __getitem__(self, row: int) -> int:
        seen = self.index.router.seen_dates
        date = seen.get(row)
        if date is None:
            shard, local = divmod(int(row), STRIDE)
            date = self.index.router.call_one(shard, "dates_of", [local])[0]
            seen.put(row, date)
        return date

    def __len__(self) -> int:
        return len(self.index.passages)

    def max(self) -> int:
        return max((info["newest"] for info in self.index.shard_info), default=0)


# ------------------------------------------------------------------------------ loading

# Shards in memory by version directory name: a new generation reuses the shards it did not
# change (their version name is the same) instead of reading them again.
_live: weakref.WeakValueDictionary[str, ShardSearcher] = weakref.WeakValueDictionary()


def _searcher(opened: layout.OpenGeneration, i: int) -> ShardSearcher:
    from qa_service.shard_disk import open_shard

    version = opened.generation.shards[i].version
    searcher = _live.get(version)
    if searcher is None:
        searcher = _live[version] = open_shard(opened.shard_version(i))
    return searcher


def _local(opened: layout.OpenGeneration) -> list[LocalShard]:
    """Every shard of the generation in this process."""
    return [
        LocalShard(_searcher(opened, i), entry.name)
        for i, entry in enumerate(opened.generation.shards)
    ]


def load(index_path: Path) -> ShardedIndex:
    """A sharded index with every shard in this process, read lean (``shard_disk``)."""
    opened = layout.read_generation(index_path)
    return ShardedIndex(Path(index_path), opened, _local(opened))


def from_written(index_path: Path, written: layout.WrittenGeneration) -> ShardedIndex:
    """The generation a write just produced: the shards it wrote read back lean, the others
    as they are already loaded."""
    opened = layout.OpenGeneration(written.version, written.generation)
    return ShardedIndex(Path(index_path), opened, _local(opened))
