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

Sharded indexes: this module reads one index's arrays and components (``keyword_index``,
``vector_index``, ``dates``, ``source_of``, ``article_of``); a router-level version of
these counts is what a sharded index needs.

Each article counts once per facet, under its month (``YYYY-MM``) and its source; an
article without a date counts under ``"unknown"`` month, one without a source under
``"unknown"`` source. Months come in date order, sources by count, ``"unknown"`` last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from indexer.choices import FACET_FIELDS, FacetField  # noqa: F401 (re-exported)
from qa_service.index import LoadedIndex
from qa_service.retrieval import Filters, QueryAnalysis, Retriever, allowed_rows

UNKNOWN = "unknown"
KEYWORD_SHARE = 0.5
DENSE_CANDIDATES = 1000
DENSE_MARGIN = 0.045


@dataclass(frozen=True)
class FacetValue:
    value: str
    count: int


def keyword_rows(index: LoadedIndex, tokens: Sequence[str]) -> np.ndarray:
    """Passages holding query words with at least ``KEYWORD_SHARE`` of the query's idf."""
    keywords = index.keyword_index
    matched = np.zeros(len(index.dates), dtype=bool)
    query = set(tokens)
    if keywords.bm25 is None or not query:
        return matched
    total = sum(keywords.idf.get(t, keywords.max_idf) for t in query)
    mass = np.zeros(len(index.dates), dtype=np.float64)
    for token in sorted(query & keywords.idf.keys()):
        present = np.asarray(keywords.bm25.get_scores([token])) > 0
        mass += keywords.idf[token] * present
    return (mass > 0) & (mass >= KEYWORD_SHARE * total - 1e-9)


def dense_rows(
    index: LoadedIndex, vector: np.ndarray, background: float, allowed: np.ndarray | None
) -> np.ndarray:
    """Passages among the nearest whose similarity stands ``DENSE_MARGIN`` above background."""
    matched = np.zeros(len(index.dates), dtype=bool)
    near = index.vector_index.search(vector, DENSE_CANDIDATES, allowed)
    rows = [row for row, score in near.items() if score >= background + DENSE_MARGIN]
    matched[rows] = True
    return matched


def matching_rows(
    retriever: Retriever,
    query: str,
    analysis: QueryAnalysis,
    mode: str,
    filters: Filters | None,
) -> np.ndarray:
    """Row numbers of the passages that match (module docstring), within the filters."""
    index = retriever.index
    allowed = allowed_rows(index, filters)
    matched = np.zeros(len(index.dates), dtype=bool)
    if mode != "dense":
        matched |= keyword_rows(index, analysis.tokens)
    if mode != "bm25" and len(index.dates):
        vector = retriever.embed_query(query)  # cached: the search just embedded it
        background = analysis.background or index.vector_index.background(vector)
        matched |= dense_rows(index, vector, background, allowed)
    if allowed is not None:
        matched &= allowed
    return np.flatnonzero(matched)


def _month(number: int) -> str:
    return f"{number // 100:04d}-{number % 100:02d}" if number else UNKNOWN


def count(
    index: LoadedIndex, rows: np.ndarray, fields: Sequence[FacetField]
) -> dict[FacetField, list[FacetValue]]:
    """Distinct articles of these passage rows, counted by each field."""
    _, first = np.unique(index.article_of[rows], return_index=True)
    one_row = rows[first]
    out: dict[FacetField, list[FacetValue]] = {}
    for field in dict.fromkeys(fields):
        if field == "month":
            months, counts = np.unique(index.dates[one_row] // 100, return_counts=True)
            pairs = list(zip(months.tolist(), counts.tolist(), strict=True))
            out[field] = [FacetValue(_month(m), c) for m, c in pairs if m] + [
                FacetValue(UNKNOWN, c) for m, c in pairs if not m
            ]
        else:
            codes, counts = np.unique(index.source_of[one_row], return_counts=True)
            values = [
                FacetValue(index.source_names[int(code)] or UNKNOWN, int(c))
                for code, c in zip(codes, counts, strict=True)
            ]
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
    rows = matching_rows(retriever, query, analysis, mode, filters)
    return count(retriever.index, rows, fields)
