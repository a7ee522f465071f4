"""``python -m eval calibrate``: one answer threshold chosen on one set, reported on others.

The choosing rule is checked on made-up evidence (no model); the command itself runs on the
seed index with the real model."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from eval.calibrate import Point, candidates, choose, middle_of_ties, rates
from eval.cli import main
from eval.datasets import DatasetError
from qa_service.calibration import CALIBRATIONS, DEFAULT_MODEL
from tests.conftest import REPO

CAL = CALIBRATIONS[DEFAULT_MODEL]
SEED_QA = REPO / "eval" / "data" / "seed_qa.jsonl"
SEED_UNANSWERABLE = REPO / "eval" / "data" / "seed_unanswerable.jsonl"


def point(answerable: bool, lead: float) -> Point:
    # Close enough for the lead to count, too few words for support alone to answer.
    return Point(answerable, lead, CAL.min_margin + 0.05, 0.0)


def test_candidates_are_the_values_between_observed_figures():
    pts = [point(True, 0.03), point(False, 0.01), point(True, 0.03), point(False, 0.02)]
    assert candidates(pts, "min_lead") == [0.009, 0.015, 0.025, 0.031]


def test_the_chosen_lead_separates_the_two_kinds_and_sits_in_the_middle_of_the_gap():
    pts = [point(True, v) for v in (0.05, 0.06, 0.08)] + [point(False, v) for v in (0.01, 0.02)]
    value, scored = choose(pts, "min_lead", CAL, 0.5)
    assert value == pytest.approx(0.035)  # between the best unanswerable and worst answerable
    r = rates(pts, replace(CAL, min_lead=value), 0.5)
    assert r == {"Answered": 1.0, "Abstained": 1.0}


def test_ties_are_broken_in_the_middle_of_the_widest_run_in_value_not_in_count():
    """Figures crowding one end of a tied range (gemma's support, 0.51 to 0.87) must not
    pull the threshold there: the middle in value, of the widest run of tied values."""
    crowded = [(0.1, False), (0.5, True), (0.8, True), (0.82, True), (0.84, True)]
    crowded += [(0.86, True), (0.9, False)]
    assert middle_of_ties(crowded) == 0.8  # nearest 0.68; the middle in count was 0.82
    two_runs = [(0.1, True), (0.12, True), (0.2, False), (0.3, True), (0.5, True), (0.7, True)]
    assert middle_of_ties(two_runs) == 0.5


def test_most_answers_while_four_in_five_unanswerable_questions_get_none():
    """Two unanswerable questions in ten may slip through if that answers more answerable
    ones; a third may not."""
    pts = [point(True, v) for v in (0.012, 0.03, 0.04, 0.05)]
    pts += [point(False, v / 1000) for v in range(1, 9)]
    pts += [point(False, 0.02), point(False, 0.035)]
    value, _ = choose(pts, "min_lead", CAL, 0.5)
    assert rates(pts, replace(CAL, min_lead=value), 0.5) == {"Answered": 1.0, "Abstained": 0.8}
    stricter, _ = choose(pts, "min_lead", CAL, 0.5, min_abstained=0.9)
    r = rates(pts, replace(CAL, min_lead=stricter), 0.5)
    assert r == {"Answered": 0.75, "Abstained": 0.9}


def test_each_support_threshold_is_chosen_on_its_own_language():
    """English questions' support is read through the dictionary and has its own threshold:
    only their figures are candidates for it, and only the others' for min_support."""
    pts = [Point(True, None, None, 0.7), Point(False, None, None, 0.3)]
    pts += [Point(True, None, None, 0.4, english=True), Point(False, None, None, 0.2, english=True)]
    assert candidates(pts, "min_support") == [0.299, 0.5, 0.701]
    assert candidates(pts, "min_english_support") == [0.199, 0.3, 0.401]
    value, _ = choose(pts, "min_english_support", CAL, 0.5)
    assert value == pytest.approx(0.3)
    r = rates(pts, replace(CAL, min_support=0.5, min_english_support=value), 0.5)
    assert r == {"Answered": 1.0, "Abstained": 1.0}


def test_the_choosing_set_needs_both_kinds_of_question():
    with pytest.raises(DatasetError, match="answerable and unanswerable"):
        choose([point(True, 0.05), point(True, 0.06)], "min_lead", CAL, 0.5)


def test_a_question_nothing_could_answer_is_never_answered():
    r = rates([Point(True, None, None, None), point(True, 1.0)], CAL, 0.5)
    assert r == {"Answered": 0.5, "Abstained": None}


@pytest.mark.model
def test_calibrate_on_the_seed_pages(seed_index, tmp_path, capsys):
    report = tmp_path / "cal.json"
    argv = ["calibrate", "-q", "--threshold", "min_margin", "--report", str(report)]
    argv += ["--on", f"{SEED_QA}={seed_index}", "--on", f"{SEED_UNANSWERABLE}={seed_index}"]
    assert main(argv) == 0
    out = json.loads(report.read_text(encoding="utf-8"))
    assert out["model"] == DEFAULT_MODEL and out["threshold"] == "min_margin"
    chosen = next(c for c in out["candidates"] if c["value"] == out["chosen"])
    on = [chosen["sets"]["seed_qa"]["Answered"], chosen["sets"]["seed_unanswerable"]["Abstained"]]
    # The seed pages separate: most answerable questions answered, most traps not.
    assert on[0] >= 0.9 and on[1] >= 0.75, chosen
    assert "<- chosen" in capsys.readouterr().out


def test_calibrate_refuses_a_choosing_set_of_one_kind(seed_index, tmp_path, capsys):
    argv = ["calibrate", "-q", "--threshold", "min_lead", "--on", f"{SEED_QA}={seed_index}"]
    assert main(argv) == 2
    assert "answerable and unanswerable" in capsys.readouterr().err
