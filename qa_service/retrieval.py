"""Dense, BM25 and hybrid retrieval over a :class:`LoadedIndex`.

The two signals are the index's components (``indexer.vectors``, ``indexer.keywords``);
hybrid fusion is one of the small functions in :mod:`qa_service.fusion`, chosen once.
A search returns an immutable :class:`Retrieval`: the ranked hits and what was learnt about
the query (its tokens, keyword coverage, background similarity).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from indexer import script
from indexer.choices import SEARCH_MODES
from indexer.embed import Embedder
from indexer.tokenize import ChineseTokenizer
from qa_service import glossary, recency
from qa_service.fusion import fusion_named
from qa_service.index import LoadedIndex, date_number
from qa_service.question import is_english

MODES = SEARCH_MODES
CANDIDATES = 100  # per signal, before fusion


@dataclass
class Filters:
    date_from: str | None = None
    date_to: str | None = None
    source: str | None = None
    article_ids: list[str] | None = None

    def active(self) -> bool:
        return any([self.date_from, self.date_to, self.source, self.article_ids])


@dataclass(frozen=True)
class Hit:
    row: int  # passage row in the index
    score: float
    dense: float | None = None
    bm25: float | None = None


@dataclass(frozen=True)
class QueryAnalysis:
    tokens: tuple[str, ...] = ()
    coverage: float = 0.0  # share of the known query tokens' idf mass in the best keyword match
    background: float = 0.0  # the query's median similarity to the collection
    matched: frozenset[str] = field(default_factory=frozenset)
    # How far the best article stands above the next ones in dense similarity (None: no
    # dense search): the answer's confidence (``qa_service.answer.confidence``).
    lead: float | None = None


@dataclass(frozen=True)
class Retrieval:
    hits: tuple[Hit, ...]
    analysis: QueryAnalysis


def allowed_rows(index: LoadedIndex, filters: Filters | None) -> np.ndarray | None:
    """Boolean mask of passages that pass the filters (None: no filter)."""
    if filters is None or not filters.active():
        return None
    mask = np.ones(len(index.dates), dtype=bool)
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


LEAD_ARTICLES = 10  # the best article against the next nine
NEAR_PASSAGES = 30  # the dense passages whose words pick an English question's translations


def article_of(passage_id: str) -> str:
    """The article a passage id belongs to (``indexer.chunk``: ``{article_id}-{nnnn}``)."""
    return passage_id.rsplit("-", 1)[0]


def article_lead(dense_top: dict[int, float], passage_ids: dict[int, str]) -> float | None:
    """The best article's dense similarity minus the mean of the next ``LEAD_ARTICLES - 1``
    articles' (each article by its best passage).

    A question the archive answers picks one story out (the one stating the fact); one it
    cannot answer matches a plateau of stories on the same topic, however close the topic
    is. Unlike the raw similarity or its margin over the collection, this gap reads the
    same on five pages and on thousands of articles (BENCHMARKS.md, issue 13)."""
    best: dict[str, float] = {}
    for row, score in dense_top.items():
        article = article_of(passage_ids[row])
        if article not in best:
            best[article] = score
            if len(best) == LEAD_ARTICLES:
                break
    scores = sorted(best.values(), reverse=True)
    if len(scores) < 2:
        return None
    return float(scores[0] - np.mean(scores[1:]))


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
        self.fuse = fusion_named(fusion)
        self.router = index.router  # its shards' candidates, merged (``qa_service.router``)
        self._embed_cached = lru_cache(maxsize=query_cache_size)(self._embed_query)

    def _embed_query(self, text: str) -> np.ndarray:
        return self.embedder.encode_query([text])[0]

    def embed_query(self, text: str) -> np.ndarray:
        """Query vectors are cached: repeated questions skip the model."""
        return self._embed_cached(text)

    def search(
        self,
        query: str,
        top_k: int = 10,
        mode: str = "hybrid",
        filters: Filters | None = None,
        exclude_rows: set[int] | None = None,
        vector: np.ndarray | None = None,
        dense_scores: bool = False,
        recency_half_life_days: float | None = None,
    ) -> Retrieval:
        """The ``top_k`` passages for ``query`` in ``mode``, ties broken by passage id (the
        one order a plain and a sharded index of the same passages share).

        ``vector`` is the query's embedding when the caller has it (``/similar`` passes a
        passage's own). With ``dense_scores``, BM25-mode hits carry their dense similarity
        and the analysis its background too (the answer's confidence needs both). With
        ``recency_half_life_days``, newer articles move up before the cut (``recency``).
        An English question's BM25 query also gets Chinese keywords (``_in_chinese``) where
        the question is embedded: hybrid mode, and bm25 with ``dense_scores`` (``/ask``).
        """
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        want = max(CANDIDATES, top_k)
        tokens = tuple(self.tokenizer.tokenize(query)) if query else ()
        use_dense = mode != "bm25" or dense_scores
        if use_dense and vector is None:
            vector = self.embed_query(query)
        if use_dense and mode != "dense" and is_english(query):
            tokens += tuple(t for t in self._in_chinese(query, vector, filters) if t not in tokens)
        found = self.router.candidates(
            vector if use_dense else None,
            tokens,
            want,
            dense_top=mode != "bm25" or dense_scores,
            keyword=mode != "dense",
            filters=filters,
            exclude_rows=sorted(exclude_rows) if exclude_rows else None,
        )
        dense_top, dense, keyword = found.dense_top, found.dense, found.keyword
        lead = article_lead(dense_top, found.passage_ids) if use_dense else None
        analysis = QueryAnalysis(tokens, keyword.coverage, found.background, keyword.matched, lead)
        if mode == "dense":
            scores = dense_top
        elif mode == "bm25":
            scores = keyword.scores
        else:
            scores = self.fuse(
                dense, dense_top, keyword.scores, keyword.coverage, self.fusion_weight
            )
        if recency_half_life_days:
            floor = analysis.background if mode == "dense" else 0.0  # what no match scores
            scores = recency.boost(scores, self.index, recency_half_life_days, floor)
        pid = found.passage_ids
        ranked = sorted(scores, key=lambda r: (-scores[r], pid[r]))[:top_k]
        hits = tuple(
            Hit(r, scores[r], dense=dense.get(r), bm25=keyword.scores.get(r)) for r in ranked
        )
        self.index.prefetch(ranked)  # a sharded index reads these passages now, at once
        return Retrieval(hits, analysis)

    def _in_chinese(self, query: str, vector: np.ndarray, filters: Filters | None) -> list[str]:
        """Chinese words for an English question's terms (``qa_service.glossary``), each in
        the sense that the passages its meaning finds use: the question's keywords then.

        The dictionary alone offers every sense (*train*: 火车, 培训, 训练, …), and added
        blindly they moved wrong stories up; taking only the translations found in the
        ``NEAR_PASSAGES`` passages nearest in meaning (the classic pseudo-relevance choice)
        answered more on every set (BENCHMARKS.md, issue 13)."""
        found = self.router.candidates(
            vector, (), NEAR_PASSAGES, dense_top=True, keyword=False, filters=filters
        )
        rows = list(found.dense_top)[:NEAR_PASSAGES]
        self.index.prefetch(rows)
        text = "\n".join(self.index.passages[r].text for r in rows)
        if self.tokenizer.script_fold:
            text = script.fold(text)
        near = _Near(text.lower(), self.index.idf)
        return glossary.translate(query, near, prefer=near.count)


@dataclass(frozen=True)
class _Near:
    """A word the index knows and these passages hold (a ``Container`` for the glossary)."""

    text: str
    known: Mapping[str, float]  # the index's idf (a sharded index's is computed on demand)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and word in self.known and word in self.text

    def count(self, word: str) -> float:
        """How often these passages use ``word``: of two senses, the one they use more."""
        return float(self.text.count(word))
