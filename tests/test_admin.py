"""Admin writes without downtime, OpenAI-compatible embeddings, metrics.

Real model and real index (a private copy of the seed index, since these tests write)."""

from __future__ import annotations

import threading

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from indexer.clean import squash
from tests.helpers.server import serve
from tests.helpers.service import ADMIN_TOKEN, make_app

NEW_ARTICLE = {
    "id": "test-robot-2026",
    "title": "北碚机器人小镇启用水下巡检机器人",
    "text": "本报讯 11月20日,北碚区嘉陵江畔的机器人小镇正式启用一台水下巡检机器人,代号“鲟龙一号”。\n"
    "该机器人可在水下六十米连续作业八小时,用于检查桥墩和码头的安全状况。",
    "date": "2026-11-20",
    "source": "北碚报",
}


@pytest.fixture()
def client(settings, index_copy, embedder):
    with TestClient(make_app(settings, index_copy, embedder)) as c:
        yield c


def auth(token=ADMIN_TOKEN):
    return {"Authorization": f"Bearer {token}"}


def search_ids(client, query):
    r = client.post("/search", json={"query": query, "top_k": 5})
    assert r.status_code == 200
    return [x["article_id"] for x in r.json()["results"]]


def test_token_missing_wrong_right(client):
    assert client.post("/articles", json=NEW_ARTICLE).status_code == 401
    r = client.post("/articles", json=NEW_ARTICLE, headers=auth("wrong"))
    assert r.status_code == 403 and "wrong admin token" in r.json()["detail"]
    assert client.delete("/articles/x", headers=auth("wrong")).status_code == 403
    r = client.post("/articles", json=NEW_ARTICLE, headers=auth())
    assert r.status_code == 200, r.text
    assert r.json()["added"] == 1


def test_writes_disabled_without_a_configured_token(settings, index_copy, embedder):
    with TestClient(make_app(settings, index_copy, embedder, admin_token=None)) as c:
        r = c.post("/articles", json=NEW_ARTICLE, headers=auth())
        assert r.status_code == 403 and "disabled" in r.json()["detail"]


def test_add_then_search_then_delete(client):
    assert "test-robot-2026" not in search_ids(client, "水下巡检机器人鲟龙一号")
    r = client.post("/articles", json={"articles": [NEW_ARTICLE]}, headers=auth())
    assert r.status_code == 200 and r.json()["article_ids"] == ["test-robot-2026"]
    assert search_ids(client, "水下巡检机器人鲟龙一号")[0] == "test-robot-2026"
    body = client.post("/ask", json={"question": "鲟龙一号能在水下连续作业多久？"}).json()
    assert "八小时" in body["answer"]["text"]
    art = client.get("/articles/test-robot-2026").json()
    assert art["source"] == "北碚报" and art["date"] == "2026-11-20"
    p = art["passages"][0]
    raw = NEW_ARTICLE["text"][p["start"] : p["end"]]
    assert squash(raw) == squash(p["text"])
    # same content again: nothing changes
    again = client.post("/articles", json=NEW_ARTICLE, headers=auth()).json()
    assert again["added"] == 0 and again["unchanged"] == 1
    r = client.delete("/articles/test-robot-2026", headers=auth())
    assert r.status_code == 200 and r.json()["removed"] == 1
    assert "test-robot-2026" not in search_ids(client, "水下巡检机器人鲟龙一号")
    assert client.get("/articles/test-robot-2026").status_code == 404
    assert client.delete("/articles/test-robot-2026", headers=auth()).status_code == 404


def test_update_replaces_the_article(client):
    client.post("/articles", json=NEW_ARTICLE, headers=auth())
    changed = NEW_ARTICLE | {"text": NEW_ARTICLE["text"].replace("八小时", "十二小时")}
    r = client.post("/articles", json=changed, headers=auth()).json()
    assert r["added"] == 1 and r["removed"] == 1
    art = client.get("/articles/test-robot-2026").json()
    assert "十二小时" in art["text"] and "八小时" not in art["text"]


@pytest.mark.parametrize(
    "body",
    [
        {"id": "x", "title": "t"},
        {"id": "../../etc/passwd", "title": "t", "text": "正文。"},
        {"id": "x", "title": "  ", "text": "正文。"},
        {"id": "x", "title": "t", "text": "正文。", "date": "someday"},
        {"articles": []},
    ],
)
def test_bad_articles_are_422(client, body):
    r = client.post("/articles", json=body, headers=auth())
    assert r.status_code == 422, r.text


def test_persists_across_restart(settings, index_copy, embedder):
    with TestClient(make_app(settings, index_copy, embedder)) as c:
        assert c.post("/articles", json=NEW_ARTICLE, headers=auth()).status_code == 200
    with TestClient(make_app(settings, index_copy, embedder)) as c:
        assert c.get("/articles/test-robot-2026").status_code == 200
        assert search_ids(c, "水下巡检机器人鲟龙一号")[0] == "test-robot-2026"


def test_add_during_concurrent_reads(settings, index_copy, embedder):
    """Readers never get a 5xx or a half-written index while articles are added."""
    app = make_app(settings, index_copy, embedder)
    with serve(app) as base:
        before = httpx.get(f"{base}/stats").json()["articles"]
        failures: list[str] = []
        counts: set[int] = set()
        stop = threading.Event()

        def reader() -> None:
            with httpx.Client(base_url=base, timeout=60) as c:
                for _ in range(200):
                    if stop.is_set():
                        return
                    r = c.post("/search", json={"query": "重庆 机器人 经济", "top_k": 10})
                    s = c.get("/stats")
                    if r.status_code != 200 or s.status_code != 200:
                        failures.append(f"{r.status_code} {s.status_code}")
                        continue
                    counts.add(s.json()["articles"])
                    for res in r.json()["results"]:
                        if not res["text"] or res["end"] <= res["start"]:
                            failures.append(f"torn result {res['passage_id']}")

        threads = [threading.Thread(target=reader) for _ in range(4)]
        for t in threads:
            t.start()
        with httpx.Client(base_url=base, timeout=120) as admin:
            for i in range(3):
                art = NEW_ARTICLE | {
                    "id": f"robot-{i}",
                    "title": f"{NEW_ARTICLE['title']}{i}",
                    "text": NEW_ARTICLE["text"] + f"第{i}台。",
                }
                r = admin.post("/articles", json=art, headers=auth())
                assert r.status_code == 200, r.text
        stop.set()
        for t in threads:
            t.join()
        assert not failures, failures[:5]
        assert counts <= {before, before + 1, before + 2, before + 3}
        with httpx.Client(base_url=base) as c:
            assert c.get("/stats").json()["articles"] == before + 3


def test_openai_client_embeddings(settings, seed_index, embedder):
    import openai

    app = make_app(settings, seed_index, embedder)
    with serve(app) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused")
        res = client.embeddings.create(
            model="multilingual-e5-small", input=["北碚经济技术开发区", "数据中心"]
        )
        assert len(res.data) == 2 and len(res.data[0].embedding) == 384
        assert res.usage.prompt_tokens > 0
        vec = np.array(res.data[0].embedding)
        expected = embedder.encode_query(["北碚经济技术开发区"])[0]
        assert np.dot(vec, expected) > 0.999
        floats = client.embeddings.create(
            model="multilingual-e5-small", input="数据中心", encoding_format="float"
        )
        assert len(floats.data[0].embedding) == 384
        with pytest.raises(openai.NotFoundError):
            client.embeddings.create(model="text-embedding-3-small", input="x")
        with pytest.raises(openai.UnprocessableEntityError):
            client.embeddings.create(model="multilingual-e5-small", input="")


def test_metrics_text(client):
    client.post("/ask", json={"question": "剑涛智慧产业园总投资多少？"})
    client.post("/ask", json={"question": ""})
    client.get("/articles/nope")
    text = client.get("/metrics").text
    assert 'newsqa_requests_total{endpoint="/ask",method="POST",status="200"}' in text
    assert 'newsqa_requests_total{endpoint="/ask",method="POST",status="422"}' in text
    assert 'endpoint="/articles/{article_id}"' in text
    assert "newsqa_request_seconds_bucket" in text
    assert "newsqa_index_passages" in text
    assert 'newsqa_model_info{dimension="384",model="multilingual-e5-small"} 1.0' in text


def test_write_with_other_chunking_is_a_409_and_changes_nothing(settings, index_copy, embedder):
    """A service configured with other chunking than its index was built with still answers,
    but an admin write would mix two chunkings: a 409 naming the setting, index untouched."""
    from indexer import store

    version = store.resolve_version(index_copy)
    app = make_app(settings, index_copy, embedder, chunk_target_chars=300)
    with TestClient(app) as c:
        assert c.post("/search", json={"query": "北碚"}).status_code == 200
        r = c.post("/articles", json=NEW_ARTICLE, headers=auth())
        assert r.status_code == 409 and "chunk_target_chars" in r.json()["detail"]
        assert c.delete("/articles/nope", headers=auth()).status_code in (404, 409)
    assert store.resolve_version(index_copy) == version


def test_a_write_reads_the_index_from_disk_once(client, monkeypatch):
    """The new version is served from memory: one verified read per write, not two."""
    from indexer import store

    reads = []
    real = store.load_version_content
    monkeypatch.setattr(store, "load_version_content", lambda v: reads.append(v) or real(v))
    r = client.post("/articles", json=NEW_ARTICLE, headers=auth())
    assert r.status_code == 200 and r.json()["added"] == 1
    assert len(reads) == 1
    assert search_ids(client, "水下巡检机器人鲟龙一号")[0] == "test-robot-2026"
