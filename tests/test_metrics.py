"""eval.metrics against pytrec_eval (trec_eval) and hand-computed cases, answer-string
metrics; eval.runfile runs."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest

from eval.metrics import (
    MetricReport,
    answer_hit,
    answer_metric_names,
    collapse_to_docs,
    evaluate,
    first_answer_rank,
    mean_of,
    metric_names,
    percentile,
    rank_metrics,
    score_answers,
    trec_order,
)
from eval.runfile import RunFileError, read_run, write_run

pytrec_eval = pytest.importorskip("pytrec_eval", reason="pip install pytrec_eval-terrier")

KS = (1, 3, 5, 10)
TOL = 1e-9


# --------------------------------------------------------------------------- reference


def _random_case(seed: int = 20240611) -> tuple[dict, dict]:
    """~50 queries: ties, graded and negative grades, unanswered and unjudged queries."""
    rng = random.Random(seed)
    docs = [f"d{i:02d}" for i in range(30)] + ["文档甲", "文档乙", "Éa", "zeta", "Z9", "b-1"]
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for q in range(50):
        qid = f"q{q}"
        judged = rng.sample(docs, rng.randint(1, 6))
        grades = {d: rng.choice([0, 1, 1, 2, 3, -1]) for d in judged}
        if q % 9 == 0:  # no relevant document at all: skipped by evaluate
            grades = {d: rng.choice([0, -1]) for d in judged}
        qrels[qid] = grades
        if q % 7 == 3:  # the run does not answer this query
            continue
        size = rng.randint(1, 25)
        # scores on a coarse grid so many tie; exact in 6 decimals
        run[qid] = {d: rng.randint(0, 12) / 4 for d in rng.sample(docs, size)}
    run["not-in-qrels"] = {"d01": 1.0}
    return run, qrels


def _reference(run: dict, qrels: dict) -> dict[str, dict[str, float]]:
    """pytrec_eval values under our names, for queries with a relevant document."""
    measures = {
        "recall." + ",".join(map(str, KS)),
        "success." + ",".join(map(str, KS)),
        "ndcg_cut." + ",".join(map(str, KS)),
    }
    full = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    cut10 = {q: dict(trec_order(d)[:10]) for q, d in run.items()}
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut10)
    out: dict[str, dict[str, float]] = {}
    for qid, rels in qrels.items():
        if not any(r >= 1 for r in rels.values()):
            continue
        values = {}
        got = full.get(qid)
        for k in KS:
            values[f"Recall@{k}"] = got[f"recall_{k}"] if got else 0.0
            values[f"Hit@{k}"] = got[f"success_{k}"] if got else 0.0
            values[f"nDCG@{k}"] = got[f"ndcg_cut_{k}"] if got else 0.0
        values["MRR@10"] = rr[qid]["recip_rank"] if qid in rr else 0.0
        out[qid] = values
    return out


def _assert_matches(report: MetricReport, reference: dict[str, dict[str, float]]) -> None:
    assert set(report.per_query) == set(reference)
    for qid, values in reference.items():
        for name, expected in values.items():
            got = report.per_query[qid][name]
            assert got == pytest.approx(expected, abs=TOL), (qid, name, got, expected)
    for name in metric_names(KS):
        expected = sum(v[name] for v in reference.values()) / len(reference)
        assert report.mean[name] == pytest.approx(expected, abs=TOL), name


def test_case_is_nontrivial():
    run, qrels = _random_case()
    report = evaluate(run, qrels, KS)
    assert len(report.skipped) >= 5
    assert len(report.missing) >= 5
    assert any(sum(r >= 1 for r in rels.values()) >= 2 for rels in qrels.values())
    assert any(len(set(d.values())) < len(d) for d in run.values())  # ties
    assert 0 < report.mean["nDCG@10"] < 1
    assert 0 < report.mean["MRR@10"] < report.mean["Hit@10"] + TOL


def test_equals_pytrec_eval_on_score_maps():
    run, qrels = _random_case()
    _assert_matches(evaluate(run, qrels, KS), _reference(run, qrels))


def test_equals_pytrec_eval_on_ranked_lists():
    run, qrels = _random_case()
    ranked = {q: trec_order(d) for q, d in run.items()}
    _assert_matches(evaluate(ranked, qrels, KS), _reference(run, qrels))


def test_equals_pytrec_eval_through_run_file(tmp_path: Path):
    run, qrels = _random_case()
    path = tmp_path / "run.trec"
    write_run(path, run, "bm25")
    back = read_run(path)
    # what trec_eval would see in the file
    as_maps = {q: dict(docs) for q, docs in back.items()}
    assert as_maps == run
    _assert_matches(evaluate(back, qrels, KS), _reference(as_maps, qrels))


def test_run_file_rounding_ties_match_trec_eval(tmp_path: Path):
    """Scores equal after 6 decimals tie in the file; trec_eval then orders by doc id."""
    rng = random.Random(7)
    run = {f"q{i}": {f"d{j}": 0.5 + rng.random() * 1e-7 for j in range(12)} for i in range(10)}
    qrels = {}
    for i in range(10):
        first, second = rng.sample(range(12), 2)
        qrels[f"q{i}"] = {f"d{first}": 1, f"d{second}": 2}
    path = tmp_path / "run.trec"
    write_run(path, run, "t")
    as_maps = {q: dict(docs) for q, docs in read_run(path).items()}
    _assert_matches(evaluate(as_maps, qrels, KS), _reference(as_maps, qrels))


# --------------------------------------------------------------------------- by hand


def test_single_relevant_at_rank_two():
    report = evaluate({"q": [("x", 2.0), ("a", 1.0)]}, {"q": {"a": 1}}, KS)
    v = report.per_query["q"]
    assert v["Recall@1"] == 0 and v["Recall@3"] == 1
    assert v["Hit@1"] == 0 and v["Hit@3"] == 1
    assert v["MRR@10"] == 0.5
    assert v["nDCG@10"] == pytest.approx(1 / math.log2(3))
    assert report.mean == v


def test_graded_ndcg():
    report = evaluate({"q": [("b", 9.0), ("n", 8.0), ("a", 7.0)]}, {"q": {"a": 3, "b": 1}}, KS)
    dcg = 1 + 3 / math.log2(4)
    idcg = 3 + 1 / math.log2(3)
    assert report.per_query["q"]["nDCG@10"] == pytest.approx(dcg / idcg)
    assert report.per_query["q"]["nDCG@1"] == pytest.approx(1 / 3)
    assert report.per_query["q"]["Recall@1"] == 0.5


def test_score_map_ties_break_on_doc_id_descending():
    assert [d for d, _ in trec_order({"a": 1.0, "c": 1.0, "b": 1.0, "z": 0.5})] == [
        "c",
        "b",
        "a",
        "z",
    ]
    report = evaluate({"q": {"a": 1.0, "b": 1.0, "c": 1.0}}, {"q": {"b": 1}})
    assert report.per_query["q"]["MRR@10"] == 0.5


def test_list_order_is_kept_even_against_scores():
    report = evaluate({"q": [("a", 0.1), ("b", 0.9)]}, {"q": {"a": 1}})
    assert report.per_query["q"]["MRR@10"] == 1.0


def test_mrr_is_cut_at_ten():
    ranked = [(f"n{i}", 1.0) for i in range(10)] + [("a", 0.5)]
    report = evaluate({"q": ranked}, {"q": {"a": 1}}, ks=(10, 20))
    assert report.per_query["q"]["MRR@10"] == 0
    assert report.per_query["q"]["Hit@10"] == 0
    assert report.per_query["q"]["Hit@20"] == 1


def test_unanswered_counts_zero_and_unjudgeable_is_skipped():
    qrels = {"q1": {"a": 1}, "q2": {"a": 1}, "q3": {"a": 0, "b": -1}, "q4": {"a": 1}}
    run = {"q1": [("a", 1.0)], "q3": [("a", 1.0)], "q4": [], "other": [("a", 1.0)]}
    report = evaluate(run, qrels)
    assert report.skipped == ["q3"]
    assert report.missing == ["q2", "q4"]
    assert report.num_queries == 3
    assert report.mean["Hit@1"] == pytest.approx(1 / 3)
    assert report.per_query["q2"]["nDCG@10"] == 0


def test_negative_grades_give_no_gain():
    report = evaluate({"q": [("neg", 1.0), ("a", 0.5)]}, {"q": {"neg": -1, "a": 2}})
    assert report.per_query["q"]["nDCG@10"] == pytest.approx(1 / math.log2(3))


def test_metric_keys():
    report = evaluate({"q": [("a", 1.0)]}, {"q": {"a": 1}}, ks=(5, 1))
    assert list(report.mean) == [
        "Recall@1",
        "Recall@5",
        "Hit@1",
        "Hit@5",
        "MRR@10",
        "nDCG@1",
        "nDCG@5",
    ]


def test_bad_input():
    with pytest.raises(ValueError, match="twice"):
        evaluate({"q": [("a", 1.0), ("a", 0.5)]}, {"q": {"a": 1}})
    with pytest.raises(ValueError, match="positive"):
        evaluate({}, {"q": {"a": 1}}, ks=(0,))
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate({}, {"q": {"a": 0}})
    with pytest.raises(ValueError, match="NaN"):
        trec_order({"a": float("nan")})


def test_collapse_to_docs_keeps_best_rank():
    passages = [("d2", 0.9), ("d1", 0.8), ("d2", 0.7), ("d3", 0.6), ("d1", 0.5)]
    assert collapse_to_docs(passages) == [("d2", 0.9), ("d1", 0.8), ("d3", 0.6)]
    assert collapse_to_docs([]) == []


# --------------------------------------------------------------------------- answer strings


def test_answer_hit():
    assert answer_hit("光荣和 ω-force\n开发", ["ω-Force 开发"])
    assert answer_hit("由 Koei Tecmo 发行", ["koeitecmo"])
    assert answer_hit("二〇一八年　三月", ["二〇一八年三月"])  # ideographic space
    assert not answer_hit("北京", ["上海", "南京"])
    assert not answer_hit("任何文本", [" ", ""])
    assert not answer_hit("text", [])
    assert not answer_hit("", ["北京"])


def test_first_answer_rank():
    passages = ["上海晴天。", "北京 今天下雨。", "北京又下雨。"]
    assert first_answer_rank(passages, ["北京今天"]) == 2
    assert first_answer_rank(passages, ["广州"]) is None
    assert first_answer_rank([], ["北京"]) is None


@pytest.mark.parametrize(
    ("rank", "hits", "mrr"),
    [(1, [1, 1, 1], 1.0), (2, [0, 1, 1], 0.5), (4, [0, 0, 1], 0.25), (11, [0, 0, 0], 0.0)],
)
def test_rank_metrics(rank: int, hits: list[int], mrr: float):
    assert rank_metrics(rank, (1, 3, 10)) == {
        "Hit@1": hits[0],
        "Hit@3": hits[1],
        "Hit@10": hits[2],
        "MRR@10": mrr,
    }
    assert rank_metrics(None, (1,)) == {"Hit@1": 0.0, "MRR@10": 0.0}


def test_answer_set_uses_the_same_hit_and_mrr_as_qrels():
    """Passages as documents, answer-bearing ones as relevant: the two paths agree."""
    passages = ["无关。", "也无关。", "答案是北京。", "北京。"]
    rank = first_answer_rank(passages, ["北京"])
    ranked = [(f"p{i}", 1.0) for i in range(len(passages))]
    qrels = {"q": {f"p{i}": int(answer_hit(t, ["北京"])) for i, t in enumerate(passages)}}
    report = evaluate({"q": ranked}, qrels, KS)
    values = score_answers(rank, "北京", ["北京"], KS)
    for name in answer_metric_names(KS):
        if name in report.mean:
            assert values[name] == report.mean[name], name
    assert values["AnswerHit"] == 1.0
    assert score_answers(rank, "", ["北京"], KS)["AnswerHit"] == 0.0


def test_answer_metric_names_and_means():
    assert answer_metric_names((5, 1)) == ["Hit@1", "Hit@5", "MRR@10", "AnswerHit"]
    rows = [score_answers(1, "北京", ["北京"], (1, 5)), score_answers(None, "", ["北京"], (1, 5))]
    assert mean_of(rows, answer_metric_names((1, 5))) == {
        "Hit@1": 0.5,
        "Hit@5": 0.5,
        "MRR@10": 0.5,
        "AnswerHit": 0.5,
    }
    with pytest.raises(ValueError, match="no queries"):
        mean_of([], ["Hit@1"])


@pytest.mark.parametrize("p", [0, 1, 25, 50, 66.6, 90, 95, 99, 100])
def test_percentile_matches_numpy(p: float):
    rng = random.Random(3)
    values = [rng.expovariate(1 / 40) for _ in range(101)]
    assert percentile(values, p) == pytest.approx(float(np.percentile(values, p)), rel=1e-12)
    assert percentile([4.0, 1.0], p) == pytest.approx(float(np.percentile([4.0, 1.0], p)))


def test_percentile_bad_input():
    assert percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


# --------------------------------------------------------------------------- run files


def test_write_run_format(tmp_path: Path):
    path = tmp_path / "run.txt"
    write_run(path, {"q1": {"b": 1.0, "a": 1.0, "c": 2.5}, "q0": [("x", 0.1234567)]}, "tag")
    assert path.read_text().splitlines() == [
        "q1 Q0 c 1 2.500000 tag",
        "q1 Q0 b 2 1.000000 tag",
        "q1 Q0 a 3 1.000000 tag",
        "q0 Q0 x 1 0.123457 tag",
    ]
    assert read_run(path) == {
        "q1": [("c", 2.5), ("b", 1.0), ("a", 1.0)],
        "q0": [("x", 0.123457)],
    }


def test_read_run_orders_by_rank_column(tmp_path: Path):
    path = tmp_path / "run.txt"
    path.write_text("q Q0 b 2 5.0 t\nq Q0 a 1 1.0 t\n\n")
    assert read_run(path) == {"q": [("a", 1.0), ("b", 5.0)]}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("q Q0 a 1 1.0 t\nq Q0 b 2 1.0\n", "line 2: expected 6 fields"),
        ("q Q0 a one 1.0 t\n", "line 1: rank 'one' is not an integer"),
        ("q Q0 a 1 high t\n", "line 1: score 'high' is not a number"),
        ("q Q0 a 1 nan t\n", "not a finite number"),
        ("q Q0 a 1 1.0 t\nq Q0 a 2 0.5 t\n", "line 2: document 'a' listed twice"),
    ],
)
def test_read_run_errors(tmp_path: Path, content: str, message: str):
    path = tmp_path / "run.txt"
    path.write_text(content)
    with pytest.raises(RunFileError, match=message):
        read_run(path)


def test_read_run_missing_file(tmp_path: Path):
    with pytest.raises(RunFileError, match="does not exist"):
        read_run(tmp_path / "nope.trec")


def test_write_run_rejects_unwritable_values(tmp_path: Path):
    with pytest.raises(ValueError, match="white space"):
        write_run(tmp_path / "r", {"q 1": [("a", 1.0)]}, "t")
    with pytest.raises(ValueError, match="white space"):
        write_run(tmp_path / "r", {"q": [("a", 1.0)]}, "my tag")
    with pytest.raises(ValueError, match="twice"):
        write_run(tmp_path / "r", {"q": [("a", 1.0), ("a", 0.5)]}, "t")
    assert not (tmp_path / "r").exists()
