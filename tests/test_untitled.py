"""Untitled records: a JSONL export without titles builds, its articles get a derived display
title (marked as such, and not indexed as a headline), and an input of only broken lines is
an error that says why, not an empty index."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from indexer import cli, pipeline, store
from indexer.ingest import article_from_record
from indexer.schema import Span
from indexer.titles import MAX_CHARS, derived_title, name_untitled
from tests.helpers.service import AUTH, copy_index, make_app

# Shaped like ../shared/corpora/crud_news_5k.jsonl.gz: {"id", "date", "text"}, no title.
CRUD_RECORDS = [
    {
        "id": "crud-documents_dup_part_10_part_2-1794",
        "date": "2023-07-31",
        "text": "中新网广东新闻7月31日电 (记者 蔡敏婕)第十一届“羊城印象”广州微电影短视频大赛"
        "31日正式启动，以“我的美好生活”为主题，拍摄内容辐射粤港澳大湾区乃至海外地区。"
        "大赛面向海内外影视制作者、爱好者广发“英雄帖”，征集作品截止到10月31日。",
    },
    {
        "id": "crud-documents_dup_part_7_part_3-236",
        "date": "2023-08-12",
        "text": "原标题：8月11日基金净值：易方达医药ETF联接A最新净值1.0273，跌1.34%。"
        "8月11日，易方达医药ETF联接A最新单位净值为1.0273元，累计净值为1.0273元。",
    },
    {
        "id": "crud-x-3",
        "date": "2023-08-16",
        "text": "本报北京8月16日电（记者张天培）记者日前从公安部获悉：公安部食品药品犯罪侦查局"
        "部署各地公安机关依法严厉打击食品安全犯罪。今年以来，各地共破获案件一千余起。",
    },
    {
        "id": "crud-x-4",
        "text": "拉瑞安工作室的热门角色扮演游戏《博德之门3》近日通过两款Mod的改造，使得游戏体验"
        "更接近BioWare的经典作品。玩家社区对此反响热烈。",
    },
]


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def crud_file(folder: Path) -> Path:
    lines = [json.dumps(r, ensure_ascii=False) for r in CRUD_RECORDS]
    return write_jsonl(folder / "crud.jsonl", lines)


# ------------------------------------------------------------------ derived titles


@pytest.mark.parametrize(
    ("text", "title"),
    [
        (
            "本报讯(记者齐宏)4月28日,北川铁路复建专题研讨工作会在卢作孚纪念馆举行。区委书记出席。",
            "北川铁路复建专题研讨工作会在卢作孚纪念馆举行",
        ),
        (
            "新华社北京8月12日电（记者刘艺、李秉宣）连日来，解放军官兵抢通道路。其他",
            "连日来，解放军官兵抢通道路",
        ),
        ("吉林日报8月18日讯(记者徐慕旗)今天，记者获悉。", "今天，记者获悉"),
        ("原标题：文水县曝光失信被执行人。为维护法律权威", "文水县曝光失信被执行人"),
        ("短句。第二句。", "短句"),
        ("   ", ""),
    ],
)
def test_derived_title_is_the_first_sentence_without_its_dateline(text, title) -> None:
    assert derived_title([Span(text, 0, len(text))]) == title


def test_long_first_sentence_is_cut_and_marked() -> None:
    text = "贝莱德警告称，未来几个季度美国反通胀进程不会一帆风顺，经济最终将走向罕见的衰退。"
    title = derived_title([Span(text, 0, len(text))])
    assert title.endswith("…") and len(title) <= MAX_CHARS + 1
    assert text.startswith(title.removesuffix("…"))


def test_record_without_title_is_untitled_and_named_by_the_index() -> None:
    article = article_from_record(CRUD_RECORDS[0], "crud.jsonl#L1")
    assert article.title == "" and not article.title_derived  # ingest reports what it read
    name_untitled(article)
    assert article.title_derived and article.title.startswith("第十一届“羊城印象”")
    titled = name_untitled(article_from_record({**CRUD_RECORDS[0], "title": "真标题"}, "f"))
    assert (titled.title, titled.title_derived) == ("真标题", False)


def test_indexes_written_before_the_flag_get_derived_titles_on_reading(tmp_path) -> None:
    """An old index has no title_derived column and "" for untitled articles."""
    db = tmp_path / store.SQLITE
    old_schema = store._SCHEMA.replace(", title_derived INTEGER NOT NULL DEFAULT 0", "")
    conn = sqlite3.connect(db)
    conn.executescript(old_schema)
    paragraph = [["为加快成渝地区双城经济圈建设,4月28日召开全会。", 0, 26, [], False]]
    conn.execute(
        "INSERT INTO articles VALUES (?,?,?,?,?,?,?,?,?,?)",
        ("a1", "", None, None, None, None, "h", "p.txt", None, json.dumps(paragraph)),
    )
    conn.commit()
    conn.close()
    article = store._read_sqlite(db).articles["a1"]
    assert article.title_derived and article.title == "为加快成渝地区双城经济圈建设,4月28日召开全会"


# ------------------------------------------------------------------ a real index


@pytest.fixture(scope="module")
def crud_index(tmp_path_factory, indexer_obj) -> Path:
    folder = tmp_path_factory.mktemp("crud")
    out = folder / "index"
    report = pipeline.build(
        out, pipeline.iter_sources([crud_file(folder)]), indexer=indexer_obj, progress=False
    )
    assert report.articles == len(CRUD_RECORDS) and not report.problems
    return out


def test_untitled_corpus_builds_with_derived_titles_not_indexed(crud_index, indexer_obj):
    _, content = store.load_content(crud_index)
    for record in CRUD_RECORDS:
        article = content.articles[record["id"]]
        assert article.title_derived and article.title
        assert article.date == record.get("date")
    # The vectors are of the passage text alone: no headline was put in front of it.
    rows = [i for i, p in enumerate(content.passages) if p.article_id == CRUD_RECORDS[1]["id"]]
    alone = indexer_obj.embedder.encode_document([content.passages[rows[0]].text])[0]
    assert float(np.dot(alone, content.vectors[rows[0]])) > 0.999


def test_api_marks_derived_titles(crud_index, embedder, settings) -> None:
    with TestClient(make_app(settings, crud_index, embedder)) as client:
        found = client.post("/search", json={"query": "博德之门3 游戏", "top_k": 3}).json()
        top = found["results"][0]
        assert top["article_id"] == "crud-x-4"
        assert top["title_derived"] is True and top["title"].startswith("拉瑞安工作室")
        article = client.get("/articles/crud-x-4").json()
        assert article["title_derived"] is True and article["title"] == top["title"]
        similar = client.post(
            "/similar", json={"article_id": "crud-x-4", "level": "article", "top_k": 2}
        ).json()
        assert all(r["title_derived"] is True for r in similar["results"])
        asked = client.post("/ask", json={"question": "博德之门3"}).json()
        assert asked["passages"][0]["title_derived"] is True


def test_admin_api_adds_an_untitled_article(crud_index, embedder, settings, tmp_path) -> None:
    index = copy_index(crud_index, tmp_path / "copy")
    text = "本报讯(记者 王五)重庆至西安高铁项目全线开工建设。线路全长约478公里。"
    with TestClient(make_app(settings, index, embedder)) as client:
        r = client.post("/articles", json={"id": "api-1", "text": text}, headers=AUTH)
        assert r.status_code == 200, r.text
        article = client.get("/articles/api-1").json()
        assert article["title"] == "重庆至西安高铁项目全线开工建设"
        assert article["title_derived"] is True
        blank = client.post(
            "/articles", json={"id": "api-2", "title": " ", "text": text}, headers=AUTH
        )
        assert blank.status_code == 422, "a title given must not be blank"


def test_seed_articles_keep_their_titles(seed_index) -> None:
    """The seed pages' titled articles are not marked; the two whose page lost the headline
    (page 003) are."""
    _, content = store.load_content(seed_index)
    derived = [a for a in content.articles.values() if a.title_derived]
    assert len(derived) == 2 and all(a.title_span is None for a in derived)
    assert any(a.title.startswith("北川铁路复建") for a in derived)
    assert all(a.title for a in content.articles.values())


# ------------------------------------------------------------------ the command line


@pytest.fixture()
def shared_model(monkeypatch, indexer_obj):
    """The CLI with the session's model (the tests are about its exit status and messages)."""
    monkeypatch.setattr(pipeline, "Indexer", lambda *args, **kwargs: indexer_obj)


def test_cli_builds_an_untitled_jsonl_corpus(shared_model, tmp_path, capsys) -> None:
    out = tmp_path / "index"
    assert cli.main(["build", str(crud_file(tmp_path)), "--out", str(out), "-q"]) == 0
    assert f"articles: {len(CRUD_RECORDS)} in index" in capsys.readouterr().out


BROKEN = [
    '{"id": "b1", "title": "缺逗号" "text": "x"}',
    json.dumps({"id": "b2", "date": "2023-07-31"}),
    json.dumps({"id": "b3", "text": "  "}),
    "[1, 2]",
    json.dumps({"id": "b5", "text": "正文。", "date": "昨天"}, ensure_ascii=False),
    json.dumps({"id": "b6", "text": 7}),
    "",
]


def test_cli_build_of_only_broken_lines_fails_and_says_why(shared_model, tmp_path, capsys):
    bad = write_jsonl(tmp_path / "bad.jsonl", BROKEN)
    out = tmp_path / "index"
    assert cli.main(["build", str(bad), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "no article could be read from the input: 6 lines rejected" in err
    assert "bad.jsonl line 1: invalid JSON" in err
    assert "bad.jsonl line 2: missing 'text'" in err
    assert "... and 1 more" in err  # five reasons shown, the sixth counted
    assert not out.exists(), "no empty index is written"


def test_cli_add_of_only_broken_lines_fails_and_keeps_the_index(
    shared_model, crud_index, tmp_path, capsys
):
    index = copy_index(crud_index, tmp_path / "copy")
    version = store.resolve_version(index)
    bad = write_jsonl(tmp_path / "more.jsonl", BROKEN[:2])
    assert cli.main(["add", str(index), str(bad), "-q"]) == 2
    err = capsys.readouterr().err
    assert "2 lines rejected" in err and "more.jsonl line 2: missing 'text'" in err
    assert store.resolve_version(index) == version


def test_an_empty_file_is_still_an_empty_index_not_an_error(shared_model, tmp_path, capsys):
    empty = write_jsonl(tmp_path / "empty.jsonl", ["", "  "])
    assert cli.main(["build", str(empty), "--out", str(tmp_path / "index"), "-q"]) == 0
    assert "no articles were found" in capsys.readouterr().err
