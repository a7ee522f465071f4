"""Sentence-aware chunking: sizes, sentence boundaries, overlap, offsets (no model needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.chunk import chunk_article, sentence_bounds
from indexer.clean import CLOSERS, TERMINATORS, raw_range, squash
from indexer.ingest import article_from_record, ingest_path, ingest_text
from indexer.schema import Article, Span

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
ENDS = TERMINATORS + CLOSERS


@pytest.fixture(scope="module")
def seeds() -> list[tuple[Article, str]]:
    raws = {p.name: p.read_bytes().decode("utf-8") for p in SEEDS.iterdir()}
    return [(a, raws[a.file]) for a in ingest_path(SEEDS).articles]


def record(text: str, ident: str = "x") -> Article:
    return article_from_record({"id": ident, "title": "标题", "text": text}, "t.jsonl#L1")


def sentences(n: int, size: int = 20) -> str:
    """``n`` numbered sentences of exactly ``size`` characters each."""
    return "".join(f"第{k:03d}句" + "字" * (size - 6) + "。" for k in range(n))


def test_sentence_bounds() -> None:
    text = '第一句。第二句！！“第三句？”他说:“好。”然后"走了。"最后没有句号'
    got = [text[s:e] for s, e in sentence_bounds(text)]
    assert got == [
        "第一句。",
        "第二句！！",
        "“第三句？”",
        "他说:“好。”",
        '然后"走了。"',
        "最后没有句号",
    ]
    assert split("要求一;要求二；  结束…… 好") == ["要求一;", "要求二；", "结束……", "好"]
    assert split("It is 1.25 m. Next (see p. 3)") == ["It is 1.25 m.", "Next (see p.", "3)"]
    assert split("括号(里面。)外面") == ["括号(里面。)", "外面"]
    assert split("  ") == []


def split(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_bounds(text)]


@pytest.mark.parametrize(
    ("target", "maximum", "overlap"), [(200, 350, 1), (80, 120, 2), (500, 800, 0), (30, 40, 1)]
)
def test_seed_passages_respect_maximum_and_offsets(seeds, target, maximum, overlap) -> None:
    for art, raw in seeds:
        passages = chunk_article(art, target, maximum, overlap)
        assert [p.position for p in passages] == list(range(len(passages)))
        for p in passages:
            assert len(p.text) <= maximum
            assert p.passage_id == f"{art.article_id}-{p.position:04d}"
            assert p.article_id == art.article_id and p.file == art.file
            assert squash(raw[p.start : p.end]) == squash(p.text)


def test_default_sizes_come_from_settings(seeds) -> None:
    from indexer.settings import get_settings

    s = get_settings()
    art = seeds[0][0]
    assert chunk_article(art) == chunk_article(
        art, s.chunk_target_chars, s.chunk_max_chars, s.chunk_overlap_sentences
    )


def test_splits_fall_at_sentence_ends(seeds) -> None:
    """With room for every sentence, each passage starts and ends exactly on sentence bounds."""
    for art, _ in seeds:
        starts, ends, longest = set(), set(), 0
        for p in art.paragraphs:
            for s, e in sentence_bounds(p.text):
                a, b = raw_range(p, s, e)
                starts.add(a)
                ends.add(b)
                longest = max(longest, e - s)
        for overlap in (0, 1):
            for p in chunk_article(art, 150, max(300, longest), overlap):
                assert p.start in starts and p.end in ends
                assert p.text[-1] in ENDS or any(
                    q.text.endswith(p.text[-5:]) for q in art.paragraphs
                )


def test_packing_targets_size_and_overlap_repeats_last_sentence() -> None:
    art = record(sentences(12))  # 12 sentences of 20 characters
    passages = chunk_article(art, target=60, maximum=100, overlap=1)
    texts = [p.text for p in passages]
    assert all(len(t) <= 60 for t in texts)
    for a, b in zip(texts, texts[1:], strict=False):
        last = a[-20:]
        assert b.startswith(last)  # the previous passage's last sentence comes first
        assert len(b) > len(last)  # and something new follows it
    assert texts[0].startswith("第000句") and texts[-1].endswith("。")
    assert "第011句" in texts[-1]
    without = chunk_article(art, target=60, maximum=100, overlap=0)
    assert "".join(p.text for p in without) == art.paragraphs[0].text
    assert all(len(p.text) == 60 for p in without)


def test_overlap_of_two_and_never_the_whole_passage() -> None:
    art = record(sentences(10))
    texts = [p.text for p in chunk_article(art, target=80, maximum=100, overlap=2)]
    for a, b in zip(texts, texts[1:], strict=False):
        assert b.startswith(a[-40:]) and len(b) > 40
    single = [p.text for p in chunk_article(record(sentences(3, 50)), 50, 60, 3)]
    assert len(single) == 3  # one sentence per passage: nothing is carried over


def test_huge_sentence_is_split_at_commas_then_hard() -> None:
    clause = "这是一个很长的分句" + "字" * 20 + ","  # 30 characters
    text = clause * 30 + "结束。短句。"
    art = record(text)
    passages = chunk_article(art, target=100, maximum=150, overlap=0)
    assert all(len(p.text) <= 150 for p in passages)
    assert len(passages) > 5
    assert all(p.text.endswith((",", "。")) for p in passages)
    assert "".join(p.text for p in passages) == text
    hard = record("字" * 1000)
    pieces = chunk_article(hard, target=100, maximum=150, overlap=1)
    assert all(len(p.text) <= 150 for p in pieces)
    assert "".join(p.text for p in pieces) == "字" * 1000  # no overlap inside one sentence


def test_short_paragraphs_are_packed_with_their_neighbours() -> None:
    art = record("短标题\n\n" + sentences(3) + "\n\n区领导参加。\n\n" + sentences(2))
    (first, *rest) = chunk_article(art, target=200, maximum=300, overlap=0)
    assert not rest
    assert first.text.split("\n")[0] == "短标题"
    assert first.text.count("\n") == 3
    assert len(first.text) == len(squash(art.text)) + 3


def test_passages_never_cross_markup_or_articles() -> None:
    page = (
        "## 第一篇\n\n### 副题\n\n第一段。\n\n- 条目一。\n- 条目二。\n\n## 第二篇\n\n第二篇正文。\n"
    )
    articles = ingest_text(page, "p.md")
    assert [a.title for a in articles] == ["第一篇", "第二篇"]
    first = chunk_article(articles[0], target=200, maximum=300, overlap=1)
    assert [p.text for p in first] == ["副题\n第一段。", "条目一。", "条目二。"]
    for art in articles:
        for p in chunk_article(art, 200, 300, 1):
            assert squash(page[p.start : p.end]) == squash(p.text)
            assert p.article_id == art.article_id


def test_passage_offsets_cite_cleaned_text_inside_a_paragraph() -> None:
    raw = "本报讯(记者 霍吕)4月30日,四 川省绵阳市党政代表团来碚考察。绵阳市委书记刘超, 北碚区委书记周旭出席。"
    art = record(raw)
    passages = chunk_article(art, target=20, maximum=40, overlap=0)
    assert [p.text for p in passages] == [
        "本报讯(记者霍吕)4月30日,四川省绵阳市党政代表团来碚考察。",
        "绵阳市委书记刘超,北碚区委书记周旭出席。",
    ]
    assert raw[passages[0].start : passages[0].end].endswith("来碚考察。")
    assert raw[passages[1].start : passages[1].end] == "绵阳市委书记刘超, 北碚区委书记周旭出席。"


def test_bad_sizes_and_spans_without_offset_map() -> None:
    art = record("一句话。")
    with pytest.raises(ValueError):
        chunk_article(art, target=0, maximum=10, overlap=0)
    with pytest.raises(ValueError):
        chunk_article(art, target=20, maximum=10, overlap=0)
    with pytest.raises(ValueError):
        chunk_article(art, target=10, maximum=20, overlap=-1)
    verbatim = Article("v", "t", "f", [Span("一句话。两句话。", 5, 13)])
    assert [(p.start, p.end) for p in chunk_article(verbatim, 4, 6, 0)] == [(5, 9), (9, 13)]
    cleaned_without_map = Article("c", "t", "f", [Span("一句话。", 0, 6)])
    with pytest.raises(ValueError):
        chunk_article(cleaned_without_map, 10, 20, 0)
    assert chunk_article(Article("e", "t", "f", []), 10, 20, 1) == []


SCRIPT = (
    "$(function(){ function isMobile(){ var u = navigator.userAgent.toLowerCase(); "
    'if(u.indexOf("mobile") != -1){ return "iphone"; } } '
    '$(".img").css("width","100%"); }); '
)


def test_script_code_left_by_a_scraper_is_not_a_passage() -> None:
    story = "古树,既是自然财富,又是经济财富。黄杜村的村民们把白茶种到房前屋后。"
    raw = (
        SCRIPT + story + "\n\n.imgisgif{display:inline-block; cursor:pointer;}\n\n人均年收入7万元。"
    )
    passages = chunk_article(record(raw), target=40, maximum=80, overlap=1)
    assert passages, "the story is still indexed"
    for p in passages:
        assert not any(sign in p.text for sign in "{}$=;"), p.text
        assert squash(raw[p.start : p.end]) == squash(p.text)  # citations stay exact
    assert raw[passages[0].start :].startswith("古树")
    assert passages[-1].text.endswith("人均年收入7万元。")


def test_english_prose_and_an_all_code_article_are_kept() -> None:
    prose = "The bill (HR 1) passed; the vote was 64 to 56. Prices rose 5% = a record."
    assert squash(chunk_article(record(prose), 200, 300, 0)[0].text) == squash(prose)
    only_code = chunk_article(record(SCRIPT), 200, 300, 0)
    assert only_code and "function" in only_code[0].text  # kept rather than vanish
