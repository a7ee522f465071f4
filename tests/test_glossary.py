"""English question words in Chinese through CC-CEDICT (qa_service.glossary; no model)."""

from qa_service import glossary

KNOWN = {"铁路", "铁道", "服务器", "北川", "北碚", "火车", "列车", "培训", "坦克", "评论"}


def test_common_words_and_place_names_find_their_chinese():
    assert "铁路" in glossary.translations("railway", KNOWN)
    assert glossary.translations("servers", KNOWN) == ["服务器"]  # the plural's singular
    assert glossary.translations("tanks", KNOWN) == ["坦克"]
    assert glossary.translations("beichuan", KNOWN) == ["北川"]  # a name opening a gloss
    assert glossary.translations("beibei", KNOWN) == ["北碚"]


def test_only_words_the_index_knows_and_at_most_a_few():
    assert glossary.translations("railway", {"铁路"}) == ["铁路"]
    assert glossary.translations("railway", set()) == []
    assert len(glossary.translations("train", KNOWN, limit=2)) == 2


def test_question_words_and_unknown_words_have_none():
    assert glossary.translations("which", KNOWN) == []
    assert glossary.translations("how", KNOWN) == []
    assert glossary.translations("qwzzxv", KNOWN) == []
    assert glossary.is_english_word("railway") and not glossary.is_english_word("北川")
    assert not glossary.is_english_word("d1851")


def test_within_a_sense_the_word_the_archive_uses_more_comes_first():
    known = {"北京", "京剧"}  # "Beijing, capital of …" and "Beijing opera": both sense one
    uses = {"北京": 12.0, "京剧": 1.0}.get
    assert glossary.translations("beijing", known, limit=1, prefer=uses) == ["北京"]
    assert glossary.translate("Rainfall in Beijing", known, per_term=1, prefer=uses) == ["北京"]
