"""The answer's confidence: when the service says "not found"; and its span (no model needed).

The figures behind the thresholds are in BENCHMARKS.md (issue 13); the quality gate
(tests/test_quality.py) checks them with the real model on the seed pages and CRUD.
"""

import pytest

from qa_service.answer import article_support, confidence
from qa_service.calibration import CALIBRATIONS, DEFAULT_MODEL, Calibration, for_model
from qa_service.retrieval import article_lead, article_of


def test_article_of_reads_the_passage_id():
    assert article_of("crud-documents_dup_part_1-17-0003") == "crud-documents_dup_part_1-17"


def test_article_lead_counts_each_article_once_by_its_best_passage():
    ids = {1: "a-0000", 2: "a-0001", 3: "b-0000", 4: "c-0000"}
    dense_top = {1: 0.90, 2: 0.89, 3: 0.80, 4: 0.70}  # best first, as the router gives
    assert article_lead(dense_top, ids) == pytest.approx(0.90 - (0.80 + 0.70) / 2)


def test_article_lead_looks_at_ten_articles_and_needs_two():
    ids = {i: f"art{i}-0000" for i in range(20)}
    dense_top = {i: 1.0 - i / 100 for i in range(20)}
    assert article_lead(dense_top, ids) == pytest.approx(
        1.0 - sum(1.0 - i / 100 for i in range(1, 10)) / 9
    )
    assert article_lead({1: 0.9}, {1: "a-0000"}) is None


each_model = pytest.mark.parametrize("cal", list(CALIBRATIONS.values()), ids=list(CALIBRATIONS))


@each_model
def test_a_plateau_of_stories_with_few_of_the_words_is_not_an_answer(cal: Calibration):
    assert confidence(cal.min_lead / 2, cal.min_margin + 0.02, cal.min_support / 2, cal) < 0.5


@each_model
def test_a_standing_out_story_answers_in_any_language(cal: Calibration):
    assert confidence(cal.min_lead * 1.2, cal.min_margin + 0.01, 0.0, cal) >= 0.5


@each_model
def test_the_lead_counts_only_when_something_is_close(cal: Calibration):
    """In a small archive one page always stands out a little from the few others."""
    assert confidence(cal.min_lead * 3, cal.min_margin - 0.01, 0.0, cal) < 0.5
    assert confidence(cal.min_lead * 3, None, 0.0, cal) < 0.5


@each_model
def test_an_article_holding_the_question_words_answers(cal: Calibration):
    assert confidence(None, None, cal.min_support, cal) >= 0.5
    assert confidence(None, None, 1.0, cal) > confidence(None, None, cal.min_support, cal)
    assert confidence(cal.min_lead * 5, 1.0, 1.0, cal) == 1.0  # at most 1


def test_thresholds_follow_the_index_model_and_an_unknown_model_gets_the_default(caplog):
    assert for_model(DEFAULT_MODEL) is CALIBRATIONS[DEFAULT_MODEL]
    with caplog.at_level("WARNING"):
        assert for_model("/srv/models/my-own-model") is CALIBRATIONS[DEFAULT_MODEL]
    assert "no calibrated answer thresholds" in caplog.text


def test_support_is_the_idf_weighted_share_found_in_the_article():
    idf = {"极越": 3.0, "预售价": 1.0}
    assert article_support(("极越", "预售价"), idf, "极越汽车今日发布") == pytest.approx(0.75)
    # A word the index never saw weighs as much as its rarest one.
    assert article_support(("霸王茶姬", "预售价"), idf, "预售价") == pytest.approx(0.25)


def test_an_english_question_is_supported_through_the_dictionary():
    """An English question shares no word with a Chinese article: read plainly, its support
    is 0 whether or not the archive holds its things. Through CC-CEDICT (qa_service.glossary)
    the article about the railway holds most of it, one about something else little."""
    q = ("what", "kind", "trains", "will", "run", "rebuilt", "beichuan", "railway")
    idf = {"北川": 6.0, "铁路": 4.0, "火车": 4.0, "列车": 4.0, "运行": 2.0, "公司": 1.0}
    railway = "复建北川铁路全长约12公里,使用观光型小火车。"
    other = "重庆新增32家新型研发机构,企业运行良好。"
    assert article_support(q, idf, railway) == 0.0  # read plainly
    held = article_support(q, idf, railway, english=True)
    assert held > 0.6 > article_support(q, idf, other, english=True)
    # Chinese tokens of an English question (a quoted name) count as they are.
    assert article_support(("北川", "railway"), idf, "北川铁路", english=True) == 1.0


@each_model
def test_english_support_has_its_own_threshold(cal: Calibration):
    s = cal.min_english_support
    assert confidence(None, None, s, cal, english=True) >= 0.5
    assert confidence(None, None, s * 0.9, cal, english=True) < 0.5


def test_an_answer_that_points_back_keeps_the_sentence_it_points_to():
    """The span logic only: a stand-in index holding one passage (no model)."""
    from types import SimpleNamespace

    from qa_service.answer import Candidate, antecedent_start

    text = "北碚区新增一家企业。重庆华虹仪表有限公司落户园区。该公司是首家入驻的企业。"
    index = SimpleNamespace(passages=[SimpleNamespace(text=text)])
    s = text.index("该公司")
    best = Candidate(text[s:], text[s:], 0, s, len(text))
    start = antecedent_start(index, 0, best)
    assert text[start : best.end] == "重庆华虹仪表有限公司落户园区。该公司是首家入驻的企业。"
    s = text.index("重庆")
    plain = Candidate(text[s : text.index("该")], "", 0, s, text.index("该"))
    assert antecedent_start(index, 0, plain) == s  # a sentence that names its subject

    # After a source phrase too (据介绍，该公司…).
    text = "重庆华虹仪表有限公司落户园区。据介绍，该公司是首家入驻的企业。"
    index = SimpleNamespace(passages=[SimpleNamespace(text=text)])
    s = text.index("据介绍")
    best = Candidate(text[s:], text[s:], 0, s, len(text))
    assert antecedent_start(index, 0, best) == 0
