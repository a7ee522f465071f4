"""The question-answering engine in-process: what the HTTP app, the CLI and eval all call.

An :class:`Engine` pairs one immutable :class:`LoadedIndex` with the shared model parts. The
service swaps whole engines when the index changes, so a request works on one consistent
index from start to end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from indexer import tokenize
from indexer.embed import Embedder
from indexer.manifest import IndexSettings
from indexer.settings import Settings, get_settings
from indexer.tokenize import ChineseTokenizer
from qa_service import index as loaded_index
from qa_service.answer import ARTICLE_DEPTH, Answer, AnswerExtractor, answer_first
from qa_service.highlight import highlights
from qa_service.index import LoadedIndex
from qa_service.retrieval import Filters, Hit, QueryAnalysis, Retriever


@dataclass
class PassageResult:
    row: int
    hit: Hit
    highlights: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class AskResult:
    answer: Answer | None
    passages: list[PassageResult]
    analysis: QueryAnalysis
    timings: dict[str, float]


@dataclass
class ArticleHit:
    article_id: str
    score: float
    best_row: int


def open_engine(
    index_path: Path,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    tokenizer: ChineseTokenizer | None = None,
    extractor: AnswerExtractor | None = None,
) -> Engine:
    """Load the index at ``index_path`` and check it against these settings: the one way in
    for the service, the CLI, eval, the benchmarks and the tests.

    The model, tokenizer and answer extractor are shared when given (a service reloading its
    index after a write reuses them). Raises ``IndexStoreError`` (``IncompatibleIndex`` when the
    index was built with another model or tokenizer)."""
    settings = settings or get_settings()
    embedder = embedder or Embedder(settings=settings)
    tokenizer = tokenizer or tokenize.from_settings(settings)
    return engine_for(loaded_index.load(index_path), settings, embedder, tokenizer, extractor)


def engine_for(
    index: LoadedIndex,
    settings: Settings,
    embedder: Embedder,
    tokenizer: ChineseTokenizer,
    extractor: AnswerExtractor | None = None,
) -> Engine:
    """An engine over an index already in memory, after the compatibility check."""
    index.manifest.check_compatible(expected_for_reading(embedder, tokenizer, index), "read")
    return Engine(
        index,
        embedder,
        tokenizer,
        extractor,
        fusion_weight=settings.fusion_weight,
        fusion=settings.fusion,
    )


def expected_for_reading(
    embedder: Embedder, tokenizer: ChineseTokenizer, index: LoadedIndex
) -> IndexSettings:
    """What a reader brings: its model and tokenizer (chunking is the index's own business
    when only reading)."""
    ident = embedder.identity
    return replace(
        index.manifest.settings,
        model_name=ident.name,
        model_checksum=ident.checksum,
        dimension=ident.dimension,
        tokenizer=tokenizer.fingerprint,
    )


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


class Engine:
    def __init__(
        self,
        index: LoadedIndex,
        embedder: Embedder,
        tokenizer: ChineseTokenizer,
        extractor: AnswerExtractor | None = None,
        fusion_weight: float = 1.0,
        fusion: str = "evidence",
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.tokenizer = tokenizer
        self.retriever = Retriever(index, embedder, tokenizer, fusion_weight, fusion=fusion)
        self.extractor = extractor or AnswerExtractor(embedder)

    # ------------------------------------------------------------- ask / search

    def _results(self, hits: list[Hit], analysis: QueryAnalysis) -> list[PassageResult]:
        terms = analysis.tokens
        return [
            PassageResult(h.row, h, highlights(self.index.passages[h.row].text, terms))
            for h in hits
        ]

    def search(
        self,
        query: str,
        top_k: int = 10,
        mode: str = "hybrid",
        filters: Filters | None = None,
        highlight: bool = True,
        offset: int = 0,
        recency_half_life_days: float | None = None,
    ) -> tuple[list[PassageResult], QueryAnalysis, dict[str, float]]:
        """Ranked passages ``offset`` to ``offset + top_k`` (a page of the ``offset + top_k``
        ranking, so pages never overlap or skip)."""
        start = time.perf_counter()
        found = self.retriever.search(
            query, offset + top_k, mode, filters, recency_half_life_days=recency_half_life_days
        )
        hits = list(found.hits[offset:])
        timings = {"retrieve_ms": _ms(start)}
        if not highlight:
            return [PassageResult(h.row, h) for h in hits], found.analysis, timings
        return self._results(hits, found.analysis), found.analysis, timings

    def ask(
        self,
        question: str,
        top_k: int = 5,
        mode: str = "hybrid",
        filters: Filters | None = None,
        recency_half_life_days: float | None = None,
    ) -> AskResult:
        start = time.perf_counter()
        vector = self.retriever.embed_query(question)
        timings = {"embed_ms": _ms(start)}
        t = time.perf_counter()
        # dense_scores: in bm25 mode the answer's confidence still needs dense evidence.
        # At least ARTICLE_DEPTH passages: the answer's candidates (answer.candidate_hits)
        # must not depend on how many passages the caller wants listed.
        found = self.retriever.search(
            question,
            max(top_k, ARTICLE_DEPTH),
            mode,
            filters,
            vector=vector,
            dense_scores=True,
            recency_half_life_days=recency_half_life_days,
        )
        hits, analysis = list(found.hits), found.analysis
        timings["retrieve_ms"] = _ms(t)
        t = time.perf_counter()
        answer = self.extractor.extract(question, vector, analysis, self.index, hits, top_k)
        hits, answer = answer_first(self.index, hits, answer)
        # The answer's passage stays listed: it is among the first min(top_k, 3), or of the
        # first passage's article and moved first (answer.candidate_hits, answer_first).
        hits = hits[:top_k]
        texts = [self.index.passages[h.row].text for h in hits]
        timings["answer_ms"] = _ms(t)
        results = self._results(hits, analysis)
        if answer:
            for sentence in answer.sentences:
                r = results[sentence.passage_index]
                r.highlights = highlights(
                    texts[sentence.passage_index], analysis.tokens, [(sentence.start, sentence.end)]
                )
        timings["total_ms"] = _ms(start)
        return AskResult(answer, results, analysis, timings)

    # ------------------------------------------------------------------ similar

    def _overlapping_rows(self, row: int) -> set[int]:
        """The passage itself, its overlapping neighbours and any passage with the same text."""
        p = self.index.passages[row]
        same = {row, *self.index.same_text_rows(row)}
        for other in self.index.article_passages(p.article_id):
            q = self.index.passages[other]
            if q.file == p.file and q.start < p.end and p.start < q.end:
                same.add(other)
        return same

    def similar(
        self,
        *,
        text: str | None = None,
        passage_id: str | None = None,
        article_id: str | None = None,
        top_k: int = 10,
        level: str = "passage",
    ) -> list[PassageResult] | list[ArticleHit]:
        """Nearest passages or articles; never the item asked about (KeyError if unknown)."""
        exclude: set[int] = set()
        exclude_articles: set[str] = set()
        if passage_id is not None:
            row = self.index.passage_by_id.get(passage_id)
            if row is None:
                raise KeyError(f"no passage with id {passage_id!r}")
            vector = self.index.vectors[row]
            exclude = self._overlapping_rows(row)
            if level == "article":
                exclude_articles.add(self.index.passages[row].article_id)
        elif article_id is not None:
            if article_id not in self.index.articles:
                raise KeyError(f"no article with id {article_id!r}")
            rows = self.index.article_passages(article_id)
            if not rows:
                return []
            mean = self.index.vectors[rows].mean(axis=0)
            vector = mean / (np.linalg.norm(mean) or 1.0)
            exclude = set(rows)
            exclude_articles.add(article_id)
        else:
            vector = self.embedder.encode_document([text or ""])[0]
        want = top_k if level == "passage" else max(top_k * 8, 50)
        hits = self.retriever.search(
            "", want, "dense", exclude_rows=exclude or None, vector=vector
        ).hits
        if level == "passage":
            return [PassageResult(h.row, h) for h in hits[:top_k]]
        best: dict[str, ArticleHit] = {}
        for h in hits:
            aid = self.index.passages[h.row].article_id
            if aid in exclude_articles or aid in best:
                continue
            best[aid] = ArticleHit(aid, h.score, h.row)
        return list(best.values())[:top_k]
