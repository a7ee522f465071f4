"""Script folding (indexer.script): a simplified question finds and marks traditional text."""

from __future__ import annotations

import opencc
import pytest

from indexer import script
from indexer.manifest import IncompatibleIndex, IndexSettings, Manifest
from indexer.tokenize import ChineseTokenizer, fingerprint
from qa_service.highlight import highlights

TRADITIONAL = "臺灣的資訊軟體產業發展出來後，香港綫上銀行也衞生。"
SIMPLIFIED = "台湾的资讯软体产业发展出来后，香港线上银行也卫生。"


def test_traditional_and_simplified_give_the_same_tokens():
    tokenizer = ChineseTokenizer()
    assert tokenizer.tokenize(TRADITIONAL) == tokenizer.tokenize(SIMPLIFIED)
    assert {"台湾", "资讯", "软体", "发展"} <= set(tokenizer.tokenize(TRADITIONAL))
    assert tokenizer.tokenize("什么么") == []  # stopwords are folded too (么 folds to 幺)
    unfolded = ChineseTokenizer(script_fold=False)
    assert unfolded.tokenize(TRADITIONAL) != unfolded.tokenize(SIMPLIFIED)


@pytest.mark.parametrize("conversion", ["s2tw", "s2hk", "s2t"])
def test_folding_keeps_every_offset(conversion):
    text = opencc.OpenCC(conversion).convert(SIMPLIFIED + "\n乾隆皇后頭髮乾了，著名的著作。" * 3)
    folded = script.fold(text)
    assert len(folded) == len(text)
    assert script.fold("ASCII only, 1.25") == "ASCII only, 1.25"


def test_a_phrase_that_changes_length_is_folded_character_by_character(monkeypatch):
    real = script._convert
    monkeypatch.setattr(script, "_convert", lambda t: real(t) + ("x" if len(t) > 1 else ""))
    text = "第一行：臺灣\n第二行：資訊"
    assert script.fold(text) == "第一行：台湾\n第二行：资讯"


def test_fingerprint_records_folding_and_a_folding_reader_refuses_an_unfolded_index():
    assert fingerprint("search") != fingerprint("search", script_fold=False)
    assert ChineseTokenizer(script_fold=False).fingerprint == fingerprint("search", None, False)
    built = IndexSettings("m", "c", 4, fingerprint("search", None, False), 200, 350, 1)
    reader = IndexSettings("m", "c", 4, fingerprint("search"), 200, 350, 1)
    with pytest.raises(IncompatibleIndex, match="tokenizer.*NEWSQA_SCRIPT_FOLD"):
        Manifest(built).check_compatible(reader, "read")


def test_highlights_mark_the_original_traditional_characters():
    terms = ChineseTokenizer().tokenize("台湾资讯软体")
    marked = [TRADITIONAL[s:e] for s, e in highlights(TRADITIONAL, terms)]
    assert marked == ["臺灣", "資訊軟體"]
    # A traditional term over simplified text, and unfolded tokens, mark too.
    assert [SIMPLIFIED[s:e] for s, e in highlights(SIMPLIFIED, ["資訊"])] == ["资讯"]


# ------------------------------------------------------------------ with the real model


@pytest.fixture(scope="module")
def traditional_engine(tmp_path_factory, indexer_obj, embedder, settings):
    """An index of the first part of two seed articles, converted to Taiwan characters."""
    from indexer.pipeline import build, iter_sources
    from qa_service.engine import open_engine
    from tests.conftest import SEEDS

    to_traditional = opencc.OpenCC("s2tw").convert
    folder = tmp_path_factory.mktemp("traditional-seeds")
    for name in ("001_df9d847a2fa7b697.txt", "003_c39b219bdb99aca7.txt"):
        lines = (SEEDS / name).read_text(encoding="utf-8").splitlines(keepends=True)
        head, size = [], 0
        for line in lines:  # whole lines, about 2,500 characters: a few passages
            head.append(line)
            size += len(line)
            if size > 2500:
                break
        (folder / name).write_text(to_traditional("".join(head)), encoding="utf-8")
    out = folder / "index"
    build(out, iter_sources([folder]), indexer=indexer_obj, progress=False)
    return open_engine(out, settings, embedder)


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
def test_a_simplified_question_finds_traditional_text_first(traditional_engine, mode):
    results, analysis, _ = traditional_engine.search("北碚经济技术开发区规划总面积多大", 3, mode)
    top = traditional_engine.index.passages[results[0].row].text
    assert "172.6" in top and "經濟技術開發區" in top
    assert analysis.coverage > 0.5
    marked = {top[s:e] for s, e in results[0].highlights}
    assert any("開發區" in m for m in marked)


def test_the_model_embeds_folded_text(embedder):
    assert embedder.script_fold
    vectors = embedder.encode_query(["臺灣的資訊軟體", "台湾的资讯软体"])
    assert float(vectors[0] @ vectors[1]) > 0.9999
