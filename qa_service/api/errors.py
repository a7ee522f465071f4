"""Error responses: every error is ``{"detail": "<one plain sentence>"}``."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from qa_service.api.deps import request_id
from qa_service.router import ShardUnavailable

log = logging.getLogger("qa_service")


def describe(errors: Iterable[dict]) -> str:
    """Validation errors (pydantic's ``errors()`` shape) as one plain sentence naming each bad
    field: ``top_k: must be at most 100; mode: ...``. The MCP tools say it the same way."""
    messages = []
    for err in errors:
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        messages.append(f"{where}: {msg}" if where else msg)
    return "; ".join(messages) or "invalid request"


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A 422 naming each bad field."""
    return JSONResponse({"detail": describe(exc.errors())}, status_code=422)


async def shard_unavailable(request: Request, exc: ShardUnavailable) -> JSONResponse:
    """A 503 naming the shard of a sharded index that did not answer: the request failed
    whole (never a partial result)."""
    return JSONResponse(
        {"detail": str(exc), "shard": exc.shard}, status_code=503, headers={"Retry-After": "2"}
    )


async def unhandled(request: Request, exc: Exception) -> JSONResponse:
    """A 500 that says which request failed, and no more (the log has the traceback)."""
    rid = request_id(request)
    log.exception("unhandled error", extra={"request_id": rid})
    return JSONResponse({"detail": f"internal error (request id {rid})"}, status_code=500)
