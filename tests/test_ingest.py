"""Cleaning and ingestion, checked on the real seed pages (no model needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from indexer.chunk import chunk_article
from indexer.clean import (
    clean,
    has_inserted_spaces,
    is_closed,
    is_continuation,
    raw_range,
    squash,
)
from indexer.ingest import article_from_record, ingest_path, ingest_text
from indexer.schema import Article, Span

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
PAGE = {
    "000": "000_a53461ffb1d4bfa9.txt",
    "001": "001_df9d847a2fa7b697.txt",
    "002": "002_0a7ba2105b8ed319.txt",
    "003": "003_c39b219bdb99aca7.txt",
    "004": "004_0c57ab9ed425abbc.txt",
}

# Read off the pages by hand. "" is an article whose title the page lost (page 003 has a
# 本报讯 report on the 北川铁路 symposium and a sidebar after 据重庆日报, both untitled).
EXPECTED_TITLES = {
    "000": [
        "莫恭明来碚调研成渝地区双城经济圈建设和一季度经济运行情况",
        "剑涛智慧产业园项目开工建设",
        "一季度“开门红”是用力干出来的",
        "王俊在十三届区纪委三次全会上强调 坚持不懈把全面从严治党向纵深推进 "
        "为全面建设社会主义现代化美丽北碚提供坚强保障",
        "敢闯敢干 唯实争先",
        "中国移动(重庆)数据中心: 这个“大脑中枢”将成标杆",
    ],
    "001": [
        "北碚经济技术开发区揭牌成立",
        "我区举行2024年“3·5”学雷锋日主题活动暨“最美北碚人”发布仪式",
        "以高品质生态环境厚植美丽重庆底色",
        "黄祖英在2024年重点项目专题会上强调",
        "黄祖英走访调研民营企业时强调",
        "弘扬雷锋精神 绽放青春力量",
    ],
    "002": [
        "成渝地区全国一体化算力网络国家枢纽节点建设启动",
        "正式启动!“东数西算”工程全面实施",
        "2022年市级“专精特新”中小企业开始申报",
        "企业订单增长 生产线24小时不停",
        "重庆新增32家新型研发机构",
        "大足农民工乘专列赴粤返岗",
        "重庆推出进出口担保关税保函",
        "在行动 城市提升看亮点",
        "“三峡柑橘”忠县鲜果集散处理基地开工",
    ],
    "003": [
        "四川省绵阳市党政代表团来碚考察",
        "周旭何庆调研四川仪表工业学校缙云校区开学复课时强调",
        "区人大常委会2020年任后监督工作正式启动",  # the page wraps it: "2020年 任后"
        "区政协召开十五届十六次常委会议",
        "",
        "区政府召开第107次常务会议",
        '协作项目开始落地确立"四地"目标',
        "",
    ],
    "004": [
        "市委召开全市领导干部会议传达学习贯彻全国两会精神",
        "北碚、重庆高新区抢抓订单 工业企业助力一季度“开门红”",
        "助力产学研“抱团创新” 重庆公示首批17个产业创新综合体项目",
    ],
}

# Layout that belongs to no article: markdown heading marks, list bullets, "相关新闻>>>".
MARKUP = re.compile(r"(?m)^[ \t]*#{1,6}[ \t]|^[ \t]*-[ \t]|^相关新闻>>>[ \t]*$")
CJK_GAP = re.compile(r"[\u4e00-\u9fff][ \t\u3000]+[\u4e00-\u9fff]")


def raw_of(page: str) -> str:
    return (SEEDS / PAGE[page]).read_bytes().decode("utf-8")


@pytest.fixture(scope="module")
def seed_articles() -> dict[str, list[Article]]:
    result = ingest_path(SEEDS)
    assert result.problems == []
    by_page: dict[str, list[Article]] = {key: [] for key in PAGE}
    for article in result.articles:
        by_page[article.file[:3]].append(article)
    return by_page


def article(seed_articles, page: str, title: str) -> Article:
    return next(a for a in seed_articles[page] if a.title == title)


# ------------------------------------------------------------------------------ cleaning


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("四 川省", "四川省"),
        ("中国四\n\n联仪器仪表集团", "中国四联仪器仪表集团"),
        ("  京东方、 AOS、重庆超硅  ", "京东方、AOS、重庆超硅"),
        ("Intel Core 处理器", "Intel Core处理器"),
        ("Intel\n  Core", "Intel Core"),
        ("AOS, IBM", "AOS, IBM"),
        ("于1925年发起建设, 1934年3月建成", "于1925年发起建设,1934年3月建成"),
        ("学生7200 名", "学生7200名"),
        ("13 5G+工业互联网", "13 5G+工业互联网"),
        ("数据中心: 这个", "数据中心:这个"),
        ("\n \n", ""),
    ],
)
def test_clean_removes_only_layout_white_space(raw: str, expected: str) -> None:
    cleaned = clean(raw)
    assert cleaned.text == expected
    assert len(cleaned.offsets) == len(cleaned.text)
    for ch, off in zip(cleaned.text, cleaned.offsets, strict=True):
        assert ch == raw[off] or (ch == " " and raw[off].isspace())
    if expected:
        start, end = cleaned.raw_range(0, len(expected))
        assert squash(raw[start:end]) == squash(expected)


def test_clean_region_and_keep_spaces() -> None:
    raw = "xx## 敢闯敢干  唯实争先\n"
    assert clean(raw, 5, len(raw)).text == "敢闯敢干唯实争先"
    kept = clean(raw, 5, len(raw), keep_spaces=True)
    assert kept.text == "敢闯敢干 唯实争先"
    assert kept.offsets[0] == 5
    assert kept.raw_range(5, 9) == (raw.index("唯"), raw.index("先") + 1)


def test_span_offset_map_cites_sub_ranges() -> None:
    raw = "本报讯 (记者 熊辉) 四 川省\n\n绵阳市"
    span = clean(raw).span()
    i = span.text.index("四川省绵阳")
    start, end = raw_range(span, i, i + 5)
    assert raw[start:end] == "四 川省\n\n绵阳"
    verbatim = Span("abc", 10, 13)  # no map: a verbatim copy
    assert raw_range(verbatim, 1, 2) == (11, 12)
    with pytest.raises(ValueError):
        raw_range(Span("ab", 0, 3), 0, 1)


def test_sentence_closing_and_continuation_rule() -> None:
    assert is_closed("他说。")
    assert is_closed("“到时,服务能力还将大幅度提升。”")
    assert is_closed("政府真是太贴心了!")
    assert not is_closed("具体")
    assert not is_closed("成为我区文旅融合发展的")
    assert not is_closed("签署了《生态环境保护协同发展合作框架协议》")
    assert is_continuation("剑涛智慧产业基地项目建设类型为工业生产项目,具体", "建设内容为:…")
    assert not is_continuation("全力保障师生", "本报讯(记者 齐宏)4月28日,…")
    assert not is_continuation("会议还研究了其他事项。", "协作项目开始落地")


def test_inserted_space_pages_are_recognised() -> None:
    assert has_inserted_spaces(raw_of("003"))
    for page in ("000", "001", "002", "004"):
        assert not has_inserted_spaces(raw_of(page))


# ------------------------------------------------------------------------ seed pages


@pytest.mark.parametrize("page", sorted(PAGE))
def test_seed_titles_exactly_and_in_order(seed_articles, page: str) -> None:
    assert [a.title for a in seed_articles[page]] == EXPECTED_TITLES[page]
    assert all(a.file == PAGE[page] for a in seed_articles[page])


@pytest.mark.parametrize("page", sorted(PAGE))
def test_every_span_and_passage_cites_its_raw_characters(seed_articles, page: str) -> None:
    raw = raw_of(page)
    for art in seed_articles[page]:
        if art.title:
            assert art.title_span is not None and art.title_span.text == art.title
        else:
            assert art.title_span is None
        spans = ([art.title_span] if art.title_span else []) + art.paragraphs
        for span in spans:
            assert span.text == span.text.strip() and span.text
            assert squash(raw[span.start : span.end]) == squash(span.text)
            assert not raw[span.start].isspace() and not raw[span.end - 1].isspace()
        for passage in chunk_article(art):
            assert passage.file == art.file
            assert squash(raw[passage.start : passage.end]) == squash(passage.text)
            assert passage.text[0] == raw[passage.start]
            assert passage.text[-1] == raw[passage.end - 1]


@pytest.mark.parametrize("page", sorted(PAGE))
def test_no_text_is_lost_or_doubled(seed_articles, page: str) -> None:
    raw = raw_of(page)
    covered = [False] * len(raw)
    for m in MARKUP.finditer(raw):
        covered[m.start() : m.end()] = [True] * (m.end() - m.start())
    for art in seed_articles[page]:
        title = art.title_span
        if title is not None:
            covered[title.start : title.end] = [True] * (title.end - title.start)
        passages = chunk_article(art, overlap=0)
        # Without overlap the passages are the article text, once, in order.
        assert squash("".join(p.text for p in passages)) == squash(art.text)
        for p in chunk_article(art):
            if title is not None:  # the title is never inside a passage
                assert p.end <= title.start or p.start >= title.end
                assert p.text.count(art.title) <= art.text.count(art.title)
            covered[p.start : p.end] = [True] * (p.end - p.start)
    lost = "".join(ch for ch, c in zip(raw, covered, strict=True) if not c and not ch.isspace())
    assert lost == ""


def test_cleaning_on_page_003(seed_articles) -> None:
    arts = seed_articles["003"]
    passages = [p for a in arts for p in chunk_article(a)]
    assert arts[0].paragraphs[0].text.startswith("本报讯(记者霍吕)4月30日,四川省绵阳市党政代表团")
    assert any("中国四联仪器仪表集团有限公司" in p.text for p in passages)
    for p in passages:
        assert not CJK_GAP.search(p.text), p.text
    assert "京东方、AOS、重庆超硅" in arts[0].text


def test_blank_line_breaks_mid_sentence_are_rejoined(seed_articles) -> None:
    jiantao = article(seed_articles, "000", "剑涛智慧产业园项目开工建设")
    assert any("项目,具体建设内容为:集团总部" in p.text for p in jiantao.paragraphs)
    kaifaqu = article(seed_articles, "001", "北碚经济技术开发区揭牌成立")
    assert any("形成规划科学、产业集聚、用地集约" in p.text for p in kaifaqu.paragraphs)
    huang = article(seed_articles, "001", "黄祖英在2024年重点项目专题会上强调")
    assert "区委常委、常务副区长杨正华,区政协副主席万朝学出席会议。" in [
        p.text for p in huang.paragraphs
    ]
    dongshu = article(seed_articles, "002", "正式启动!“东数西算”工程全面实施")
    assert any("并作为国家“东数西算”工程的战略支点" in p.text for p in dongshu.paragraphs)


@pytest.mark.parametrize("record", [False, True])
def test_rejoin_follows_the_continuation_rule(record: bool) -> None:
    """A page and a JSON record re-join exactly the body paragraphs ``is_continuation`` joins."""
    first, cont, closed, dateline = (
        "本报讯(记者 张三)2024年5月6日,第一段写到",
        "一半接着写完。",
        "第二段另起一行,写到",
        "本报讯(记者 李四)5月7日,另一篇开头。",
    )
    assert is_continuation(first, cont) and not is_continuation(closed, dateline)
    body = f"{first}\n\n{cont}\n\n{closed}\n\n{dateline}\n"
    if record:
        text = body.replace("\n\n", "\n")
        arts = [article_from_record({"id": "a", "title": "标题", "text": text}, "r.jsonl")]
    else:
        arts = ingest_text(f"标题\n\n{body}", "page.txt")
    paragraphs = [squash(p.text) for a in arts for p in a.paragraphs]
    assert paragraphs == [squash(first + cont), squash(closed), squash(dateline)]


def test_sub_headlines_and_kickers_are_first_paragraphs(seed_articles) -> None:
    cases = {
        ("003", "周旭何庆调研四川仪表工业学校缙云校区开学复课时强调"): [
            "确保正常教学秩序和师生身体健康"
        ],
        ("003", "区政府召开第107次常务会议"): ["何庆主持"],
        ("002", "成渝地区全国一体化算力网络国家枢纽节点建设启动"): [
            "规划设立重庆数据中心集群,起步区为两江新区水土新城、"
            "西部(重庆)科学城璧山片区、重庆经济技术开发区"
        ],
        ("002", "在行动 城市提升看亮点"): ["南岸苏家坝步道观景平台主体工程完工"],
        ("004", "市委召开全市领导干部会议传达学习贯彻全国两会精神"): [
            "突出千字当头唯实争先 推动现代化新重庆建设取得新成效迈上新台阶",
            "袁家军主持并讲话 胡衡华王炯程丽华传达 张轩出席",
        ],
        ("001", "黄祖英在2024年重点项目专题会上强调"): [
            "以项目建设带动和扩大有效投资 确保一季度经济社会发展开门红"
        ],
        ("000", "敢闯敢干 唯实争先"): ["铆足劲 保订单"],
        (
            "000",
            "王俊在十三届区纪委三次全会上强调 坚持不懈把全面从严治党向纵深推进 "
            "为全面建设社会主义现代化美丽北碚提供坚强保障",
        ): ["彭焯董伦出席"],
    }
    for (page, title), heads in cases.items():
        art = article(seed_articles, page, title)
        assert [p.text for p in art.paragraphs[: len(heads)]] == heads
        assert art.paragraphs[len(heads)].text != ""


def test_captions_credits_and_sections_stay_in_their_article(seed_articles) -> None:
    def texts(page: str, title: str) -> list[str]:
        return [p.text for p in article(seed_articles, page, title).paragraphs]

    assert texts("002", "企业订单增长 生产线24小时不停")[-1] == "记者 谢智强 摄/视觉重庆"
    assert texts("002", "在行动 城市提升看亮点")[-1] == "特约摄影 钟志兵/视觉重庆"
    assert texts("000", "敢闯敢干 唯实争先")[-1] == "特约摄影 钟志兵/视觉重庆"
    assert texts("001", "弘扬雷锋精神 绽放青春力量")[-1].startswith("3月3日,在西南大学")
    xiezuo = texts("003", '协作项目开始落地确立"四地"目标')
    assert "合作工作机制建起来三年行动计划定出来" in xiezuo
    assert "多部门携手走上前台多领域开始实质合作" in xiezuo
    assert xiezuo[-1] == "据重庆日报"
    chanye = texts("004", "助力产学研“抱团创新” 重庆公示首批17个产业创新综合体项目")
    assert "首批重庆市产业创新综合体(科技型企业主导型)建设单位名单" in chanye
    assert chanye[-1].startswith("17 智慧医疗装备产业创新综合体")
    assert [int(m.group(1)) for t in chanye if (m := re.match(r"(\d+) ", t))] == list(range(1, 18))


@pytest.mark.parametrize(
    ("page", "title", "byline", "date", "source"),
    [
        ("000", "莫恭明来碚调研成渝地区双城经济圈建设和一季度经济运行情况",
         "记者 熊辉", "2023-02-08", "重庆日报"),
        ("000", "一季度“开门红”是用力干出来的", "张燕", "2023-02-09", "重庆日报"),
        ("000", "敢闯敢干 唯实争先", "特约摄影 钟志兵/视觉重庆", "2023-02-06", "重庆日报"),
        ("000", "中国移动(重庆)数据中心: 这个“大脑中枢”将成标杆", None, "2023-02-09", "重庆日报"),
        ("001", "北碚经济技术开发区揭牌成立", "记者 熊辉", None, None),
        ("001", "以高品质生态环境厚植美丽重庆底色", "彭国川", None, None),
        ("002", "正式启动!“东数西算”工程全面实施", "记者 严赋斌 安蓓", None, "新华社"),
        ("002", "2022年市级“专精特新”中小企业开始申报", "记者 夏元", None, "重庆日报"),
        ("002", "大足农民工乘专列赴粤返岗", "记者 陈维灯", None, "重庆日报"),
        ("002", "重庆新增32家新型研发机构", None, None, None),
        ("003", "四川省绵阳市党政代表团来碚考察", "记者 霍吕", None, None),
        ("003", '协作项目开始落地确立"四地"目标', None, None, "重庆日报"),
        ("004", "市委召开全市领导干部会议传达学习贯彻全国两会精神",
         "新重庆-重庆日报记者 杨帆 王天翎", None, "重庆日报"),
        ("004", "北碚、重庆高新区抢抓订单 工业企业助力一季度“开门红”",
         "新重庆-重庆晨报记者 陈军 通讯员 罗丹 摄影报道", None, "重庆晨报"),
        ("004", "助力产学研“抱团创新” 重庆公示首批17个产业创新综合体项目",
         "新重庆-重庆晨报记者 陈军", None, "重庆晨报"),
    ],
)  # fmt: skip
def test_dates_bylines_sources(seed_articles, page, title, byline, date, source) -> None:
    art = article(seed_articles, page, title)
    assert (art.byline, art.date, art.source) == (byline, date, source)


def test_untitled_articles_on_page_003(seed_articles) -> None:
    untitled = [a for a in seed_articles["003"] if not a.title]
    assert untitled[0].paragraphs[0].text.startswith("本报讯(记者齐宏)4月28日,北川铁路复建")
    assert untitled[0].byline == "记者 齐宏"
    assert untitled[1].paragraphs[0].text.startswith("为加快成渝地区双城经济圈建设")


def test_ids_are_stable_and_content_based(seed_articles, tmp_path: Path) -> None:
    again = ingest_path(SEEDS).articles
    first = [a for page in sorted(PAGE) for a in seed_articles[page]]
    assert [a.article_id for a in again] == [a.article_id for a in first]
    ids = [a.article_id for a in first]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
    assert all(a.content_hash.startswith(a.article_id) for a in first)
    # The same page under another name and folder: same ids, other file.
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "copy.txt").write_bytes((SEEDS / PAGE["002"]).read_bytes())
    copy = ingest_path(tmp_path).articles
    assert [a.article_id for a in copy] == [a.article_id for a in seed_articles["002"]]
    assert {a.file for a in copy} == {"sub/copy.txt"}


# ------------------------------------------------------------------------ other inputs


def test_markdown_and_plain_pages(tmp_path: Path) -> None:
    md = (
        "# 第一篇标题\n\n## 副题在这里\n\n本报讯(记者 张三)2024年5月6日,正文第一段写到一半\n\n"
        "接着写完。\n\n- 条目一\n- 条目二\n\n# 第二篇\n\n李四\n\n第二篇的正文。\n"
    )
    articles = ingest_text(md, "page.md")
    assert [a.title for a in articles] == ["第一篇标题", "第二篇"]
    first, second = articles
    assert [p.text for p in first.paragraphs] == [
        "副题在这里",
        "本报讯(记者张三)2024年5月6日,正文第一段写到一半接着写完。",
        "条目一",
        "条目二",
    ]
    assert (first.byline, first.date, first.source) == ("记者 张三", "2024-05-06", None)
    assert second.byline == "李四"
    for art in articles:
        for p in chunk_article(art):
            assert squash(md[p.start : p.end]) == squash(p.text)
    assert ingest_text("", "empty.txt") == []
    assert ingest_text("\n \n", "blank.txt") == []


def test_crlf_and_bom_offsets(tmp_path: Path) -> None:
    text = "\ufeff标题一行\r\n\r\n本报讯(记者 王五)3月4日,第一段。\r\n\r\n第二段。\r\n"
    path = tmp_path / "page.txt"
    path.write_bytes(text.encode("utf-8"))
    (art,) = ingest_path(path).articles
    assert art.title == "标题一行" and art.title_span == Span("标题一行", 1, 5)
    raw = path.read_bytes().decode("utf-8")
    for p in chunk_article(art):
        assert squash(raw[p.start : p.end]) == squash(p.text)


def test_folder_walk_names_and_problems(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "b" / "z.md").write_text("## 标题乙\n\n正文乙。\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("标题甲\n\n本报讯 正文甲。\n", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "notes.csv").write_text("标题\n\n正文。", encoding="utf-8")
    (tmp_path / ".hidden" / "x.txt").write_text("标题\n\n正文。", encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes("标题\n\n正文。".encode("gbk"))
    result = ingest_path(tmp_path)
    assert [(a.file, a.title) for a in result.articles] == [
        ("a.txt", "标题甲"),
        ("b/z.md", "标题乙"),
    ]
    assert len(result.problems) == 1 and result.problems[0].startswith("bad.txt: not UTF-8")
    rooted = ingest_path(tmp_path / "b", root=tmp_path)
    assert [a.file for a in rooted.articles] == ["b/z.md"]
    single = ingest_path(tmp_path / "b" / "z.md")
    assert [a.file for a in single.articles] == ["z.md"]
    missing = ingest_path(tmp_path / "nope")
    assert missing.articles == [] and "no such file" in missing.problems[0]


def test_jsonl_good_lines_kept_bad_lines_reported(tmp_path: Path) -> None:
    good = {
        "id": "a1",
        "title": "重庆 新闻",
        "text": "本报讯(记者 赵六)2月8日,第一段写到\n\n一半。\n第二 段。",
        "date": "2023-02-08",
        "source": "重庆日报",
        "url": "https://example.com/a1",
    }
    lines = [
        json.dumps(good, ensure_ascii=False),
        '{"id": "a2", "title": "缺逗号" "text": "x"}',
        "[1, 2]",
        json.dumps({"id": "a3", "text": "没有标题。"}, ensure_ascii=False),
        json.dumps({"id": "a4", "title": "空正文", "text": "  "}, ensure_ascii=False),
        json.dumps({"id": ["a5"], "title": "t", "text": "正文。"}, ensure_ascii=False),
        "",
        json.dumps({"id": 8, "title": "数字编号", "text": "正文八。"}, ensure_ascii=False),
        json.dumps({"id": "a9", "title": "坏日期", "text": "正文。", "date": "昨天"}),
        json.dumps({"id": "a10", "title": "t", "text": "正文。", "source": 3}),
    ]
    path = tmp_path / "news.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = ingest_path(path)
    assert [(a.article_id, a.file, a.title) for a in result.articles] == [
        ("a1", "news.jsonl#L1", "重庆新闻"),
        ("a3", "news.jsonl#L4", ""),  # no title: untitled, not rejected
        ("8", "news.jsonl#L8", "数字编号"),
    ]
    numbers = [int(re.match(r"news\.jsonl line (\d+): ", p).group(1)) for p in result.problems]
    assert numbers == [2, 3, 5, 6, 9, 10]
    assert result.lines_rejected == len(numbers)
    assert result.problems[0] == (
        "news.jsonl line 2: invalid JSON (Expecting ',' delimiter) - skipped"
    )
    assert all(p.endswith(" - skipped") for p in result.problems)
    a1 = result.articles[0]
    assert a1.title == "重庆新闻" and a1.title_span is None
    assert [p.text for p in a1.paragraphs] == [
        "本报讯(记者赵六)2月8日,第一段写到一半。",
        "第二段。",
    ]
    assert (a1.date, a1.source, a1.url, a1.byline) == (
        "2023-02-08",
        "重庆日报",
        "https://example.com/a1",
        "记者 赵六",
    )
    text = good["text"]
    for p in [*a1.paragraphs, *chunk_article(a1)]:
        assert squash(text[p.start : p.end]) == squash(p.text)
    again = ingest_path(path)
    assert [a.content_hash for a in again.articles] == [a.content_hash for a in result.articles]


def test_article_from_record_errors() -> None:
    with pytest.raises(ValueError, match="not a JSON object"):
        article_from_record("x", "f#L1")
    with pytest.raises(ValueError, match="missing 'text'"):
        article_from_record({"id": "1", "title": "t"}, "f#L1")
    with pytest.raises(ValueError, match="'title' must be a string"):
        article_from_record({"id": "1", "title": 5, "text": "t"}, "f#L1")
    with pytest.raises(ValueError, match="'text' must be a string"):
        article_from_record({"id": "1", "title": "t", "text": 5}, "f#L1")
    art = article_from_record(
        {"id": " x ", "title": "T", "text": "正文。", "date": "2024年3月5日"}, "f"
    )
    assert (art.article_id, art.date) == ("x", "2024-03-05")
