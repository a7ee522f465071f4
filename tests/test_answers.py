"""Answer extraction without the model: what a question asks for, which sentence states it,
the stored sentence vectors, and the evaluation of answers (abstention included)."""

from __future__ import annotations

import numpy as np
import pytest

from eval.corpus import select_articles
from eval.metrics import answer_set_means, score_answers, score_unanswerable
from indexer.sentences import SentenceIndex, passage_sentences
from qa_service import question
from qa_service.answer import Candidate, Weights, score_candidates, slot_tokens, weights_for
from qa_service.retrieval import QueryAnalysis


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("剑涛智慧产业基地建成后能提供多少个就业岗位?", "number"),
        ("十三届区纪委三次全会由谁主持?", "person"),
        ("《中国商报》是哪一年创办的?", "date"),
        ("武汉敏声超亿元战略融资由哪家机构领投?", "org"),
        ("中国国家话剧院老院长赵有亮是在哪儿去世的?", "place"),
        ("李源潮14日在唐山考察了哪些企业?", "list"),
        ("东航MU6958拉萨飞往上海的航班为什么备降武汉?", "reason"),
        ("How many tanks fell into the hands of al-Qaeda fighters?", "number"),
        ("Who won the slam dunk contest?", "person"),
        ("Which district head spoke to reporters?", "person"),
        ("Which company leads the industrial chain?", "org"),
        ("Where does the trail start?", "place"),
        ("Around when is the memory expected to launch?", "date"),
        ("Which three Liaoning provincial bodies issued the guidance?", "list"),
        ("What annual peak repair capacity will the plant have?", "number"),
    ],
)
def test_what_a_question_asks_for(text: str, kind: str) -> None:
    assert question.asked_for(text) == kind


def test_a_fact_the_question_already_states_is_no_answer() -> None:
    q = "重庆新增32家新型研发机构后,全市新型研发机构总数达到多少家?"
    assert question.holds("number", "全市新型研发机构总数达到179家。", q) == 1.0
    assert question.holds("number", "此次新增32家新型研发机构。", q) == 0.5
    assert question.holds("number", "新型研发机构发展势头良好。", q) == 0.0
    assert question.holds(None, "全市共179家。", q) == 0.0


_HOW_MANY = "台儿庄区已换发了多少个船舶营运证?"
_BANDWIDTH = "What internet egress bandwidth has the data center reached?"


@pytest.mark.parametrize(
    ("q", "sentence", "holds"),
    [
        # a lone 一 before a measure word is an article, not a count
        (_HOW_MANY, "当地推出“船舶营运一件事”主题服务。", 0.0),
        (_HOW_MANY, "一名男子持刀闯入。", 0.0),
        (_HOW_MANY, "两地形成一个整体,建成一座新城。", 0.0),
        (_HOW_MANY, "已完成1130个船舶营运证的换证。", 1.0),
        (_HOW_MANY, "共有一百二十个项目,十一个签约。", 1.0),
        (_HOW_MANY, "这是美国对乌的第一个援助计划。", 1.0),  # an ordinal
        # a lone magnitude is no count unless a word makes it rough (seed-015: 百度 held a
        # "number", 百 + 度, next to 互联网 and won a bandwidth question)
        (_BANDWIDTH, "腾讯、阿里和百度等互联网企业在此建立了数据节点。", 0.0),
        (_BANDWIDTH, "万家灯火迎新春。", 0.0),
        (_BANDWIDTH, "现场吸引了上万人。", 1.0),
        (_BANDWIDTH, "数百家企业参展,投资百万元。", 1.0),
    ],
)
def test_what_counts_as_a_number(q: str, sentence: str, holds: float) -> None:
    assert question.holds("number", sentence, q) == holds


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("武当山紫霄村那棵“红军树”古银杏已经活了多少年?", ("年",)),
        ("换证申请材料由原来的几项缩减到了几项?", ("项",)),
        ("城南市盆唐区“无差别行凶”案造成多少人受伤?", ("人", "名", "位")),
        ("剑涛智慧产业基地建成后能提供多少个就业岗位?", None),  # 个 names no measure
        ("加拿大卑诗省大约有多少比例的居民平时首先用中文书写?", ("%", "％", "成")),
        ("How many tanks fell into the hands of al-Qaeda fighters?", None),
    ],
)
def test_the_measure_a_question_names(text: str, units) -> None:
    assert question.asked_units(text) == units


def test_a_number_in_another_measure_is_no_answer() -> None:
    q = "武当山紫霄村那棵“红军树”古银杏已经活了多少年?"
    units = question.asked_units(q)
    assert question.holds("number", "在古银杏树下，这6位战士高呼口号。", q, units) == 0.0
    assert question.holds("number", "这棵古银杏树龄至今已有480多年。", q, units) == 1.0
    money = question.asked_units("前后一共被骗走多少钱?")
    assert question.holds("number", "共计转账38680元。", "被骗走多少钱?", money) == 1.0
    assert question.holds("number", "骗子先后打来3个电话。", "被骗走多少钱?", money) == 0.0
    share = question.asked_units("大约有多少比例的居民首先用中文书写?")
    assert question.holds("number", "该省约11%人口的第一书写语言是中文。", "比例?", share) == 1.0
    assert question.holds("number", "身为一名移民，他深知其中的困难。", "比例?", share) == 0.0


def test_slot_is_what_stands_beside_the_question_word() -> None:
    assert slot_tokens("十三届区纪委三次全会由谁主持?", ("三次", "全会", "主持")) == [
        "三次",
        "全会",
        "主持",
    ]
    tokens = ("剑涛", "智慧", "产业", "基地", "建成", "提供", "就业", "岗位")
    slots = slot_tokens("剑涛智慧产业基地建成后能提供多少个就业岗位?", tokens)
    assert {"就业", "岗位", "提供"} <= set(slots) and "剑涛" not in slots


def _candidates(sentences: list[str]) -> list[Candidate]:
    return [Candidate(s, s.lower(), 0, 0, len(s)) for s in sentences]


def _best(
    q: str, tokens: tuple[str, ...], sentences: list[str], weights: Weights, topic: str = ""
) -> str:
    """The sentence that scores highest, every token weighing idf 3.0 (ties: the first)."""
    cands = _candidates(sentences)
    for c in cands:  # what every sentence's article is about
        c.topic = topic
    score_candidates(q, QueryAnalysis(tokens), dict.fromkeys(tokens, 3.0), cands, None, weights)
    return max(cands, key=lambda c: c.score).text


def test_the_sentence_with_the_asked_for_fact_beats_the_lead() -> None:
    q = "剑涛智慧产业基地建成后能提供多少个就业岗位?"
    lead = "剑涛智慧产业基地项目位于北碚园区一号地块,总投资2亿元,总建筑面积约12968平方米。"
    fact = "该项目预计明年初建成投产,达产后,年税收不低于600万元,提供就业岗位500个。"
    other = "剑涛智慧产业基地项目建设类型为工业生产项目。"
    tokens = ("剑涛", "智慧", "产业", "基地", "建成", "提供", "就业", "岗位")
    assert _best(q, tokens, [lead, fact, other], Weights()) == fact


def test_a_list_header_with_the_slot_words_loses_to_the_item_asked_about() -> None:
    # seed-109: the header line of a list holds 牵头/单位 and another item's companies
    q = "干净空气材料及装备产业创新综合体由哪家公司牵头?"
    header = "1 新能源汽车安全车身与智能底盘产业创新综合体(牵头单位,下同:赛力斯集团股份有限公司)"
    item = "7 干净空气材料及装备产业创新综合体(重庆再升科技股份有限公司)"
    other = "6 合成化工材料产业创新综合体(重庆华峰化工有限公司)"
    tokens = ("干净", "空气", "材料", "装备", "产业", "创新", "综合体", "公司", "牵头")
    title = "首批17个产业创新综合体建设单位名单"  # the page's: what every line is about

    def best(weights: Weights) -> str:
        return _best(q, tokens, [header, item, other], weights, topic=title)

    assert best(Weights()) == item
    assert best(Weights(off_subject=0.0)) == header  # what it was without


def test_a_slot_word_written_out_in_full_still_counts_a_little() -> None:
    # c111: 法人 in the question, 法定代表人 in the answer; no token is shared
    q = "这家公司的法人是谁?"
    other = "董事长王强出席了签约活动。"
    written_out = "公开资料显示,法定代表人为孙庆阳。"

    def best(weights: Weights) -> str:
        return _best(q, ("法人",), [other, written_out], weights)

    assert best(Weights()) == written_out
    assert best(Weights(slot_chars=0.0)) == other  # a tie, the first listed, without


def test_an_english_question_takes_the_fact_next_to_its_words() -> None:
    # c003: English words are no slot words in Chinese text; 1130个 stands beside 营运证
    q = "How many operation certificates (营运证) has the district renewed?"
    tokens = ("operation", "certificates", "营运证", "district", "renewed")
    elsewhere = "营运证换发工作中,全区共有120家企业参与。"
    beside = "此次换发营运证1130个。"

    def best(weights: Weights) -> str:
        return _best(q, tokens, [elsewhere, beside], weights)

    assert best(Weights()) == beside
    assert best(Weights(near_english=0.0)) == elsewhere  # a tie, the first listed, without


def test_meaning_decides_when_no_words_are_shared() -> None:
    cands = _candidates(["甲句子说了别的事情。", "乙句子回答了这个问题。"])
    sims = np.array([0.80, 0.86])
    score_candidates("What does it say?", QueryAnalysis(()), {}, cands, sims, Weights())
    assert cands[1].score > cands[0].score


def test_sentence_index_round_trip(tmp_path) -> None:
    texts = ["第一句话。第二句话很长。", "第二句话很长。第三句。\n标题这一行"]

    def encode(sentences: list[str]) -> np.ndarray:
        encode.calls.append(list(sentences))
        rng = np.random.default_rng(len(sentences))
        v = rng.normal(size=(len(sentences), 8))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    encode.calls = []
    index = SentenceIndex.build(texts, encode, 8)
    assert len(encode.calls) == 1 and len(encode.calls[0]) == 4  # the shared one once
    spans, vectors = index.of_passage(1)
    assert [texts[1][s:e] for s, e in spans] == ["第二句话很长。", "第三句。", "标题这一行"]
    assert [tuple(map(int, sp)) for sp in spans] == passage_sentences(texts[1])
    assert np.allclose(vectors[0], index.of_passage(0)[1][1], atol=1e-3)
    kept = index.keep([1])
    assert kept.passages() == 1 and len(kept) == 3
    both = kept.concat(SentenceIndex.build(["新的一句。"], encode, 8, first_row=1))
    assert [int(r) for r in both.spans[:, 0]] == [0, 0, 0, 1]
    both.save(tmp_path)
    loaded = SentenceIndex.load(tmp_path)
    assert np.array_equal(loaded.spans, both.spans) and loaded.vectors.dtype == np.float16
    assert SentenceIndex.load(tmp_path / "nothing-here") is None


def test_answer_set_means_split_answerable_and_unanswerable() -> None:
    rows = [
        score_answers(1, "答案是北京。", ["北京"], (1, 5)),
        score_answers(None, "", ["上海"], (1, 5)),
        score_unanswerable(""),
        score_unanswerable("一个不该有的答案"),
    ]
    means = answer_set_means(rows, (1, 5))
    assert means["Hit@1"] == 0.5 and means["AnswerHit"] == 0.5
    assert means["Unanswered"] == 0.5 and means["Abstained"] == 0.5
    assert "Abstained" not in answer_set_means(rows[:2], (1, 5))


def test_corpus_part_is_the_wanted_articles_plus_a_fixed_sample() -> None:
    records = [{"id": f"a{i}", "text": "x"} for i in range(50)]
    part = select_articles(records, {"a7", "a42"}, 10)
    ids = [r["id"] for r in part]
    assert {"a7", "a42"} <= set(ids) and len(ids) == 12
    assert ids == sorted(ids, key=lambda i: int(i[1:]))  # file order
    assert select_articles(list(reversed(records)), {"a7", "a42"}, 10)[0]["id"] in ids
    assert select_articles(records, {"a7"}, None) == records


def test_meaning_counts_in_each_models_own_scale() -> None:
    """A 0.15 cosine gap between two candidate sentences is wide for multilingual-e5-small
    (one question's candidates spread about 0.02) and ordinary for embeddinggemma-300m
    (about 0.15): there the sentence holding the question's rare word wins."""
    q = "光伏项目建成后一年能发多少电?"
    closer = "项目位于北翟路基地屋顶。"
    holds_word = "光伏板铺满了屋顶。"
    sims = np.array([0.85, 0.70])

    def best(model: str) -> str:
        cands = _candidates([closer, holds_word])
        weights = weights_for(Weights(off_subject=0.0), model)  # meaning alone decides
        score_candidates(q, QueryAnalysis(("光伏",)), {"光伏": 3.0}, cands, sims, weights)
        return max(cands, key=lambda c: c.score).text

    assert best("multilingual-e5-small") == closer
    assert best("embeddinggemma-300m") == holds_word
    assert weights_for(Weights(), "multilingual-e5-small") == Weights()


def test_candidates_come_from_the_top_passages_and_the_first_ones_article_further_down():
    """A stand-in index of ten ranked passages (no model): the first three of any article,
    then down to ARTICLE_DEPTH only the first passage's own article; passages the response
    will not list (beyond ``shown``) only from that article (answer_first lists it first)."""
    from types import SimpleNamespace

    from qa_service.answer import ARTICLE_DEPTH, candidate_hits
    from qa_service.retrieval import Hit

    articles = ["A", "B", "A", "C", "A", "A", "B", "A", "A", "A"]
    index = SimpleNamespace(passages=[SimpleNamespace(article_id=a) for a in articles])
    hits = [Hit(row, 1.0 - row / 10) for row in range(len(articles))]
    assert ARTICLE_DEPTH == 8
    assert candidate_hits(index, hits) == [0, 1, 2, 4, 5, 7]
    assert candidate_hits(index, hits, shown=1) == [0, 2, 4, 5, 7]
    assert candidate_hits(index, hits[:2]) == [0, 1]
    assert candidate_hits(index, []) == []
