"""The router: one query fanned out to every shard of an index, their candidates merged.

The same code serves a plain index (one shard, in this process), a sharded one in this
process, and a sharded one whose shards are Ray Serve deployments: only the
:class:`ShardClient` differs. What must be global to give exactly one index's results is
global here: the BM25 statistics (document count, average length, idf) sent with the query,
the keyword coverage (global idf, the best row over all shards), the background sample (a
threshold on a hash of the passage id, over all shards), and the merge itself: each shard's
top lists are merged by (score, passage id) *before* fusion normalises them.

Rows: the router numbers passages ``shard * STRIDE + row in the shard``; with one shard that
is the row itself.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from indexer.keywords import KeywordMatch, bm25_idf
from indexer.vectors import BACKGROUND_SAMPLE
from qa_service.shard import Ranked, ShardFound, ShardQuery, ShardSearcher, TermStats

STRIDE = 1 << 40


class ShardUnavailable(Exception):
    """A shard did not answer: the request fails whole (never a partial result)."""

    def __init__(self, shard: str, reason: str) -> None:
        super().__init__(f"shard {shard} is unavailable ({reason}); try again shortly")
        self.shard = shard


class Pending(Protocol):
    def result(self) -> Any: ...


class ShardClient(Protocol):
    """How the router reaches one shard: ``call("search", query)`` starts that method of the
    shard's :class:`~qa_service.shard.ShardSearcher` and returns something to wait on, so
    that all shards work at once."""

    name: str

    def call(self, method: str, *args: Any) -> Pending: ...

    def probe(self) -> str | None:
        """None when the shard answers now, else what is wrong (``/readyz``)."""
        ...

    def replicas(self) -> dict[str, int]:
        """The shard's replicas by state (``/stats``, ``/metrics``)."""
        ...


@dataclass(frozen=True)
class _Done:
    value: Any

    def result(self) -> Any:
        return self.value


class LocalShard:
    """A shard in this process (the call is made at once)."""

    def __init__(self, searcher: ShardSearcher, name: str = "0") -> None:
        self.searcher = searcher
        self.name = name

    def call(self, method: str, *args: Any) -> Pending:
        return _Done(getattr(self.searcher, method)(*args))

    def probe(self) -> str | None:
        """None: a shard in this process is always there."""
        return None

    def replicas(self) -> dict[str, int]:
        return {"IN_PROCESS": 1}


def wait(shards: Sequence[ShardClient], pending: Sequence[Pending]) -> list:
    """Wait for every shard; one that fails fails the whole request (no partial results)."""
    results = []
    for shard, p in zip(shards, pending, strict=True):
        try:
            results.append(p.result())
        except ShardUnavailable:
            raise
        except Exception as exc:  # the transport's errors (Ray's) vary
            raise ShardUnavailable(shard.name, f"{type(exc).__name__}: {exc}") from exc
    return results


def gather(shards: Sequence[ShardClient], method: str, *args: Any) -> list:
    """One call on every shard, started at once, results in shard order."""
    return wait(shards, [s.call(method, *args) for s in shards])


# ------------------------------------------------------------------- global statistics


@dataclass(frozen=True)
class IndexStats:
    """What BM25, coverage and the background sample need to know about the whole index."""

    n_docs: int
    total_length: int
    df: dict[str, int]
    k1: float
    b: float
    sample_below: int | None  # the largest sample key in the background sample

    @classmethod
    def combine(
        cls, terms: Sequence[TermStats], samples: Sequence[np.ndarray], k1: float, b: float
    ) -> IndexStats:
        df: dict[str, int] = {}
        for ts in terms:
            for token, n in ts.df.items():
                df[token] = df.get(token, 0) + n
        keys = [np.asarray(s, dtype=np.uint64) for s in samples]
        keys = np.sort(np.concatenate(keys))[:BACKGROUND_SAMPLE] if keys else np.zeros(0)
        return cls(
            n_docs=sum(t.n_docs for t in terms),
            total_length=sum(t.total_length for t in terms),
            df=df,
            k1=k1,
            b=b,
            sample_below=int(keys[-1]) if len(keys) else None,
        )

    @property
    def avg_len(self) -> float:
        return self.total_length / self.n_docs if self.n_docs else 0.0

    def idf(self, token: str) -> float | None:
        df = self.df.get(token)
        return None if df is None else bm25_idf(self.n_docs, df)

    @cached_property
    def max_idf(self) -> float:
        """What a query token the index never saw weighs (the rarest token's idf)."""
        return bm25_idf(self.n_docs, min(self.df.values())) if self.df else 1.0


class GlobalIdf(Mapping):
    """The idf of any token over the whole index, computed on demand (answers weigh query
    words by it)."""

    def __init__(self, stats: IndexStats) -> None:
        self.stats = stats

    def __getitem__(self, token: str) -> float:
        value = self.stats.idf(token)
        if value is None:
            raise KeyError(token)
        return value

    def __iter__(self):
        return iter(self.stats.df)

    def __len__(self) -> int:
        return len(self.stats.df)


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Candidates:
    """Both signals' candidates over the whole index, before fusion. Every dict is keyed by
    router row and ordered best first (ties by passage id)."""

    dense_top: dict[int, float] = field(default_factory=dict)
    dense: dict[int, float] = field(default_factory=dict)  # + exact scores of keyword rows
    keyword: KeywordMatch = KeywordMatch()
    background: float = 0.0
    passage_ids: dict[int, str] = field(default_factory=dict)
    dates: dict[int, int] = field(default_factory=dict)  # date number (YYYYMMDD, 0: none)


class Bounded:
    """A map that forgets its oldest entries past ``size`` (thread-safe)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, default=None):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            return default

    def put(self, key, value) -> None:
        self.update({key: value})

    def update(self, items: Mapping) -> None:
        with self._lock:
            for key, value in items.items():
                self._items[key] = value
                self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._items


def merge(lists: Sequence[tuple[int, Ranked]], want: int) -> list[tuple[float, str, int]]:
    """``(shard, ranked list)`` pairs -> the ``want`` best overall as (score, pid, router row)."""
    merged = [(s, p, shard * STRIDE + r) for shard, items in lists for r, s, p in items]
    merged.sort(key=lambda x: (-x[0], x[1]))
    return merged[:want]


class Router:
    def __init__(self, shards: Sequence[ShardClient], stats: IndexStats) -> None:
        self.shards = list(shards)
        self.stats = stats
        self.idf = GlobalIdf(stats)
        # The dates of candidates lately returned: what a recency boost reads next.
        self.seen_dates = Bounded(100_000)

    @classmethod
    def connect(cls, shards: Sequence[ShardClient], k1: float, b: float) -> Router:
        """A router over these shards, with the statistics of all of them."""
        terms = gather(shards, "term_stats")
        samples = gather(shards, "sample")
        return cls(shards, IndexStats.combine(terms, samples, k1, b))

    @classmethod
    def local(cls, searcher: ShardSearcher) -> Router:
        """A router over one shard in this process (a plain index)."""
        return cls.connect([LocalShard(searcher)], searcher.k1, searcher.b)

    # ------------------------------------------------------------------- rows

    @staticmethod
    def split(row: int) -> tuple[int, int]:
        """(shard, row in the shard) of a router row."""
        return divmod(row, STRIDE)

    @staticmethod
    def by_shard(rows: Sequence[int]) -> dict[int, list[int]]:
        """Router rows grouped by shard, as the shard's rows, order kept."""
        groups: dict[int, list[int]] = {}
        for row in rows:
            shard, local = divmod(row, STRIDE)
            groups.setdefault(shard, []).append(local)
        return groups

    # ----------------------------------------------------------------- search

    def candidates(
        self,
        vector: np.ndarray | None,
        tokens: Sequence[str],
        want: int,
        *,
        dense_top: bool,
        keyword: bool,
        filters=None,
        exclude_rows: Sequence[int] | None = None,
    ) -> Candidates:
        """Every shard's candidates for one query, merged.

        ``vector``: the query's embedding, or None for no dense scores at all; ``dense_top``:
        the dense top list; ``keyword``: BM25 over ``tokens``. With a vector, the keyword
        rows carry exact dense scores too and the background is computed."""
        stats = self.stats
        terms = tuple(t for t in tokens if t in stats.df) if keyword else ()
        query = ShardQuery(
            want=want,
            vector=vector,
            dense_top=dense_top,
            terms=terms,
            idf=tuple(stats.idf(t) for t in terms),
            query_tokens=frozenset(tokens),
            n_docs=stats.n_docs,
            avg_len=stats.avg_len,
            k1=stats.k1,
            b=stats.b,
            filters=filters,
            sample_below=stats.sample_below,
        )
        excluded = self.by_shard(sorted(exclude_rows or ()))
        found: list[ShardFound] = wait(
            self.shards,
            [
                shard.call("search", replace(query, exclude=tuple(excluded.get(i, ()))))
                for i, shard in enumerate(self.shards)
            ],
        )
        top = merge([(i, f.dense_top) for i, f in enumerate(found)], want)
        kw = merge([(i, f.keyword) for i, f in enumerate(found)], want)
        passage_ids = {row: pid for _, pid, row in top} | {row: pid for _, pid, row in kw}
        dense_top_scores = {row: s for s, _, row in top}
        dense: dict[int, float] = {}
        if vector is not None:
            exact = {
                i * STRIDE + r: d
                for i, f in enumerate(found)
                for (r, _, _), d in zip(f.keyword, f.keyword_dense, strict=True)
            }
            dense = {row: exact[row] for _, _, row in kw} | dense_top_scores
        match = KeywordMatch()
        if kw:
            matched = found[kw[0][2] // STRIDE].matched  # the best row's shard knows
            scores = {row: s for s, _, row in kw}
            match = KeywordMatch(scores, self._coverage(tokens, matched), matched)
        background = 0.0
        if vector is not None:
            sample = [f.background for f in found if f.background is not None]
            values = np.concatenate(sample) if sample else np.zeros(0)
            background = float(np.median(values)) if len(values) else 0.0
        dates = {i * STRIDE + r: d for i, f in enumerate(found) for r, d in f.dates.items()}
        self.seen_dates.update(dates)
        return Candidates(dense_top_scores, dense, match, background, passage_ids, dates)

    def _coverage(self, tokens: Sequence[str], matched: frozenset[str]) -> float:
        """The share of the idf mass of the query's known tokens that the best keyword row
        holds (``indexer.keywords.coverage``). Summed in sorted order: the same float in
        every process."""
        stats = self.stats
        total = sum(stats.idf(t) for t in sorted(set(tokens)) if t in stats.df)
        return sum(stats.idf(t) for t in sorted(matched)) / total if total else 0.0

    # ---------------------------------------------------------------- lookups

    def call_all(self, method: str, *args: Any) -> list:
        """The same call on every shard, at once."""
        return gather(self.shards, method, *args)

    def call_some(self, calls: Sequence[tuple[int, str, tuple]]) -> list[Any]:
        """Calls ``(shard, method, args)``, all started at once; their results in order."""
        pending = [self.shards[i].call(method, *args) for i, method, args in calls]
        return wait([self.shards[i] for i, _, _ in calls], pending)

    def call_one(self, shard: int, method: str, *args: Any) -> Any:
        return self.call_some([(shard, method, args)])[0]
