import pytest
from pydantic import ValidationError

from indexer.choices import TOKENIZER_MODES
from indexer.settings import Settings
from indexer.tokenize import ChineseTokenizer


def test_keeps_codes_numbers_and_latin_drops_punctuation():
    tokens = ChineseTokenizer().tokenize("返粤专列D1851次列车,服务器24000G,PUE值1.25。")
    for expected in ("d1851", "24000g", "pue", "1.25", "专列"):
        assert expected in tokens
    assert "," not in tokens and "。" not in tokens


def test_question_words_are_not_evidence():
    assert ChineseTokenizer().tokenize("是什么？有多少？") == []


def test_user_dictionary(tmp_path):
    word = "鑫景特玻"
    plain = ChineseTokenizer(mode="precise").tokenize(f"{word}公司")
    assert word not in plain
    user = tmp_path / "dict.txt"
    user.write_text(f"{word} 100 nz\n", encoding="utf-8")
    tok = ChineseTokenizer(mode="precise", user_dict=user)
    assert word in tok.tokenize(f"{word}公司")
    assert tok.fingerprint != ChineseTokenizer(mode="precise").fingerprint


@pytest.mark.parametrize("mode", TOKENIZER_MODES)
def test_every_configurable_mode_tokenizes(mode):
    assert "专列" in ChineseTokenizer(mode=mode).tokenize("返粤专列D1851次列车")


def test_unknown_mode_is_refused_by_the_tokenizer_and_the_settings(monkeypatch):
    with pytest.raises(ValueError, match="search, precise, full"):
        ChineseTokenizer(mode="fast")
    monkeypatch.setenv("NEWSQA_TOKENIZER_MODE", "fast")
    with pytest.raises(ValidationError, match="tokenizer_mode"):
        Settings()
    monkeypatch.setenv("NEWSQA_TOKENIZER_MODE", "full")
    assert Settings().tokenizer_mode == "full"
