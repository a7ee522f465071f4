"""Running the service: liveness, readiness, index statistics and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from qa_service.api.deps import EngineDep, StateDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict:
    """The process answers (the index may still be loading: see /readyz)."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
def readyz(state: StateDep) -> dict | JSONResponse:
    engine = state.engine
    if engine is None:
        return JSONResponse(
            {"ready": False, "detail": state.load_error or "loading"}, status_code=503
        )
    problem = engine.index.unready()  # a sharded index: every shard of this generation
    if problem:
        return JSONResponse({"ready": False, "detail": problem}, status_code=503)
    return {
        "ready": True,
        "index": str(state.index_path),
        "version": engine.index.version,
        "model": state.embedder.identity.name,
    }


@router.get("/stats")
def stats(state: StateDep, engine: EngineDep) -> dict:
    return state.stats(engine)


@router.get("/metrics")
def metrics(state: StateDep) -> Response:
    state.metrics.refresh(state)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
