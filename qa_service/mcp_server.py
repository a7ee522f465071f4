"""The news archive as Model Context Protocol tools for AI assistants: ``search_news``,
``ask_news``, ``get_article`` and ``similar_news``.

One FastMCP server serves both transports: ``python -m qa_service mcp`` runs it over stdio, and
the HTTP app routes ``/mcp`` to its streamable-HTTP app. It holds an engine *getter*, not an
engine, because the HTTP service swaps in a new engine after each admin write; a call works on
the engine that is current when it starts.

A tool takes what the matching HTTP endpoint takes and answers what it answers: inputs go
through the API's request models and the service's limits (so a tool refuses exactly what
``/search`` refuses, in the same words), and results are the API's response models, so every
passage carries its id, title, date, source and its ``file``/``start``/``end`` citation.

No ``from __future__ import annotations``: FastMCP reads the tools' signatures at run time, and
their bounds (``top_k`` up to the service's ``max_top_k``) are types made from the settings.
"""

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from pydantic import Field, ValidationError

from indexer.settings import Settings
from qa_service import schemas
from qa_service.api.errors import describe
from qa_service.engine import Engine

EngineGetter = Callable[[], Engine | None]
RequestT = TypeVar("RequestT", bound=schemas.LimitedRequest)

INSTRUCTIONS = (
    "Search and question answering over an archive of Chinese news articles (questions may be "
    "in Chinese or English). Every passage returned carries passage_id, article_id, title, "
    "date, source and its exact place in the source file (file, start, end): cite those. "
    "Use ask_news for a question, search_news to find passages, get_article to read a whole "
    "article, similar_news for related coverage."
)

#: Every tool only reads the index.
READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, openWorldHint=False)

Mode = Annotated[
    schemas.Mode,
    Field(description="hybrid (default: meaning and keywords), dense (meaning) or bm25 (keywords)"),
]
DateFrom = Annotated[
    dt.date | None, Field(description="only articles dated on or after this day, YYYY-MM-DD")
]
DateTo = Annotated[
    dt.date | None, Field(description="only articles dated on or before this day, YYYY-MM-DD")
]
Source = Annotated[
    str | None,
    Field(max_length=200, description="only articles from this newspaper, e.g. 重庆日报"),
]
Level = Annotated[
    schemas.Level,
    Field(description="passage (default): similar passages; article: similar articles"),
]
ArticleId = Annotated[
    str, Field(min_length=1, max_length=200, description="an article_id from a search result")
]


class NewsServer(FastMCP):
    """FastMCP whose tool errors are one plain sentence.

    FastMCP checks a call's arguments against the tool's signature before the tool runs and
    reports a failure as pydantic's multi-line text with links; it also prefixes a tool's own
    ``ToolError`` with "Error executing tool ...". Here a bad argument reads as the HTTP API's
    422 does (``top_k: Input should be less than or equal to 100``) and a tool's own error
    as itself."""

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        try:
            return await super().call_tool(name, arguments)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                raise ToolError(describe(cause.errors())) from None
            if isinstance(cause, ToolError):
                raise cause from None
            raise


def _checked(model: type[RequestT], limits: schemas.Limits, **fields: Any) -> RequestT:
    """The request as the HTTP API would read it, or a ToolError saying what is wrong."""
    try:
        request = model(**fields)
    except ValidationError as exc:
        raise ToolError(describe(exc.errors())) from None
    problems = request.limit_problems(limits)
    if problems:
        raise ToolError(describe({"loc": loc, "msg": msg} for loc, msg in problems))
    return request


def _filters(
    date_from: dt.date | None, date_to: dt.date | None, source: str | None
) -> dict[str, Any] | None:
    given = {"date_from": date_from, "date_to": date_to, "source": source}
    return {k: v for k, v in given.items() if v is not None} or None


def build_server(get_engine: EngineGetter, settings: Settings) -> FastMCP:
    """The MCP server over whatever engine ``get_engine`` returns at each call.

    Its streamable-HTTP app answers at ``/mcp``, stateless, with plain JSON responses: each
    call is one POST and one answer, as the rest of the HTTP API, so the service's time limit
    and request log apply and no session outlives a request. There is no DNS-rebinding host
    check: the tools are the same read-only queries as ``/search`` and ``/ask``, which have
    none, and one would refuse clients that reach the service by any name but localhost."""
    limits = schemas.Limits.from_settings(settings)
    top_k_field = Field(ge=1, le=limits.top_k, description=f"how many results, 1-{limits.top_k}")
    TopK = Annotated[int, top_k_field]
    Question = Annotated[
        str,
        Field(
            min_length=1,
            max_length=limits.question_chars,
            description="the question, in Chinese or English",
        ),
    ]
    Query = Annotated[
        str,
        Field(
            min_length=1,
            max_length=limits.question_chars,
            description="what to look for: words, a phrase or a question",
        ),
    ]
    Text = Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=limits.text_chars,
            description="find passages or articles similar to this text",
        ),
    ]
    PassageId = Annotated[
        str | None,
        Field(max_length=200, description="find what is similar to this passage (its passage_id)"),
    ]
    SimilarTo = Annotated[
        str | None,
        Field(max_length=200, description="find what is similar to this article (its article_id)"),
    ]

    server = NewsServer(
        "newsqa",
        instructions=INSTRUCTIONS,
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        log_level="WARNING",
    )

    def engine() -> Engine:
        current = get_engine()
        if current is None:
            raise ToolError("the index is not loaded yet")
        return current

    @server.tool(annotations=READ_ONLY)
    async def search_news(
        query: Query,
        ctx: Context,
        top_k: TopK = 10,
        mode: Mode = "hybrid",
        date_from: DateFrom = None,
        date_to: DateTo = None,
        source: Source = None,
    ) -> schemas.SearchResponse:
        """Find the news passages that best match a query, best first. Each result has the
        passage text, its article's title, date and source, and file/start/end: where the
        passage stands in the source file, for citing."""
        request = _checked(
            schemas.SearchRequest,
            limits,
            query=query,
            top_k=top_k,
            mode=mode,
            filters=_filters(date_from, date_to, source),
        )
        current = engine()
        filters = request.filters.to_filters() if request.filters else None
        results, _, timings = await anyio.to_thread.run_sync(
            current.search, request.query, request.top_k, request.mode, filters
        )
        return schemas.SearchResponse.from_results(
            request.query, results, timings, current.index, ctx.request_id
        )

    @server.tool(annotations=READ_ONLY)
    async def ask_news(
        question: Question,
        ctx: Context,
        top_k: TopK = 5,
        mode: Mode = "hybrid",
        date_from: DateFrom = None,
        date_to: DateTo = None,
        source: Source = None,
    ) -> schemas.AskResponse:
        """Answer a question from the news archive: answer sentences with [n] marks citing
        the numbered passages (1-based), or null with a message when no passage answers it,
        and the supporting passages with their file/start/end citations."""
        request = _checked(
            schemas.AskRequest,
            limits,
            question=question,
            top_k=top_k,
            mode=mode,
            filters=_filters(date_from, date_to, source),
        )
        current = engine()
        filters = request.filters.to_filters() if request.filters else None
        result = await anyio.to_thread.run_sync(
            current.ask, request.question, request.top_k, request.mode, filters
        )
        return schemas.AskResponse.from_result(
            request.question, result, current.index, ctx.request_id
        )

    @server.tool(annotations=READ_ONLY)
    async def get_article(article_id: ArticleId) -> schemas.ArticleOut:
        """Read one whole article by its article_id: title, date, byline, source, the cleaned
        text, its paragraphs and its passages with their citations."""
        current = engine()
        article = current.index.articles.get(article_id)
        if article is None:
            raise ToolError(f"no article with id {article_id!r}")
        return schemas.ArticleOut.from_article(current.index, article)

    @server.tool(annotations=READ_ONLY)
    async def similar_news(
        ctx: Context,
        text: Text = None,
        passage_id: PassageId = None,
        article_id: SimilarTo = None,
        top_k: TopK = 10,
        level: Level = "passage",
    ) -> schemas.SimilarResponse:
        """Find passages (or, with level=article, articles) similar to a text, a passage or an
        article; give exactly one of text, passage_id and article_id. The item asked about is
        never among its own results."""
        request = _checked(
            schemas.SimilarRequest,
            limits,
            text=text,
            passage_id=passage_id,
            article_id=article_id,
            top_k=top_k,
            level=level,
        )
        current = engine()

        def similar() -> list:
            return current.similar(
                text=request.text,
                passage_id=request.passage_id,
                article_id=request.article_id,
                top_k=request.top_k,
                level=request.level,
            )

        try:
            found = await anyio.to_thread.run_sync(similar)
        except KeyError as exc:
            raise ToolError(exc.args[0]) from None
        return schemas.SimilarResponse.from_found(
            request.level, found, current.index, ctx.request_id
        )

    return server
