"""``python -m eval run`` over several answer sets at once, each against its own source,
with unanswerable questions (``"answers": []``) scored as abstention."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.cli import DatasetSpec, _dataset, main
from tests.conftest import REPO

SEED_QA = REPO / "eval" / "data" / "seed_qa.jsonl"


def test_dataset_spec_names_its_source() -> None:
    assert _dataset("qa.jsonl") == DatasetSpec(Path("qa.jsonl"))
    assert _dataset("qa.jsonl=corpus.jsonl.gz") == DatasetSpec(
        Path("qa.jsonl"), Path("corpus.jsonl.gz")
    )
    with pytest.raises(Exception, match="nothing after"):
        _dataset("qa.jsonl=")


def test_run_several_answer_sets_with_unanswerable_questions(seed_index, tmp_path) -> None:
    traps = tmp_path / "traps.jsonl"
    traps.write_text(
        "\n".join(
            json.dumps({"id": f"t{i}", "question": q, "answers": []}, ensure_ascii=False)
            for i, q in enumerate(["火星基地的第一任站长是谁?", "Who won the 2030 World Cup?"])
        ),
        encoding="utf-8",
    )
    report = tmp_path / "report.json"
    argv = ["run", "-q", "--limit", "4", "--report", str(report)]
    argv += ["--dataset", f"{SEED_QA}={seed_index}", "--dataset", f"{traps}={seed_index}"]
    assert main(argv) == 0
    seed, trap = json.loads(report.read_text(encoding="utf-8"))
    assert seed["dataset"] == "seed_qa" and seed["queries"] == 4
    assert {"Hit@5", "AnswerHit", "Unanswered"} <= set(seed["metrics"])
    assert "Abstained" not in seed["metrics"]
    assert set(trap["metrics"]) == {"Abstained"} and trap["queries"] == 2
    assert trap["by_kind"]["unanswerable"]["n"] == 2
    assert len(seed["per_question"]) == 4 and "confidence" in seed["per_question"][0]
