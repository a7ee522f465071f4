"""Facets over HTTP on the seed index (real model): counts of matching articles by month and
by source, as the README defines "matching", within the filters, whatever the page."""

from __future__ import annotations

from collections import Counter

import pytest
from fastapi.testclient import TestClient

from indexer import store
from tests.helpers.service import make_app

BOTH = ["month", "source"]


@pytest.fixture(scope="module")
def client(seed_index, embedder, settings):
    with TestClient(make_app(settings, seed_index, embedder)) as c:
        yield c


@pytest.fixture(scope="module")
def seed_articles(seed_index):
    return list(store.load_content(seed_index)[1].articles.values())


def search(client, query, **kw) -> dict:
    r = client.post("/search", json={"query": query, **kw})
    assert r.status_code == 200, r.text
    return r.json()


def as_dict(values: list[dict]) -> dict[str, int]:
    return {v["value"]: v["count"] for v in values}


def month_of(article) -> str:
    return article.date[:7] if article.date else "unknown"


@pytest.mark.parametrize("word", ["重庆", "数据", "雷锋"])
def test_keyword_facets_count_the_articles_that_contain_the_word(client, seed_articles, word):
    """In bm25 mode a one-word query matches exactly the articles with the word in them
    (a derived title is the text's own first sentence, so the text decides)."""
    having = [a for a in seed_articles if word in (a.title + a.text)]
    body = search(client, word, mode="bm25", top_k=3, facets=BOTH)
    assert as_dict(body["facets"]["month"]) == Counter(month_of(a) for a in having)
    assert as_dict(body["facets"]["source"]) == Counter(a.source or "unknown" for a in having)
    assert len(body["results"]) == 3  # the page is short; the counts are not


def test_month_order_and_each_article_counted_once(client):
    facets = search(client, "重庆", facets=BOTH)["facets"]
    months = [v["value"] for v in facets["month"]]
    assert months == ["2023-02", "unknown"]  # date order, unknown last
    assert facets["source"][-1]["value"] == "unknown"  # by count, unknown last
    counts = [v["count"] for v in facets["source"]]
    assert counts[:-1] == sorted(counts[:-1], reverse=True)
    assert sum(v["count"] for v in facets["month"]) == sum(counts)


def test_facets_respect_the_filters(client):
    everything = search(client, "重庆", facets=BOTH)["facets"]
    february = as_dict(everything["month"])["2023-02"]
    body = search(
        client,
        "重庆",
        facets=BOTH,
        filters={"date_from": "2023-02-01", "date_to": "2023-02-28"},
    )
    assert body["facets"]["month"] == [{"value": "2023-02", "count": february}]
    assert all(p["date"].startswith("2023-02") for p in body["results"])
    paper = as_dict(everything["source"])["重庆日报"]
    body = search(client, "重庆", facets=["source"], filters={"source": "重庆日报"})
    assert body["facets"] == {"source": [{"value": "重庆日报", "count": paper}]}


def test_facets_do_not_depend_on_the_page(client):
    one = search(client, "数据中心", top_k=1, facets=BOTH)["facets"]
    assert search(client, "数据中心", top_k=5, offset=10, facets=BOTH)["facets"] == one
    assert one["month"], "the query matches something"


def test_meaning_matches_across_languages_and_nothing_matches_nonsense(client, seed_articles):
    body = search(
        client, "How many migrant workers took the special train?", mode="dense", facets=BOTH
    )
    train = next(a for a in seed_articles if a.title == "大足农民工乘专列赴粤返岗")
    assert body["results"][0]["article_id"] == train.article_id
    assert body["facets"]["source"] == [{"value": train.source, "count": 1}]
    unrelated = search(client, "足球比赛的进球数", mode="dense", facets=BOTH)
    assert unrelated["results"], "a search still lists the nearest passages"
    assert unrelated["facets"] == {"month": [], "source": []}, "but nothing matches"


def test_hybrid_counts_both_signals(client):
    def matching(mode: str) -> int:
        body = search(client, "北碚经济技术开发区规划总面积是多少？", mode=mode, facets=["month"])
        return sum(v["count"] for v in body["facets"]["month"])

    bm25, dense, hybrid = matching("bm25"), matching("dense"), matching("hybrid")
    assert max(bm25, dense) <= hybrid <= bm25 + dense


def test_ask_takes_facets_too(client):
    r = client.post("/ask", json={"question": "大足农民工乘专列去哪里？", "facets": ["month"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body["facets"]) == {"month"} and body["facets"]["month"]
    assert "facets_ms" in body["timings"]


def test_facets_only_when_asked_and_only_known_fields(client):
    assert search(client, "重庆")["facets"] is None
    r = client.post("/search", json={"query": "重庆", "facets": ["year"]})
    assert r.status_code == 422 and "facets" in r.text
