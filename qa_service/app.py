"""The FastAPI application, assembled: lifespan, middleware, error handlers, routers and the
web page. The handlers are in ``qa_service.api``; the work happens in ``Engine``."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from indexer.settings import Settings, get_settings
from qa_service import mcp_server
from qa_service.api import articles, embeddings, errors, operations, queries
from qa_service.middleware import RequestMiddleware
from qa_service.router import ShardUnavailable
from qa_service.state import ServiceState

STATIC = Path(__file__).parent / "static"


def page() -> FileResponse:
    """The web page (``static/``: plain ES modules, no build step)."""
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


def create_app(
    index_path: Path | None = None,
    settings: Settings | None = None,
    state: ServiceState | None = None,
) -> FastAPI:
    """Build the app. Pass ``state`` to share a loaded model between apps (tests do)."""
    settings = settings or get_settings()
    service = state or ServiceState(settings, Path(index_path or settings.index_dir))
    mcp = mcp_server.build_server(lambda: service.engine, settings)  # the same engine
    mcp_app = mcp.streamable_http_app()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()  # model and index, once; requests never load anything
        # FastAPI does not run a routed sub-app's lifespan: the MCP sessions' task group here.
        async with mcp.session_manager.run():
            yield

    app = FastAPI(
        title="Chinese news QA",
        version="0.1.0",
        description="Ask questions over an archive of Chinese news; every passage is cited "
        "to its exact place in the source file.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(RequestMiddleware, service=service)
    app.add_exception_handler(RequestValidationError, errors.invalid_request)
    app.add_exception_handler(ShardUnavailable, errors.shard_unavailable)
    app.add_exception_handler(Exception, errors.unhandled)
    for module in (queries, articles, embeddings, operations):
        app.include_router(module.router)
    app.add_api_route("/", page, include_in_schema=False)
    # The SDK's app on the one path it serves: a Mount("/mcp") would answer at /mcp/ and
    # redirect /mcp, and a Mount("/") would take over the JSON 404 of every unknown path.
    app.add_route("/mcp", mcp_app, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
