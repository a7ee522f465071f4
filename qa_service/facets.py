"""Facets: how many distinct articles match a query, by month and by source.

A ranked list says which passages come first; a facet says how much of the archive is about
the query, and when and where it appeared (the web page's timeline). So facets count
*matching articles*, not the returned page of results, and the count does not depend on
``top_k`` or ``offset``. An article matches when at least one of its passages, within the
request's filters, matches by the signals of the request's mode:

* keywords (``bm25`` and ``hybrid``): the passage holds query words carrying at least
  :data:`KEYWORD_SHARE` of the query's idf weight (the measure of ``coverage``; a word the
  collection never saw counts as missing). A one-word query matches the passages that have
  the word; a question in plain words is not matched by one common word of it.
* meaning (``dense`` and ``hybrid``): the passage is among the :data:`DENSE_CANDIDATES`
  nearest to the query and its similarity stands at least :data:`DENSE_MARGIN` above the
  query's background similarity (its median similarity to the collection, as
  ``VectorIndex.background`` computes it). On the seed set passages that answer a question
  stand 0.045 or more above it, unrelated ones 0.015-0.035 (``answer.confidence`` reads the
  same margin).

The counts go through the router (``qa_service.router``), so a plain index (one shard) and a
sharded one give the same numbers: the router sends each shard the whole index's idf and the
keyword threshold; for the meaning side it asks every shard for its nearest passages above
the margin and keeps the :data:`DENSE_CANDIDATES` best of all (by exact score, ties by passage
id); then each shard counts its own matching articles (an article lives in one shard only,
its id's hash) and the router adds the counts up.

Each article counts once per facet, under its month (``YYYY-MM``) and its source; an
article without a date counts under ``"unknown"`` month, one without a source under
``"unknown"`` source. Months come in date order, sources by count, ``"unknown"`` last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from indexer.choices import FACET_FIELDS, FacetField  # noqa: F401 (re-exported)
from qa_service.retrieval import Filters, QueryAnalysis, Retriever
from qa_service.router import Router, merge
from qa_service.shard import FacetCounts, FacetQuery

UNKNOWN = "unknown"
KEYWORD_SHARE = 0.5
DENSE_CANDIDATES = 1000
DENSE_MARGIN = 0.045


@dataclass(frozen=True)
class FacetValue:
    value: str
    count: int


def keyword_query(router: Router, tokens: Sequence[str]) -> FacetQuery:
    """The keyword side of matching: the query's known tokens with their idf over the whole
    index, and the idf mass a passage needs (``KEYWORD_SHARE`` of the query's; a token the
    index never saw weighs as much as the rarest one and is always missing)."""
    stats = router.stats
    query = sorted(set(tokens))
    terms = tuple(t for t in query if t in stats.df)
    total = sum(stats.idf(t) if t in stats.df else stats.max_idf for t in query)
    return FacetQuery(
        terms=terms,
        idf=tuple(stats.idf(t) for t in terms),
        need=KEYWORD_SHARE * total - 1e-9,
        keyword=True,
    )


def dense_rows(
    router: Router, vector: np.ndarray, background: float, filters: Filters | None
) -> dict[int, tuple[int, ...]]:
    """The ``DENSE_CANDIDATES`` allowed passages nearest the query over all shards that
    stand ``DENSE_MARGIN`` above its background, as each shard's rows."""
    found = router.call_all("near", vector, DENSE_CANDIDATES, background + DENSE_MARGIN, filters)
    best = merge(list(enumerate(found)), DENSE_CANDIDATES)
    return {i: tuple(rows) for i, rows in router.by_shard([row for _, _, row in best]).items()}


def matching_counts(
    router: Router,
    tokens: Sequence[str],
    vector: np.ndarray | None,
    background: float,
    mode: str,
    filters: Filters | None,
) -> list[FacetCounts]:
    """Each shard's matching articles (module docstring), counted by month and source."""
    query = keyword_query(router, tokens) if mode != "dense" else FacetQuery()
    query = replace(query, filters=filters)
    near = dense_rows(router, vector, background, filters) if mode != "bm25" else {}
    calls = [
        (i, "facet_counts", (replace(query, dense_rows=near.get(i, ())),))
        for i in range(len(router.shards))
    ]
    return router.call_some(calls)


def _month(number: int) -> str:
    return f"{number // 100:04d}-{number % 100:02d}" if number else UNKNOWN


def count(
    found: Sequence[FacetCounts], fields: Sequence[FacetField]
) -> dict[FacetField, list[FacetValue]]:
    """The shards' counts added up, for each field."""
    out: dict[FacetField, list[FacetValue]] = {}
    for field in dict.fromkeys(fields):
        totals: dict = {}
        for counts in found:
            for key, n in (counts.months if field == "month" else counts.sources).items():
                totals[key] = totals.get(key, 0) + n
        if field == "month":
            out[field] = [FacetValue(_month(m), totals[m]) for m in sorted(totals) if m] + (
                [FacetValue(UNKNOWN, totals[0])] if 0 in totals else []
            )
        else:
            values = [FacetValue(name or UNKNOWN, n) for name, n in totals.items()]
            out[field] = sorted(values, key=lambda v: (v.value == UNKNOWN, -v.count, v.value))
    return out


def facets(
    retriever: Retriever,
    query: str,
    analysis: QueryAnalysis,
    mode: str,
    filters: Filters | None,
    fields: Sequence[FacetField],
) -> dict[FacetField, list[FacetValue]]:
    """The facet counts of a query that was just searched (its ``analysis``)."""
    vector = retriever.embed_query(query) if mode != "bm25" else None  # cached: just embedded
    found = matching_counts(
        retriever.router, analysis.tokens, vector, analysis.background, mode, filters
    )
    return count(found, fields)
