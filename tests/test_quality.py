"""The quality gate: CI fails when retrieval or answers drop below the agreed thresholds.

Real model, real FAISS, real BM25. Thresholds from the issues: hybrid Hit@5 >= 0.95 on the
seed gold set; Recall@5 >= 0.95 on a fixed 500-query subset of CMRC 2018 dev; on the CRUD
news questions (../shared/eval-data/crud_qa_dev.jsonl) passages, answers and abstention a
little below what BENCHMARKS.md measures, over a CI-sized part of the 5,000-article corpus
(the questions' articles and 1,500 others chosen by hash, ``eval.corpus``), and the seed
pages' unanswerable questions (eval/data/seed_unanswerable.jsonl) left unanswered.

The CMRC set lives in ../shared beside the checkout: without it this test fails in CI and
skips elsewhere. Its index is cached outside the repository (EVAL_CACHE), keyed by corpus,
index settings and dtype, so later runs skip the build."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from eval import corpus, runner
from eval.datasets import load_answer_set, load_beir
from tests.conftest import REPO, SHARED
from tests.helpers.ci import require_shared

SEED_QA = REPO / "eval" / "data" / "seed_qa.jsonl"
SEED_UNANSWERABLE = REPO / "eval" / "data" / "seed_unanswerable.jsonl"
CRUD_QA = SHARED / "eval-data" / "crud_qa_dev.jsonl"
CRUD_CORPUS = SHARED / "corpora" / "crud_news_5k.jsonl.gz"
CRUD_OTHERS = 1500  # articles besides the questions' own: the distractors
# A little below the figures measured on that part (BENCHMARKS.md, issue 13).
# Measured (BENCHMARKS.md, issue 13, round 6): Hit@5 0.978, Hit@1 0.900, AnswerHit 0.822
# (English 0.70), abstained 1.0, unanswered 0.011; seed unanswerable abstained 0.833.
CRUD_MIN = {"Hit@5": 0.96, "Hit@1": 0.86, "AnswerHit": 0.79, "english AnswerHit": 0.55}
CRUD_MIN_ABSTAINED = 0.8
CRUD_MAX_UNANSWERED = 0.05
SEED_MIN_ABSTAINED = 0.75
CMRC = SHARED / "eval-data" / "cmrc2018_dev"
XDG_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
EVAL_CACHE = XDG_CACHE / "newsqa" / "eval-cache"


@pytest.fixture(scope="module")
def seed_results(engine):
    questions = load_answer_set(SEED_QA)
    return {
        mode: runner.run_answers(engine, questions, mode, [1, 3, 5, 10], "seed_qa", False)
        for mode in ("hybrid", "dense", "bm25")
    }


def test_seed_gold_set_has_enough_questions_of_every_kind():
    questions = load_answer_set(SEED_QA)
    assert len(questions) >= 60
    kinds = {q.kind for q in questions}
    assert {"lookup", "paraphrase", "number", "name", "cleaned", "english"} <= kinds


def test_hybrid_hit_at_5_on_seed_set(seed_results):
    hybrid = seed_results["hybrid"]
    assert hybrid.metrics["Hit@5"] >= 0.95, hybrid.missed


def test_answer_bearing_passage_first_on_seed_set(seed_results):
    """Measured 0.913 on a fresh seed index (BENCHMARKS.md, issue 13, round 6): /ask lists
    the answer's passage first."""
    assert seed_results["hybrid"].metrics["Hit@1"] >= 0.89, seed_results["hybrid"].by_kind


def test_hybrid_beats_both_single_modes_on_seed_set(seed_results):
    h, d, b = (seed_results[m].metrics for m in ("hybrid", "dense", "bm25"))
    assert h["MRR@10"] > d["MRR@10"] and h["MRR@10"] > b["MRR@10"]
    assert h["Hit@5"] >= max(d["Hit@5"], b["Hit@5"])


def test_answers_contain_the_gold_answer_often(seed_results):
    """Measured 0.861 answer-contains, 0.009 unanswered on a fresh seed index (BENCHMARKS.md,
    issue 13, round 6: English questions' facts next to their words); the issue's goal for
    unanswered is 0.05."""
    metrics = seed_results["hybrid"].metrics
    assert metrics["AnswerHit"] >= 0.84, seed_results["hybrid"].by_kind
    assert metrics["Unanswered"] <= 0.05, seed_results["hybrid"].by_kind


def test_cmrc_recall_at_5_on_fixed_subset(indexer_obj, engine, settings):
    from qa_service.engine import open_engine

    dataset = load_beir(require_shared(CMRC))
    path = runner.beir_index(dataset, indexer_obj, EVAL_CACHE, progress=False)
    cmrc_engine = open_engine(Path(path), settings, engine.embedder)
    subset = runner.fixed_subset(dataset, 500)
    assert len(subset) == 500
    result, run = runner.run_beir(cmrc_engine, dataset, "hybrid", [1, 5, 10], subset, False)
    assert result.metrics["Recall@5"] >= 0.95, result.metrics
    assert all(len(docs) >= min(100, len(dataset.corpus)) for docs in run.values())


def test_seed_unanswerable_questions_get_no_answer(engine):
    questions = load_answer_set(SEED_UNANSWERABLE)
    result = runner.run_answers(engine, questions, "hybrid", [1, 5], "seed_unanswerable", False)
    assert result.metrics["Abstained"] >= SEED_MIN_ABSTAINED, result.per_question


@pytest.fixture(scope="module")
def crud_result(indexer_obj, engine, settings):
    """The CRUD questions over a CI-sized part of their corpus, built once (cached)."""
    from qa_service.engine import open_engine

    questions = load_answer_set(require_shared(CRUD_QA))
    wanted = {q.extra["article"] for q in questions if q.extra.get("article")}
    path = corpus.corpus_index(
        require_shared(CRUD_CORPUS), indexer_obj, EVAL_CACHE, wanted, CRUD_OTHERS, False
    )
    crud_engine = open_engine(path, settings, engine.embedder)
    return runner.run_answers(crud_engine, questions, "hybrid", [1, 5, 10], "crud_qa_dev", False)


def test_crud_passages(crud_result):
    metrics = crud_result.metrics
    assert metrics["Hit@5"] >= CRUD_MIN["Hit@5"], crud_result.missed
    assert metrics["Hit@1"] >= CRUD_MIN["Hit@1"], metrics


def test_crud_answers(crud_result):
    metrics = crud_result.metrics
    assert metrics["AnswerHit"] >= CRUD_MIN["AnswerHit"], crud_result.by_kind
    assert crud_result.by_kind["english"]["AnswerHit"] >= CRUD_MIN["english AnswerHit"]


def test_crud_abstention(crud_result):
    """Unanswerable questions get no answer; answerable ones nearly always get one."""
    metrics = crud_result.metrics
    assert metrics["Abstained"] >= CRUD_MIN_ABSTAINED, crud_result.by_kind
    assert metrics["Unanswered"] <= CRUD_MAX_UNANSWERED, crud_result.by_kind
