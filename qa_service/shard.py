"""One shard's part of a query: candidates from its own passages, scored with the statistics
of the whole index, so that merging every shard's candidates (``qa_service.router``) gives
exactly the ranking one index of all the passages gives.

A plain index is one shard; a sharded one (``indexer.shards``) has N. A shard never
normalises or fuses scores (that needs every shard's candidates: the router does it once).
Every score it returns is a property of the passage and the query alone, never of which other
passages share its shard:

- dense: the vector index (or a matrix product, for exact search) only *picks* candidates;
  each is then scored by :func:`exact_dense`: float64 products of the stored float32 vectors
  (exact) summed row by row in a fixed order, so a passage gets the same score whichever
  rows share its BLAS call. For exact search enough candidates are picked that no passage
  outside them can reach the k-th score (:data:`APPROX_TOL`);
- BM25: Lucene's formula (as bm25s) from term frequencies and lengths kept here, with the
  document count, average length and idf of the whole index passed in by the router, summed
  per passage in query-token order;
- ties: broken by passage id, everywhere;
- the background sample (what "unrelated" looks like for a query): the passages with the
  smallest :func:`sample_key`, a hash of the passage id, over the whole index.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from indexer.clean import squash
from indexer.vectors import BACKGROUND_SAMPLE

if TYPE_CHECKING:
    from indexer.schema import Article, Passage
    from indexer.vectors import VectorIndex
    from qa_service.index import LoadedIndex
    from qa_service.retrieval import Filters

#: Candidates picked beyond the k wanted before exact rescoring (exact search).
DENSE_MARGIN = 32
#: How far a float32 inner product of unit vectors may be from the exact one (it is ~1e-6).
APPROX_TOL = 1e-4


def exact_dense(vectors: np.ndarray, rows: Sequence[int] | np.ndarray, query: np.ndarray):
    """Inner products of the query with the vectors of ``rows`` (float64): the products of two
    float32 numbers are exact in float64 and each row is summed on its own, in one order, so
    a row's score does not depend on the rows around it."""
    if len(rows) == 0:
        return np.zeros(0, dtype=np.float64)
    picked = np.asarray(vectors[np.asarray(rows, dtype=np.int64)], dtype=np.float64)
    return np.sum(picked * np.asarray(query, dtype=np.float64), axis=1)


def _key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def sample_key(passage_id: str) -> int:
    """Where a passage falls in the background sample order (smallest first)."""
    return _key(passage_id)


def text_key(text: str) -> int:
    """A stable hash of a passage's white-space-free text (same-text lookups across shards)."""
    return _key(squash(text))


Ranked = tuple[tuple[int, float, str], ...]  # (row, score, passage id), best first


def ranked(rows: np.ndarray, scores: np.ndarray, want: int, pid_of) -> Ranked:
    """The ``want`` best rows by (score descending, passage id); ties at the cut included in
    the comparison, never decided by position."""
    if len(rows) > want:
        cut = np.partition(scores, len(scores) - want)[len(scores) - want]
        keep = scores >= cut
        rows, scores = rows[keep], scores[keep]
    items = sorted(
        ((float(s), pid_of(int(r)), int(r)) for r, s in zip(rows, scores, strict=True)),
        key=lambda x: (-x[0], x[1]),
    )[:want]
    return tuple((r, s, p) for s, p, r in items)


# ------------------------------------------------------------------------------ BM25


class Postings:
    """Term frequencies by token (which rows hold it, how often) and row lengths: what BM25
    needs to score with statistics other than this shard's own."""

    def __init__(self, vocab: dict[str, int], indptr, rows, tf, lengths) -> None:
        self.vocab = vocab
        self.indptr = indptr  # int64, len(vocab) + 1
        self.rows = rows  # int32, ascending within each token
        self.tf = tf  # float32, per (token, row)
        self.lengths = lengths  # int32, tokens per row (repeats counted, as bm25s)

    @classmethod
    def build(cls, docs: Iterable[Sequence[str]]) -> Postings:
        vocab: dict[str, int] = {}
        token_ids, doc_ids, lengths = array("i"), array("i"), array("i")
        for row, doc in enumerate(docs):
            ids = [vocab.setdefault(t, len(vocab)) for t in doc]
            token_ids.extend(ids)
            doc_ids.extend([row] * len(ids))
            lengths.append(len(ids))
        n = len(lengths)
        pairs = np.frombuffer(token_ids, dtype=np.int32).astype(np.int64) * max(n, 1)
        pairs += np.frombuffer(doc_ids, dtype=np.int32)
        unique, counts = np.unique(pairs, return_counts=True)
        token_of = unique // max(n, 1)
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(np.bincount(token_of, minlength=len(vocab)), out=indptr[1:])
        return cls(
            vocab,
            indptr,
            (unique % max(n, 1)).astype(np.int32),
            counts.astype(np.float32),
            np.frombuffer(lengths, dtype=np.int32).copy(),
        )

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def total_length(self) -> int:
        return int(self.lengths.sum(dtype=np.int64))

    def df(self) -> dict[str, int]:
        counts = np.diff(self.indptr).tolist()
        return {t: counts[i] for t, i in self.vocab.items()}

    def scores(
        self,
        terms: Sequence[str],
        idf: Sequence[float],
        n_docs: int,
        avg_len: float,
        k1: float,
        b: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """BM25 of every row holding a term: ``sum idf * tf / (tf + k1 (1 - b + b len/avg))``
        over ``terms`` in their order (repeats count again, as in bm25s)."""
        parts = []
        for term, weight in zip(terms, idf, strict=True):
            t = self.vocab.get(term)
            if t is None:
                continue
            lo, hi = self.indptr[t], self.indptr[t + 1]
            rows = self.rows[lo:hi]
            tf = self.tf[lo:hi].astype(np.float64)
            norm = k1 * (1.0 - b + b * self.lengths[rows].astype(np.float64) / avg_len)
            parts.append((rows, weight * tf / (tf + norm)))
        if not parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        rows = np.unique(np.concatenate([r for r, _ in parts]))
        total = np.zeros(len(rows), dtype=np.float64)
        for r, s in parts:
            total[np.searchsorted(rows, r)] += s
        return rows.astype(np.int64), total

    def holds(self, row: int, token: str) -> bool:
        t = self.vocab.get(token)
        if t is None:
            return False
        rows = self.rows[self.indptr[t] : self.indptr[t + 1]]
        i = int(np.searchsorted(rows, row))
        return i < len(rows) and int(rows[i]) == row


# ------------------------------------------------------------------- request and answer


@dataclass(frozen=True)
class ShardQuery:
    """What the router asks every shard (the same object for all, but ``exclude``)."""

    want: int
    vector: np.ndarray | None = None  # the query's embedding: dense scores wanted
    dense_top: bool = False  # the dense top list (dense and hybrid modes)
    terms: tuple[str, ...] = ()  # BM25: query tokens the whole index knows, repeats kept
    idf: tuple[float, ...] = ()  # their idf over the whole index
    query_tokens: frozenset[str] = frozenset()  # coverage: which the best keyword row holds
    n_docs: int = 0  # BM25 statistics of the whole index
    avg_len: float = 0.0
    k1: float = 1.2
    b: float = 0.75
    filters: Filters | None = None
    exclude: tuple[int, ...] = ()  # this shard's rows never to return
    sample_below: int | None = None  # background: dense scores of rows with sample key <= this


@dataclass(frozen=True)
class ShardFound:
    dense_top: Ranked = ()
    keyword: Ranked = ()
    keyword_dense: tuple[float, ...] = ()  # exact dense score of each keyword row
    matched: frozenset[str] = frozenset()  # query tokens in this shard's best keyword row
    background: np.ndarray | None = None  # dense scores of this shard's sample rows
    dates: dict[int, int] = field(default_factory=dict)  # date number of every row above


@dataclass(frozen=True)
class FacetQuery:
    """What a shard needs to count its matching articles (``qa_service.facets``): the
    keyword side with the whole index's idf, the dense side as the rows the router picked."""

    terms: tuple[str, ...] = ()  # the query's distinct tokens the index knows, sorted
    idf: tuple[float, ...] = ()  # their idf over the whole index
    need: float = 0.0  # the idf mass a passage must hold to match by keywords
    keyword: bool = False
    dense_rows: tuple[int, ...] = ()  # this shard's rows among the global nearest matches
    filters: Filters | None = None


@dataclass(frozen=True)
class FacetCounts:
    """A shard's matching articles, counted (each article is in one shard only)."""

    months: dict[int, int] = field(default_factory=dict)  # YYYYMM (0: undated) -> articles
    sources: dict[str, int] = field(default_factory=dict)  # source ("": none) -> articles


@dataclass(frozen=True)
class TermStats:
    n_docs: int
    total_length: int
    df: dict[str, int] = field(default_factory=dict)


class Records(Protocol):
    """Where a shard reads the passages and articles it returns."""

    def passages(self, rows: Sequence[int]) -> list[Passage]: ...
    def article(self, article_id: str) -> Article | None: ...
    def article_rows(self, article_id: str) -> list[int]: ...
    def row_of(self, passage_id: str) -> int | None: ...
    def sources(self) -> list[str]: ...
    def sentences(self, rows: Sequence[int]) -> list: ...


class MemoryRecords:
    """The passages and articles of a :class:`LoadedIndex`, all in memory."""

    def __init__(self, index: LoadedIndex) -> None:
        self.index = index

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        return [self.index.passages[r] for r in rows]

    def article(self, article_id: str) -> Article | None:
        return self.index.articles.get(article_id)

    def article_rows(self, article_id: str) -> list[int]:
        return list(self.index.article_passages(article_id))

    def row_of(self, passage_id: str) -> int | None:
        return self.index.passage_by_id.get(passage_id)

    def sources(self) -> list[str]:
        return [s for s in self.index.source_names if s]

    def sentences(self, rows: Sequence[int]) -> list:
        stored = getattr(self.index, "passage_sentences", None)
        return [stored(r) if stored else None for r in rows]


# ---------------------------------------------------------------------------- the shard


class ShardSearcher:
    """Candidate generation and lookups over one shard. Every method takes and returns plain
    data (rows are this shard's), so the same object serves in-process or as a Ray Serve
    deployment."""

    def __init__(
        self,
        *,
        version: str,
        passage_ids: list[str],
        vectors: np.ndarray,
        vector_index: VectorIndex | None,
        postings: Postings,
        dates: np.ndarray,
        source_names: list[str],
        source_of: np.ndarray,
        article_of: np.ndarray,
        article_row: dict[str, int],
        text_keys: np.ndarray | None,
        records: Records,
        k1: float = 1.2,
        b: float = 0.75,
    ) -> None:
        self.version = version
        self.passage_ids = passage_ids
        self.vectors = vectors
        self.vector_index = vector_index  # None: exact search by a matrix product
        self.postings = postings
        # Filter columns, as ``retrieval.allowed_rows`` reads them.
        self.dates = dates
        self.source_names = source_names
        self.source_of = source_of
        self.article_of = article_of
        self.article_row = article_row
        self._text_keys = text_keys  # None: hashed from the texts when first needed
        self.records = records
        self.k1, self.b = k1, b
        keys = np.array([sample_key(p) for p in passage_ids], dtype=np.uint64)
        order = np.argsort(keys, kind="stable")[:BACKGROUND_SAMPLE]
        self.sample_rows = order.astype(np.int64)
        self.sample_keys = keys[order]

    @classmethod
    def from_loaded(cls, index: LoadedIndex) -> ShardSearcher:
        """A shard over an index loaded whole into memory (``qa_service.index``)."""
        s = index.manifest.settings
        return cls(
            version=index.version,
            passage_ids=[p.passage_id for p in index.passages],
            vectors=index.vectors,
            vector_index=None if s.faiss_kind == "flat" else index.vector_index,
            postings=Postings.build(index.content.tokens),
            dates=index.dates,
            source_names=index.source_names,
            source_of=index.source_of,
            article_of=index.article_of,
            article_row=index.article_row,
            text_keys=None,  # a plain index finds same-text passages itself
            records=MemoryRecords(index),
            k1=s.bm25_k1,
            b=s.bm25_b,
        )

    def __len__(self) -> int:
        return len(self.passage_ids)

    @property
    def text_keys(self) -> np.ndarray:
        if self._text_keys is None:
            texts = (p.text for p in self.records.passages(range(len(self))))
            self._text_keys = np.array([text_key(t) for t in texts], dtype=np.uint64)
        return self._text_keys

    def _pid(self, row: int) -> str:
        return self.passage_ids[row]

    # ------------------------------------------------------------------ statistics

    def term_stats(self) -> TermStats:
        return TermStats(len(self), self.postings.total_length, self.postings.df())

    def sample(self) -> np.ndarray:
        """This shard's smallest sample keys (the router picks the global threshold)."""
        return self.sample_keys

    def describe(self) -> dict:
        return {
            "version": self.version,
            "passages": len(self),
            "articles": len(self.article_row),
            "sources": self.records.sources(),
            "newest": int(self.dates.max()) if len(self.dates) else 0,
        }

    # ---------------------------------------------------------------------- search

    def mask(self, filters: Filters | None, exclude: Sequence[int] = ()) -> np.ndarray | None:
        from qa_service.retrieval import allowed_rows  # the one definition of the filters

        mask = allowed_rows(self, filters)
        if exclude:
            mask = np.ones(len(self), dtype=bool) if mask is None else mask.copy()
            mask[list(exclude)] = False
        return mask

    def search(self, q: ShardQuery) -> ShardFound:
        mask = self.mask(q.filters, q.exclude)
        vector = q.vector
        dense_top = (
            self.dense_top(vector, q.want, mask) if q.dense_top and vector is not None else ()
        )
        keyword: Ranked = ()
        if q.terms:
            rows, scores = self.postings.scores(q.terms, q.idf, q.n_docs, q.avg_len, q.k1, q.b)
            if mask is not None:
                keep = mask[rows]
                rows, scores = rows[keep], scores[keep]
            keyword = ranked(rows, scores, q.want, self._pid)
        keyword_dense = ()
        if keyword and vector is not None:
            keyword_dense = tuple(exact_dense(self.vectors, [r for r, _, _ in keyword], vector))
        matched = frozenset()
        if keyword:
            best = keyword[0][0]
            matched = frozenset(t for t in q.query_tokens if self.postings.holds(best, t))
        background = None
        if vector is not None and q.sample_below is not None:
            n = int(np.searchsorted(self.sample_keys, np.uint64(q.sample_below), side="right"))
            background = exact_dense(self.vectors, self.sample_rows[:n], vector)
        rows = {r for r, _, _ in dense_top} | {r for r, _, _ in keyword}
        dates = {r: int(self.dates[r]) for r in rows}
        return ShardFound(dense_top, keyword, keyword_dense, matched, background, dates)

    def dense_top(self, query: np.ndarray, want: int, mask: np.ndarray | None) -> Ranked:
        """The ``want`` rows nearest ``query`` among allowed ones, exactly scored."""
        allowed = None if mask is None else np.flatnonzero(mask)
        available = len(self) if allowed is None else len(allowed)
        if available == 0 or want <= 0:
            return ()
        m = min(available, want + DENSE_MARGIN)
        while True:
            rows, approx = self._pick(query, m, allowed, mask)
            best = ranked(rows, exact_dense(self.vectors, rows, query), want, self._pid)
            if m >= available or self.vector_index is not None or len(best) < want:
                return best  # all seen; or an approximate index, which promises no more
            if float(approx.min()) + APPROX_TOL < best[-1][1]:
                return best  # nothing left out can reach the k-th score
            m = min(available, 2 * m)

    def _pick(self, query, m: int, allowed, mask) -> tuple[np.ndarray, np.ndarray]:
        """About the ``m`` nearest allowed rows and their approximate (float32) scores."""
        if self.vector_index is not None:
            found = self.vector_index.search(query, m, mask)
            rows = np.fromiter(found, dtype=np.int64, count=len(found))
            return rows, np.fromiter(found.values(), dtype=np.float64, count=len(found))
        q = np.asarray(query, dtype=np.float32)
        if allowed is None:
            candidates, scores = None, self.vectors @ q
        elif len(allowed) * 2 > len(self):
            candidates, scores = allowed, (self.vectors @ q)[allowed]
        else:
            candidates, scores = allowed, self.vectors[allowed] @ q
        top = np.argpartition(-scores, m - 1)[:m] if m < len(scores) else np.arange(len(scores))
        rows = top if candidates is None else candidates[top]
        return rows.astype(np.int64), scores[top].astype(np.float64)

    # ---------------------------------------------------------------------- facets

    def near(self, query: np.ndarray, want: int, floor: float, filters: Filters | None) -> Ranked:
        """The ``want`` allowed rows nearest ``query`` whose exact score is at least
        ``floor`` (the router keeps the best ``want`` of all shards')."""
        return tuple(x for x in self.dense_top(query, want, self.mask(filters)) if x[1] >= floor)

    def facet_counts(self, q: FacetQuery) -> FacetCounts:
        """This shard's articles with a matching passage within the filters, by month and
        by source: a passage matches by keywords when the query tokens it holds carry at
        least ``q.need`` of idf (added in ``q.terms`` order: the same float everywhere), by
        meaning when the router picked it (``q.dense_rows``)."""
        matched = np.zeros(len(self), dtype=bool)
        if q.keyword and q.terms:
            p = self.postings
            mass = np.zeros(len(self), dtype=np.float64)
            for term, weight in zip(q.terms, q.idf, strict=True):
                t = p.vocab.get(term)
                if t is not None:
                    mass[p.rows[p.indptr[t] : p.indptr[t + 1]]] += weight
            matched |= (mass > 0) & (mass >= q.need)
        if q.dense_rows:
            matched[np.asarray(q.dense_rows, dtype=np.int64)] = True
        mask = self.mask(q.filters)
        if mask is not None:
            matched &= mask
        rows = np.flatnonzero(matched)
        _, first = np.unique(self.article_of[rows], return_index=True)
        one_row = rows[first]  # one passage per article
        months, counts = np.unique(self.dates[one_row] // 100, return_counts=True)
        sources: dict[str, int] = {}
        codes, n = np.unique(self.source_of[one_row], return_counts=True)
        for code, c in zip(codes.tolist(), n.tolist(), strict=True):
            name = self.source_names[code] or ""
            sources[name] = sources.get(name, 0) + c
        return FacetCounts(dict(zip(months.tolist(), counts.tolist(), strict=True)), sources)

    def dates_of(self, rows: Sequence[int]) -> list[int]:
        return [int(self.dates[r]) for r in rows]

    def dense_scores(self, query: np.ndarray, rows: Sequence[int]) -> list[float]:
        return exact_dense(self.vectors, rows, query).tolist()

    # --------------------------------------------------------------------- lookups

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        return self.records.passages(rows)

    def sentences(self, rows: Sequence[int]) -> list:
        """Each passage's stored sentences, ``(spans, vectors)``, or None (an index without
        them): what answers are drawn from."""
        return self.records.sentences(rows)

    def article(self, article_id: str) -> tuple[Article | None, list[int]]:
        """The article and its passage rows, in order (``(None, [])`` when not here)."""
        article = self.records.article(article_id)
        return article, (self.records.article_rows(article_id) if article else [])

    def row_of(self, passage_id: str) -> int | None:
        return self.records.row_of(passage_id)

    def vectors_of(self, rows: Sequence[int]) -> np.ndarray:
        return np.asarray(self.vectors[np.asarray(rows, dtype=np.int64)], dtype=np.float32)

    def rows_with_text(self, squashed: str) -> list[int]:
        """Rows whose white-space-free text is ``squashed``."""
        rows = np.flatnonzero(self.text_keys == np.uint64(_key(squashed))).tolist()
        return [
            r for r, p in zip(rows, self.passages(rows), strict=True) if squash(p.text) == squashed
        ]
