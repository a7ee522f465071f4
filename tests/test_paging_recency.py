"""Paging (``offset`` on /search) and the recency option (``recency_half_life_days``) over
HTTP, with the real model: pages are slices of one ranking, and a half-life moves newer
articles up without dropping undated ones."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from indexer import pipeline
from tests.helpers.service import make_app

QUERY = "北碚区的重点项目建设"


@pytest.fixture(scope="module")
def client(seed_index, embedder, settings):
    with TestClient(make_app(settings, seed_index, embedder)) as c:
        yield c


def ids(body: dict) -> list[str]:
    return [p["passage_id"] for p in body["results"]]


def search(client, query: str = QUERY, **body) -> dict:
    r = client.post("/search", json={"query": query, **body})
    assert r.status_code == 200, r.text
    return r.json()


# ----------------------------------------------------------------------- paging


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_a_page_is_a_slice_of_the_longer_ranking(client, mode):
    ten = search(client, mode=mode, top_k=10)
    first = search(client, mode=mode, top_k=5)
    second = search(client, mode=mode, top_k=5, offset=5)
    assert ids(first) + ids(second) == ids(ten)
    assert second["offset"] == 5
    scores = [p["score"] for p in first["results"] + second["results"]]
    assert scores == sorted(scores, reverse=True)


def test_a_page_past_the_end_is_empty(client):
    found = search(client, query="雷锋", mode="bm25", top_k=50)["results"]  # a few passages
    assert 0 < len(found) < 20
    assert search(client, query="雷锋", mode="bm25", top_k=10, offset=20)["results"] == []


def test_paging_is_bounded_by_max_top_k(seed_index, embedder, settings):
    with TestClient(make_app(settings, seed_index, embedder, max_top_k=7)) as small:
        ok = small.post("/search", json={"query": QUERY, "top_k": 5, "offset": 2})
        assert ok.status_code == 200 and len(ok.json()["results"]) == 5
        r = small.post("/search", json={"query": QUERY, "top_k": 5, "offset": 3})
        assert r.status_code == 422
        assert "offset + top_k is 8; it must be at most 7" in r.json()["detail"]
        r = small.post("/search", json={"query": QUERY, "offset": -1})
        assert r.status_code == 422 and "offset" in r.json()["detail"]


# ---------------------------------------------------------------------- recency

RAIL = [  # one story told three times, at three dates (one undated), and unrelated news
    {
        "id": "old",
        "date": "2023-01-05",
        "text": "轨道交通18号线全线开通运营。轨道交通18号线全长29公里，设站19座，"
        "轨道交通18号线连接中心城区与南部新区，沿线市民出行更加便捷。",
    },
    {
        "id": "new",
        "date": "2023-06-28",
        "text": "轨道交通18号线开通以来客流持续增长，日均客运量已超过十万人次。",
    },
    {"id": "undated", "text": "轨道交通18号线沿线站点周边的公交接驳线路正在优化调整。"},
    {"id": "newest", "date": "2023-06-30", "text": "大足石刻文化节开幕，游客参观石刻艺术。"},
    *(
        {"id": f"other{i}", "date": f"2023-0{1 + i % 5}-1{i}", "text": text}
        for i, text in enumerate(
            [  # most of a collection is about something else (what background means)
                "忠县柑橘丰收，果农忙着采摘鲜果。",
                "区人大常委会召开会议，审议年度监督工作计划。",
                "中小学春季学期开学，校园防疫措施有序落实。",
                "民营企业座谈会召开，听取企业家意见建议。",
                "缙云山生态修复工程完成，植被覆盖率明显提高。",
                "文化馆举办书法展览，展出作品一百余幅。",
                "外贸企业订单增长，生产线满负荷运转。",
                "志愿者走进社区，开展学雷锋主题活动。",
            ]
        )
    ),
]


@pytest.fixture(scope="module")
def rail(tmp_path_factory, indexer_obj, embedder, settings):
    folder = tmp_path_factory.mktemp("rail")
    source = folder / "rail.jsonl"
    source.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in RAIL) + "\n", encoding="utf-8"
    )
    out = folder / "index"
    pipeline.build(out, pipeline.iter_sources([source]), indexer=indexer_obj, progress=False)
    with TestClient(make_app(settings, out, embedder)) as c:
        yield c


def articles(body: dict, key: str = "results") -> list[str]:
    return [p["article_id"] for p in body[key]]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_recency_moves_the_newer_article_up_and_keeps_the_undated(rail, mode):
    query = {"query": "轨道交通18号线", "mode": mode, "top_k": 3}
    plain = articles(rail.post("/search", json=query).json())
    assert plain.index("old") < plain.index("new"), plain  # the fuller story first, by itself
    recent = articles(rail.post("/search", json={**query, "recency_half_life_days": 30}).json())
    assert recent.index("new") < recent.index("old"), recent
    assert "undated" in recent, "an undated article is neither boosted nor dropped"
    assert "newest" not in recent, "recency reorders what the query found, nothing more"


def test_recency_on_ask_and_off_by_default(rail):
    question = {"question": "轨道交通18号线的情况怎么样？", "top_k": 3}
    plain = rail.post("/ask", json=question).json()
    assert (
        rail.post("/ask", json={**question, "recency_half_life_days": None}).json()["passages"]
        == plain["passages"]
    )
    recent = rail.post("/ask", json={**question, "recency_half_life_days": 7}).json()
    assert articles(recent, "passages")[0] == "new"
    for bad in (0, -3, "soon"):
        r = rail.post("/ask", json={**question, "recency_half_life_days": bad})
        assert r.status_code == 422 and "recency_half_life_days" in r.text
