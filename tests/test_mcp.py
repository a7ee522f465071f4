"""The MCP tools through the SDK's own client: over stdio against ``python -m qa_service mcp``
as an assistant would start it, and over streamable HTTP at the service's ``/mcp``."""

from __future__ import annotations

import os
import sys
from typing import Any

import anyio
import httpx
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from indexer.clean import squash
from tests.conftest import REPO, SEEDS
from tests.helpers.server import serve
from tests.helpers.service import make_app

TOOLS = {"search_news", "ask_news", "get_article", "similar_news"}
QUERY = "北碚经济技术开发区规划总面积"


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict:
    """A tool's structured result, after checking the call succeeded."""
    result = await session.call_tool(tool, arguments)
    assert not result.isError, result.content
    assert result.structuredContent is not None
    return result.structuredContent


async def refused(session: ClientSession, tool: str, **arguments: Any) -> str:
    """The plain message of a tool error (an error result, not a failed request)."""
    result: CallToolResult = await session.call_tool(tool, arguments)
    assert result.isError, result.structuredContent
    message = result.content[0].text
    assert "Traceback" not in message and "\n" not in message, message
    return message


def assert_cited(passage: dict) -> None:
    """The passage's file/start/end hold its text (white space aside)."""
    raw = (SEEDS / passage["file"]).read_text(encoding="utf-8")
    assert squash(raw[passage["start"] : passage["end"]]) == squash(passage["text"])


async def check_tools(session: ClientSession, max_top_k: int) -> None:
    tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and tool.outputSchema
        assert tool.annotations and tool.annotations.readOnlyHint
    search = tools["search_news"].inputSchema
    assert search["required"] == ["query"]
    assert search["properties"]["query"]["minLength"] == 1
    assert search["properties"]["top_k"]["maximum"] == max_top_k
    assert "description" in search["properties"]["query"]
    assert tools["get_article"].inputSchema["required"] == ["article_id"]
    assert {"text", "passage_id", "article_id", "level"} <= set(
        tools["similar_news"].inputSchema["properties"]
    )


# ---------------------------------------------------------------------- stdio


async def drive_stdio(index: str, max_top_k: int, errlog) -> list[Exception]:
    """Every tool through a real subprocess; returns what the client could not parse."""
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "qa_service", "mcp", "--index", index],
        cwd=REPO,
        env=dict(os.environ),  # the same settings and offline model as this test
    )
    unparsed: list[Exception] = []

    async def on_message(message) -> None:
        if isinstance(message, Exception):  # a stdout line that is not a protocol message
            unparsed.append(message)

    async with (
        stdio_client(server, errlog=errlog) as (read, write),
        ClientSession(read, write, message_handler=on_message) as session,
    ):
        await session.initialize()
        await check_tools(session, max_top_k)

        found = await call(session, "search_news", query=QUERY, top_k=3)
        assert found["query"] == QUERY and len(found["results"]) == 3
        best = found["results"][0]
        assert "172.6" in best["text"]
        for key in ("passage_id", "article_id", "title", "date", "source", "file", "start"):
            assert key in best
        for passage in found["results"]:
            assert_cited(passage)

        asked = await call(session, "ask_news", question=f"{QUERY}是多少？", top_k=3)
        assert asked["answer"] and "172.6" in asked["answer"]["text"]
        cited = asked["passages"][asked["answer"]["citations"][0] - 1]
        assert "172.6" in cited["text"]
        assert_cited(cited)

        article = await call(session, "get_article", article_id=best["article_id"])
        assert article["title"] == best["title"]
        assert best["passage_id"] in {p["passage_id"] for p in article["passages"]}

        similar = await call(session, "similar_news", passage_id=best["passage_id"], top_k=3)
        assert similar["level"] == "passage" and len(similar["results"]) == 3
        assert best["passage_id"] not in {p["passage_id"] for p in similar["results"]}
        articles = await call(
            session, "similar_news", article_id=best["article_id"], top_k=2, level="article"
        )
        assert best["article_id"] not in {a["article_id"] for a in articles["results"]}

        # Bad input: an error result with a plain message; the server goes on answering.
        assert "no article with id" in await refused(session, "get_article", article_id="nope")
        assert "must not be empty" in await refused(session, "search_news", query="   ")
        assert "top_k" in await refused(session, "search_news", query=QUERY, top_k=10_000)
        assert "exactly one" in await refused(session, "similar_news", text="北碚", passage_id="x")
        assert "no passage" in await refused(session, "similar_news", passage_id="nope")
        again = await call(session, "search_news", query=QUERY, top_k=1)
        assert again["results"][0]["passage_id"] == best["passage_id"]
    return unparsed


@pytest.mark.model
def test_stdio_server_answers_every_tool(seed_index, settings, tmp_path):
    log = tmp_path / "server.stderr"
    with log.open("w") as errlog:
        try:
            unparsed = anyio.run(drive_stdio, str(seed_index), settings.max_top_k, errlog)
        except BaseException:
            print(log.read_text()[-3000:], file=sys.stderr)
            raise
    assert not unparsed, unparsed  # stdout carried the protocol and nothing else
    assert "Traceback" not in log.read_text()


# ----------------------------------------------------------------------- HTTP


async def drive_http(url: str, max_top_k: int) -> None:
    async with (
        streamable_http_client(url) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        await check_tools(session, max_top_k)
        found = await call(session, "search_news", query=QUERY, top_k=max_top_k)
        assert "172.6" in found["results"][0]["text"]
        for passage in found["results"]:
            assert_cited(passage)
        message = await refused(session, "search_news", query=QUERY, top_k=max_top_k + 1)
        assert message.startswith("top_k:")


def test_http_mcp_shares_the_service(settings, seed_index, embedder):
    """``/mcp`` on the running service, with that service's limits and loaded engine."""
    app = make_app(settings, seed_index, embedder, max_top_k=7)
    with serve(app) as base:
        anyio.run(drive_http, f"{base}/mcp", 7)
        # the rest of the API is untouched by the route: unknown paths are still JSON 404s
        missing = httpx.get(f"{base}/mcp-nope")
        assert missing.status_code == 404 and missing.json()["detail"]
        assert httpx.get(f"{base}/healthz").status_code == 200
