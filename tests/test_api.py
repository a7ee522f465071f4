"""The HTTP API against the real model and the seed index: every endpoint, every error case."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from indexer.clean import squash
from tests.conftest import SEEDS


@pytest.fixture(scope="module")
def client(seed_index, embedder, settings):
    from qa_service.app import create_app
    from qa_service.state import ServiceState

    state = ServiceState(settings, seed_index, embedder=embedder)
    with TestClient(create_app(settings=settings, state=state)) as c:
        yield c


def ask(client, question, **kw):
    r = client.post("/ask", json={"question": question, **kw})
    assert r.status_code == 200, r.text
    return r.json()


# ------------------------------------------------------------------------ /ask


def test_ask_answers_with_exact_citations(client):
    body = ask(client, "北碚经济技术开发区规划总面积是多少？")
    answer = body["answer"]
    assert answer and "172.6" in answer["text"]
    assert re.search(r"\[\d\]", answer["text"]) and answer["citations"]
    assert 0 < answer["confidence"] <= 1
    cited = body["passages"][answer["citations"][0] - 1]
    assert "172.6" in cited["text"]
    for p in body["passages"]:
        raw = (SEEDS / p["file"]).read_text(encoding="utf-8")
        assert squash(raw[p["start"] : p["end"]]) == squash(p["text"])
        for s, e in p["highlights"]:
            assert 0 <= s < e <= len(p["text"])
        assert set(p["scores"]) == {"dense", "bm25"}
    assert body["request_id"] and body["timings"]["total_ms"] > 0


def test_ask_english_question(client):
    body = ask(client, "How many migrant workers took the special train to Guangdong?")
    assert any("229" in p["text"] for p in body["passages"][:3])


def test_ask_highlights_the_answer_sentence(client):
    body = ask(client, "剑涛智慧产业园项目总投资多少？")
    cited = body["passages"][body["answer"]["citations"][0] - 1]
    marked = [cited["text"][s:e] for s, e in cited["highlights"]]
    assert any("2亿元" in m for m in marked)


def test_ask_unrelated_question_has_no_answer(client):
    body = ask(client, "What is the boiling point of liquid nitrogen in Kelvin?")
    assert body["answer"] is None
    assert body["message"]


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_ask_modes(client, mode):
    body = ask(client, "大足农民工乘坐哪趟列车返岗？", mode=mode, top_k=3)
    assert len(body["passages"]) <= 3
    assert any("D1851" in p["text"] for p in body["passages"])


# --------------------------------------------------------------------- /search


def test_search_and_filters(client):
    r = client.post("/search", json={"query": "鑫景特种玻璃", "top_k": 3, "mode": "bm25"})
    assert r.status_code == 200
    results = r.json()["results"]
    assert "鑫景" in results[0]["text"]
    aid = results[0]["article_id"]
    r = client.post(
        "/search", json={"query": "经济", "top_k": 10, "filters": {"article_ids": [aid]}}
    )
    assert {x["article_id"] for x in r.json()["results"]} == {aid}


# -------------------------------------------------------------------- /similar


def test_similar_never_returns_the_item_itself(client):
    first = client.post("/search", json={"query": "算力网络国家枢纽节点", "top_k": 1}).json()
    p = first["results"][0]
    r = client.post("/similar", json={"passage_id": p["passage_id"], "top_k": 10})
    assert r.status_code == 200
    results = r.json()["results"]
    assert results and p["passage_id"] not in [x["passage_id"] for x in results]
    assert squash(p["text"]) not in [squash(x["text"]) for x in results]
    r = client.post("/similar", json={"article_id": p["article_id"], "level": "article"})
    ids = [x["article_id"] for x in r.json()["results"]]
    assert ids and p["article_id"] not in ids
    r = client.post("/similar", json={"text": "数据中心集群和东数西算工程", "level": "article"})
    assert r.status_code == 200 and r.json()["results"]


def test_similar_unknown_ids_are_404(client):
    assert client.post("/similar", json={"passage_id": "nope"}).status_code == 404
    assert client.post("/similar", json={"article_id": "nope"}).status_code == 404


def test_similar_needs_exactly_one_input(client):
    r = client.post("/similar", json={"text": "abc", "article_id": "x"})
    assert r.status_code == 422 and "exactly one" in r.json()["detail"]
    assert client.post("/similar", json={}).status_code == 422


# ------------------------------------------------------------- /articles, misc


def test_get_article(client):
    p = client.post("/search", json={"query": "剑涛智慧产业园", "top_k": 1}).json()["results"][0]
    r = client.get(f"/articles/{p['article_id']}")
    assert r.status_code == 200
    art = r.json()
    assert art["title"] == "剑涛智慧产业园项目开工建设"
    assert p["passage_id"] in [x["passage_id"] for x in art["passages"]]
    assert client.get("/articles/does-not-exist").status_code == 404


def test_article_passages_are_placed_in_the_article_text(client):
    """``text[article_start:article_end]`` is each passage's text; listed passages have no score."""
    article_ids = list(client.app.state.service.engine.index.articles)
    spanning = 0
    for article_id in article_ids:
        art = client.get(f"/articles/{article_id}").json()
        assert art["text"] == "\n".join(p["text"] for p in art["paragraphs"])
        for p in art["passages"]:
            assert art["text"][p["article_start"] : p["article_end"]] == p["text"], p["passage_id"]
            assert "score" not in p and "scores" not in p
            spanning += "\n" in p["text"]
    assert spanning, "some seed passage runs across paragraphs"


def test_health_ready_stats(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["ready"] is True and ready["model"] == "multilingual-e5-small"
    stats = client.get("/stats").json()
    assert stats["articles"] > 20 and stats["passages"] > stats["articles"]
    assert stats["dimension"] == 384 and "重庆日报" in stats["sources"]


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"question": ""}, "must not be empty"),
        ({"question": "   \n "}, "must not be empty"),
        ({"question": "问" * 5000}, "limit"),
        ({"question": "问题", "top_k": 0}, "top_k"),
        ({"question": "问题", "top_k": 10_000}, "top_k"),
        ({"question": "问题", "top_k": "five"}, "top_k"),
        ({"question": "问题", "mode": "magic"}, "mode"),
        ({"question": 42}, "question"),
        ({"question": "问题", "filters": {"date_from": "yesterday"}}, "date_from"),
        ({"question": "问题", "unknown": 1}, "unknown"),
        ({}, "question"),
    ],
)
def test_bad_ask_requests_are_clear_422(client, body, fragment):
    r = client.post("/ask", json=body)
    assert r.status_code == 422
    assert fragment in r.json()["detail"]


def test_limits_are_the_apps_settings(seed_index, embedder, settings):
    """Limits come from the settings the app was made with, not from those at import time."""
    from qa_service.app import create_app
    from qa_service.state import ServiceState

    small = settings.model_copy(update={"max_top_k": 7, "max_question_chars": 10})
    app = create_app(settings=small, state=ServiceState(small, seed_index, embedder=embedder))
    with TestClient(app) as c:
        assert c.post("/ask", json={"question": "大足农民工", "top_k": 7}).status_code == 200
        for path, body in [
            ("/ask", {"question": "大足农民工", "top_k": 8}),
            ("/search", {"query": "大足农民工", "top_k": 8}),
            ("/similar", {"text": "大足农民工", "top_k": 8}),
        ]:
            r = c.post(path, json=body)
            assert r.status_code == 422, path
            assert r.json()["detail"] == "top_k: must be at most 7 (this service's max_top_k)"
        r = c.post("/ask", json={"question": "问" * 11})
        assert r.status_code == 422
        assert r.json()["detail"] == "question: question is 11 characters long; the limit is 10"
    assert settings.max_top_k > 8  # the default app still takes what this one refused


def test_malformed_json_and_wrong_content_type(client):
    r = client.post("/ask", content=b'{"question": ', headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["detail"]
    r = client.post("/ask", content=b"question=hi", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "application/json" in r.json()["detail"]
    r = client.post("/ask", content=b"[1, 2]", headers={"Content-Type": "application/json"})
    assert r.status_code == 422


def test_body_size_limit(client, settings):
    big = b'{"question": "' + b"a" * (settings.max_body_bytes + 10) + b'"}'
    r = client.post("/ask", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_unknown_route_and_method(client):
    assert client.get("/nope").status_code == 404
    assert client.get("/ask").status_code == 405


def test_request_id_is_echoed_and_logged(client, caplog):
    with caplog.at_level("INFO", logger="qa_service.access"):
        r = client.get("/healthz", headers={"X-Request-ID": "abc123"})
    assert r.headers["x-request-id"] == "abc123"
    lines = [rec.getMessage() for rec in caplog.records if "abc123" in rec.getMessage()]
    assert lines and '"latency_ms"' in lines[0] and '"status": 200' in lines[0]
