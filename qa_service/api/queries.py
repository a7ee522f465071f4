"""Questions and searches: /ask, /search, /similar."""

from __future__ import annotations

import time
from collections.abc import Sequence

from fastapi import APIRouter, HTTPException

from qa_service import facets, schemas
from qa_service.api.deps import AskBody, EngineDep, RequestIdDep, SearchBody, SimilarBody
from qa_service.engine import Engine
from qa_service.retrieval import Filters, QueryAnalysis

router = APIRouter(tags=["queries"])


def _filters(f: schemas.FiltersIn | None) -> Filters | None:
    return None if f is None else f.to_filters()


def _facets(
    engine: Engine,
    query: str,
    analysis: QueryAnalysis,
    mode: str,
    filters: Filters | None,
    fields: Sequence[facets.FacetField],
    timings: dict[str, float],
) -> dict[facets.FacetField, list[facets.FacetValue]] | None:
    """The facet counts a request asked for (None when it asked for none), timed."""
    if not fields:
        return None
    start = time.perf_counter()
    found = facets.facets(engine.retriever, query, analysis, mode, filters, fields)
    timings["facets_ms"] = round((time.perf_counter() - start) * 1000, 2)
    return found


@router.post("/ask", response_model=schemas.AskResponse)
def ask(body: AskBody, engine: EngineDep, rid: RequestIdDep) -> schemas.AskResponse:
    filters = _filters(body.filters)
    result = engine.ask(
        body.question,
        body.top_k,
        body.mode,
        filters,
        recency_half_life_days=body.recency_half_life_days,
    )
    counts = _facets(
        engine, body.question, result.analysis, body.mode, filters, body.facets, result.timings
    )
    return schemas.AskResponse.from_result(body.question, result, engine.index, rid, counts)


@router.post("/search", response_model=schemas.SearchResponse)
def search(body: SearchBody, engine: EngineDep, rid: RequestIdDep) -> schemas.SearchResponse:
    filters = _filters(body.filters)
    results, analysis, timings = engine.search(
        body.query,
        body.top_k,
        body.mode,
        filters,
        offset=body.offset,
        recency_half_life_days=body.recency_half_life_days,
    )
    counts = _facets(engine, body.query, analysis, body.mode, filters, body.facets, timings)
    return schemas.SearchResponse.from_results(
        body.query, results, timings, engine.index, rid, offset=body.offset, facets=counts
    )


@router.post("/similar", response_model=schemas.SimilarResponse)
def similar(body: SimilarBody, engine: EngineDep, rid: RequestIdDep) -> schemas.SimilarResponse:
    try:
        found = engine.similar(
            text=body.text,
            passage_id=body.passage_id,
            article_id=body.article_id,
            top_k=body.top_k,
            level=body.level,
        )
    except KeyError as exc:
        raise HTTPException(404, exc.args[0]) from None
    return schemas.SimilarResponse.from_found(body.level, found, engine.index, rid)
