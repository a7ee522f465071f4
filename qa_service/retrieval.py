"""Dense, BM25 and hybrid retrieval over a :class:`LoadedIndex`.

Hybrid fusion. BM25 is strong on Chinese names and numbers and useless when the query
shares no words with the text (an English question over Chinese news), and a question in
plain words may match only common words. So the keyword signal is weighted by the evidence
it has: ``coverage`` is the share of the query's idf mass that the best keyword match
contains (a query token the collection never saw counts as unmatched). Scores are then
fused linearly after per-query normalisation::

    hybrid = dense_norm + fusion_weight * coverage * bm25_norm

With coverage 0 (no keyword evidence) the ranking is the dense ranking exactly.
BENCHMARKS.md has the evaluation behind this choice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from indexer.embed import Embedder
from indexer.tokenize import ChineseTokenizer
from qa_service.index import LoadedIndex, date_number

MODES = ("hybrid", "dense", "bm25")
CANDIDATES = 100  # per signal, before fusion


@dataclass
class Filters:
    date_from: str | None = None
    date_to: str | None = None
    source: str | None = None
    article_ids: list[str] | None = None

    def active(self) -> bool:
        return any([self.date_from, self.date_to, self.source, self.article_ids])


@dataclass
class Hit:
    row: int  # passage row in the index
    score: float
    dense: float | None = None
    bm25: float | None = None


@dataclass
class QueryAnalysis:
    tokens: list[str]
    coverage: float = 0.0
    background: float = 0.0  # the query's median similarity to the collection
    matched: set[str] = field(default_factory=set)


def allowed_rows(index: LoadedIndex, filters: Filters | None) -> np.ndarray | None:
    """Boolean mask of passages that pass the filters (None: no filter)."""
    if filters is None or not filters.active():
        return None
    mask = np.ones(len(index.passages), dtype=bool)
    if filters.date_from:
        mask &= index.dates >= date_number(filters.date_from)
    if filters.date_to:
        mask &= (index.dates > 0) & (index.dates <= date_number(filters.date_to))
    if filters.source:
        wanted = [i for i, name in enumerate(index.source_names) if filters.source in name]
        mask &= np.isin(index.source_of, wanted)
    if filters.article_ids is not None:
        wanted = [index.article_row[a] for a in filters.article_ids if a in index.article_row]
        mask &= np.isin(index.article_of, wanted)
    return mask


class Retriever:
    def __init__(
        self,
        index: LoadedIndex,
        embedder: Embedder,
        tokenizer: ChineseTokenizer,
        fusion_weight: float = 1.0,
        query_cache_size: int = 1024,
        fusion: str = "evidence",
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.tokenizer = tokenizer
        self.fusion_weight = fusion_weight
        self.fusion = fusion
        self._embed_cached = lru_cache(maxsize=query_cache_size)(self._embed_query)

    # ------------------------------------------------------------------ signals

    def _embed_query(self, text: str) -> np.ndarray:
        return self.embedder.encode_query([text])[0]

    def embed_query(self, text: str) -> np.ndarray:
        """Query vectors are cached: repeated questions skip the model."""
        return self._embed_cached(text)

    def dense(self, vector: np.ndarray, k: int, mask: np.ndarray | None) -> dict[int, float]:
        import faiss

        n = len(self.index.passages)
        if n == 0 or k <= 0:
            return {}
        k = min(k, n)
        query = vector.reshape(1, -1).astype(np.float32)
        if mask is None:
            scores, ids = self.index.faiss_index.search(query, k)
        else:
            allowed = np.flatnonzero(mask).astype(np.int64)
            if len(allowed) == 0:
                return {}
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
            scores, ids = self.index.faiss_index.search(query, min(k, len(allowed)), params=params)
        return {int(i): float(s) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0}

    def background(self, vector: np.ndarray) -> float:
        """Median similarity of the query to (a fixed sample of) the collection."""
        sample = self.index.background
        return float(np.median(sample @ vector)) if len(sample) else 0.0

    def analyse(self, query: str) -> QueryAnalysis:
        return QueryAnalysis(self.tokenizer.tokenize(query))

    def bm25(self, analysis: QueryAnalysis, k: int, mask: np.ndarray | None) -> dict[int, float]:
        """Top-k BM25 scores; also fills ``analysis.coverage`` (see the module docstring)."""
        bm25 = self.index.bm25
        if bm25 is None or not analysis.tokens:
            return {}
        known = [t for t in analysis.tokens if t in self.index.idf]
        if not known:
            return {}
        scores = np.asarray(bm25.get_scores(known), dtype=np.float32)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        result = {int(i): float(scores[i]) for i in top if scores[i] > 0}
        if result:
            best = max(result, key=result.get)
            self._coverage(analysis, best)
        return result

    def _coverage(self, analysis: QueryAnalysis, row: int) -> None:
        idf = self.index.idf
        unseen = self.index.max_idf
        doc = set(self.index.content.tokens[row])
        query = set(analysis.tokens)
        total = sum(idf.get(t, unseen) for t in query)
        analysis.matched = query & doc
        matched = sum(idf[t] for t in analysis.matched)
        analysis.coverage = matched / total if total else 0.0

    # ------------------------------------------------------------------- search

    def search(
        self,
        query: str,
        top_k: int = 10,
        mode: str = "hybrid",
        filters: Filters | None = None,
        exclude_rows: set[int] | None = None,
        vector: np.ndarray | None = None,
    ) -> tuple[list[Hit], QueryAnalysis]:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        mask = allowed_rows(self.index, filters)
        if exclude_rows:
            mask = np.ones(len(self.index.passages), dtype=bool) if mask is None else mask.copy()
            mask[list(exclude_rows)] = False
        want = max(CANDIDATES, top_k)
        analysis = self.analyse(query) if query else QueryAnalysis([])
        dense: dict[int, float] = {}
        keyword: dict[int, float] = {}
        if mode in ("dense", "hybrid"):
            if vector is None:
                vector = self.embed_query(query)
            analysis.background = self.background(vector)
            dense = self.dense(vector, want, mask)
        if mode in ("bm25", "hybrid"):
            keyword = self.bm25(analysis, want, mask)
        if mode == "dense":
            hits = [Hit(r, s, dense=s) for r, s in dense.items()]
        elif mode == "bm25":
            hits = [Hit(r, s, bm25=s) for r, s in keyword.items()]
        else:
            hits = self._fuse(dense, keyword, analysis.coverage, vector)
        hits.sort(key=lambda h: (-h.score, h.row))
        return hits[:top_k], analysis

    def _fuse(
        self,
        dense: dict[int, float],
        keyword: dict[int, float],
        coverage: float,
        vector: np.ndarray,
    ) -> list[Hit]:
        rows = set(dense) | set(keyword)
        if not rows:
            return []
        if self.fusion == "rrf":
            return self._rrf(dense, keyword)
        d_lo = min(dense.values(), default=0.0)
        d_hi = max(dense.values(), default=1.0)
        b_hi = max(keyword.values(), default=0.0)
        weight = self.fusion_weight * (coverage if self.fusion == "evidence" else 1.0)
        # Rows BM25 found outside the dense top list get their exact dense score.
        extra = sorted(set(keyword) - set(dense))
        if extra:
            sims = self.index.vectors[extra] @ vector
            dense = {**dense, **dict(zip(extra, sims.tolist(), strict=True))}
        hits = []
        for r in rows:
            d = dense.get(r)
            d_norm = (d - d_lo) / (d_hi - d_lo) if d is not None and d_hi > d_lo else 0.0
            b = keyword.get(r, 0.0)
            b_norm = b / b_hi if b_hi > 0 else 0.0
            hits.append(Hit(r, d_norm + weight * b_norm, dense=d, bm25=keyword.get(r)))
        return hits

    @staticmethod
    def _rrf(dense: dict[int, float], keyword: dict[int, float], k: int = 60) -> list[Hit]:
        """Reciprocal-rank fusion over the signals that found something."""
        scores: dict[int, float] = {}
        for signal in (dense, keyword):
            ranked = sorted(signal, key=lambda r: -signal[r])
            for rank, row in enumerate(ranked, 1):
                scores[row] = scores.get(row, 0.0) + 1.0 / (k + rank)
        return [Hit(r, s, dense=dense.get(r), bm25=keyword.get(r)) for r, s in scores.items()]
