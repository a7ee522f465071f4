"""What handlers depend on: the service state, the loaded engine, the admin check, the request
id, and request bodies checked against the service's limits.

No ``from __future__ import annotations`` here: ``within_limits`` annotates its dependency
with a class chosen at run time, which FastAPI must see as a class, not as a string.
"""

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError

from indexer.settings import Settings
from qa_service import schemas
from qa_service.engine import Engine
from qa_service.state import ServiceState


def get_state(request: Request) -> ServiceState:
    return request.app.state.service


StateDep = Annotated[ServiceState, Depends(get_state)]


def app_settings(state: StateDep) -> Settings:
    """The running service's settings (not the process-wide ``indexer.settings`` ones)."""
    return state.settings


SettingsDep = Annotated[Settings, Depends(app_settings)]


def get_engine(state: StateDep) -> Engine:
    engine = state.engine
    if engine is None:
        raise HTTPException(503, "the index is not loaded yet")
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def require_admin(
    settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    """Admin writes need ``Authorization: Bearer <NEWSQA_ADMIN_TOKEN>``."""
    expected = settings.admin_token
    if not expected:
        raise HTTPException(403, "admin writes are disabled: no NEWSQA_ADMIN_TOKEN is configured")
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(
            401,
            "admin token missing: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    given = authorization.removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(403, "wrong admin token")


AdminDep = Depends(require_admin)


def request_id(request: Request) -> str:
    """The id ``RequestMiddleware`` gave this request (echoed in ``X-Request-ID``)."""
    return getattr(request.state, "request_id", "")


RequestIdDep = Annotated[str, Depends(request_id)]


def within_limits(model):
    """A dependency that reads the body as ``model`` (a ``LimitedRequest`` or a union of them)
    and refuses it with a 422, as any other invalid body, when it exceeds the limits of the
    running service's settings. Pydantic checks the shape; the sizes depend on the app."""

    def check(body: model, settings: SettingsDep) -> model:
        problems = body.limit_problems(schemas.Limits.from_settings(settings))
        if problems:
            raise RequestValidationError(
                [
                    {"type": "limit", "loc": ("body", *loc), "msg": msg, "input": None}
                    for loc, msg in problems
                ]
            )
        return body

    return Depends(check)


AskBody = Annotated[schemas.AskRequest, within_limits(schemas.AskRequest)]
SearchBody = Annotated[schemas.SearchRequest, within_limits(schemas.SearchRequest)]
SimilarBody = Annotated[schemas.SimilarRequest, within_limits(schemas.SimilarRequest)]
ArticlesBody = Annotated[
    schemas.ArticlesIn | schemas.ArticleIn,
    within_limits(schemas.ArticlesIn | schemas.ArticleIn),
]
EmbeddingsBody = Annotated[schemas.EmbeddingsRequest, within_limits(schemas.EmbeddingsRequest)]
