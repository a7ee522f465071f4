"""Questions and searches: /ask, /search, /similar."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from qa_service import schemas
from qa_service.api.deps import AskBody, EngineDep, RequestIdDep, SearchBody, SimilarBody
from qa_service.retrieval import Filters

router = APIRouter(tags=["queries"])


def _filters(f: schemas.FiltersIn | None) -> Filters | None:
    return None if f is None else f.to_filters()


@router.post("/ask", response_model=schemas.AskResponse)
def ask(body: AskBody, engine: EngineDep, rid: RequestIdDep) -> schemas.AskResponse:
    result = engine.ask(body.question, body.top_k, body.mode, _filters(body.filters))
    return schemas.AskResponse.from_result(body.question, result, engine.index, rid)


@router.post("/search", response_model=schemas.SearchResponse)
def search(body: SearchBody, engine: EngineDep, rid: RequestIdDep) -> schemas.SearchResponse:
    results, _, timings = engine.search(body.query, body.top_k, body.mode, _filters(body.filters))
    return schemas.SearchResponse.from_results(body.query, results, timings, engine.index, rid)


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
