"""The FastAPI application: routes, dependencies, errors. The work happens in ``Engine``."""

from __future__ import annotations

import base64
import hmac
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from indexer.settings import Settings, get_settings
from qa_service import schemas
from qa_service.engine import ArticleHit, Engine, PassageResult
from qa_service.middleware import RequestMiddleware
from qa_service.retrieval import Filters
from qa_service.state import ServiceState

log = logging.getLogger("qa_service")
STATIC = Path(__file__).parent / "static"


# ----------------------------------------------------------------- dependencies


def get_state(request: Request) -> ServiceState:
    return request.app.state.service


def get_engine(state: Annotated[ServiceState, Depends(get_state)]) -> Engine:
    engine = state.engine
    if engine is None:
        raise HTTPException(503, "the index is not loaded yet")
    return engine


def require_admin(
    state: Annotated[ServiceState, Depends(get_state)],
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    """Admin writes need ``Authorization: Bearer <NEWSQA_ADMIN_TOKEN>``."""
    expected = state.settings.admin_token
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


EngineDep = Annotated[Engine, Depends(get_engine)]
StateDep = Annotated[ServiceState, Depends(get_state)]


def request_id(request: Request) -> str:
    return getattr(request.state, "request_id", "")


# ---------------------------------------------------------------- conversions


def _filters(f: schemas.FiltersIn | None) -> Filters | None:
    if f is None:
        return None
    return Filters(
        date_from=f.date_from.isoformat() if f.date_from else None,
        date_to=f.date_to.isoformat() if f.date_to else None,
        source=f.source,
        article_ids=f.article_ids,
    )


def _passage_out(engine: Engine, r: PassageResult) -> schemas.PassageOut:
    p = engine.index.passages[r.row]
    a = engine.index.articles[p.article_id]
    return schemas.PassageOut(
        passage_id=p.passage_id,
        article_id=p.article_id,
        position=p.position,
        title=a.title,
        date=a.date,
        source=a.source,
        file=p.file,
        start=p.start,
        end=p.end,
        text=p.text,
        score=round(r.hit.score, 6),
        scores=schemas.Scores(
            dense=None if r.hit.dense is None else round(r.hit.dense, 6),
            bm25=None if r.hit.bm25 is None else round(r.hit.bm25, 6),
        ),
        highlights=r.highlights,
    )


def _article_hit_out(engine: Engine, h: ArticleHit) -> schemas.ArticleHitOut:
    a = engine.index.articles[h.article_id]
    return schemas.ArticleHitOut(
        article_id=a.article_id,
        title=a.title,
        date=a.date,
        source=a.source,
        file=a.file,
        score=round(h.score, 6),
        best_passage_id=engine.index.passages[h.best_row].passage_id,
    )


# ------------------------------------------------------------------------ app


def create_app(
    index_path: Path | None = None,
    settings: Settings | None = None,
    state: ServiceState | None = None,
) -> FastAPI:
    """Build the app. Pass ``state`` to share a loaded model between apps (tests do)."""
    settings = settings or get_settings()
    service = state or ServiceState(settings, Path(index_path or settings.index_dir))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()  # model and index, once; requests never load anything
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

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        messages = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            messages.append(f"{where}: {msg}" if where else msg)
        return JSONResponse({"detail": "; ".join(messages) or "invalid request"}, status_code=422)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"request_id": request_id(request)})
        return JSONResponse(
            {"detail": f"internal error (request id {request_id(request)})"}, status_code=500
        )

    # -------------------------------------------------------------- queries

    @app.post("/ask", response_model=schemas.AskResponse)
    def ask(body: schemas.AskRequest, engine: EngineDep, request: Request):
        result = engine.ask(body.question, body.top_k, body.mode, _filters(body.filters))
        answer = None
        message = None
        if result.answer is not None:
            a = result.answer
            answer = schemas.AnswerOut(text=a.text, citations=a.citations, confidence=a.confidence)
        elif result.passages:
            message = "No passage answers this question with enough confidence."
        else:
            message = "Nothing in the index matches this question."
        return schemas.AskResponse(
            question=body.question,
            answer=answer,
            message=message,
            passages=[_passage_out(engine, r) for r in result.passages],
            timings=result.timings,
            request_id=request_id(request),
        )

    @app.post("/search", response_model=schemas.SearchResponse)
    def search(body: schemas.SearchRequest, engine: EngineDep, request: Request):
        results, _, timings = engine.search(
            body.query, body.top_k, body.mode, _filters(body.filters)
        )
        return schemas.SearchResponse(
            query=body.query,
            results=[_passage_out(engine, r) for r in results],
            timings=timings,
            request_id=request_id(request),
        )

    @app.post("/similar", response_model=schemas.SimilarResponse)
    def similar(body: schemas.SimilarRequest, engine: EngineDep, request: Request):
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
        if body.level == "article":
            results = [_article_hit_out(engine, h) for h in found]
        else:
            results = [_passage_out(engine, r) for r in found]
        return schemas.SimilarResponse(
            level=body.level, results=results, request_id=request_id(request)
        )

    # -------------------------------------------------------------- articles

    @app.get("/articles/{article_id}", response_model=schemas.ArticleOut)
    def get_article(article_id: str, engine: EngineDep):
        article = engine.index.articles.get(article_id)
        if article is None:
            raise HTTPException(404, f"no article with id {article_id!r}")
        rows = engine.index.article_passages(article_id)
        from qa_service.retrieval import Hit

        return schemas.ArticleOut(
            article_id=article.article_id,
            title=article.title,
            date=article.date,
            byline=article.byline,
            source=article.source,
            url=article.url,
            file=article.file,
            files=[article.file, *article.extra_files],
            text=article.text,
            paragraphs=[
                schemas.ParagraphOut(text=p.text, start=p.start, end=p.end)
                for p in article.paragraphs
            ],
            passages=[_passage_out(engine, PassageResult(r, Hit(r, 0.0))) for r in rows],
        )

    @app.post(
        "/articles", response_model=schemas.WriteResult, dependencies=[Depends(require_admin)]
    )
    def add_articles(body: schemas.ArticlesIn | schemas.ArticleIn, state: StateDep):
        items = body.articles if isinstance(body, schemas.ArticlesIn) else [body]
        return state.add_articles(items)

    @app.delete(
        "/articles/{article_id}",
        response_model=schemas.WriteResult,
        dependencies=[Depends(require_admin)],
    )
    def delete_article(article_id: str, state: StateDep):
        try:
            return state.remove_article(article_id)
        except KeyError as exc:
            raise HTTPException(404, exc.args[0]) from None

    # ------------------------------------------------------------ embeddings

    @app.post("/v1/embeddings")
    def embeddings(body: schemas.EmbeddingsRequest, state: StateDep, engine: EngineDep):
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        name = state.embedder.identity.name
        if body.model and body.model not in (name, "default"):
            raise HTTPException(
                404, f"model {body.model!r} is not served here; this index uses {name!r}"
            )
        encode = (
            state.embedder.encode_query
            if body.input_type == "query"
            else state.embedder.encode_document
        )
        vectors = encode(texts)
        data = []
        for i, v in enumerate(vectors):
            if body.encoding_format == "base64":
                emb = base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode()
            else:
                emb = v.tolist()
            data.append({"object": "embedding", "index": i, "embedding": emb})
        tokens = sum(len(state.embedder.model.tokenizer(t)["input_ids"]) for t in texts)
        return {
            "object": "list",
            "data": data,
            "model": name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    # --------------------------------------------------------------- health

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz(state: StateDep):
        engine = state.engine
        if engine is None:
            return JSONResponse(
                {"ready": False, "detail": state.load_error or "loading"}, status_code=503
            )
        return {
            "ready": True,
            "index": str(state.index_path),
            "version": engine.index.version,
            "model": state.embedder.identity.name,
        }

    @app.get("/stats")
    def stats(state: StateDep, engine: EngineDep):
        return state.stats(engine)

    @app.get("/metrics")
    def metrics(state: StateDep):
        state.metrics.refresh(state)
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    return app
