"""``python -m eval calibrate``: choose one answer threshold on one set, report it on others.

The service answers when ``qa_service.answer.confidence`` reaches 0.5, from three figures per
question (``qa_service.answer.Evidence``: the best article's dense lead, the best passage's
margin over the background, the answer article's share of the question's words) and four
thresholds per model (``qa_service.calibration``; the share has one threshold for Chinese
and one for English questions). This command computes the figures once per question, then
tries every value of one threshold that changes a decision on the
choosing set (the midpoints between its observed figures), the others held at the model's
current values.

Chosen, as the goal reads (at least 80% of unanswerable questions get no answer, as few
answerable ones as possible go without): among the values that leave at least
``--min-abstained`` of the choosing set's unanswerable questions unanswered, the one that
answers the most answerable questions, then the one that abstains most; where several
values tie, the middle one in value of the widest tied run (the widest room on either
side: ``middle_of_ties``). Every other set is reported
with the same values, never used to choose.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm import tqdm

from eval.datasets import DatasetError, load_questions
from qa_service.answer import confidence
from qa_service.calibration import THRESHOLDS, Calibration, for_model

# Which Evidence figure each threshold is compared with, and on which questions (None: all;
# True: English ones; False: the others).
FIGURE = {
    "min_lead": "lead",
    "min_margin": "margin",
    "min_support": "support",
    "min_english_support": "support",
}
ENGLISH = {"min_support": False, "min_english_support": True}
DEPTH = 10  # passages asked for, as `eval run` does


@dataclass(frozen=True)
class Point:
    """One question's evidence; all None where nothing could answer it."""

    answerable: bool
    lead: float | None
    margin: float | None
    support: float | None
    english: bool = False


def collect(engine, questions, progress: bool = True, name: str = "") -> list[Point]:
    """Each question's evidence, as ``/ask`` computes it (hybrid)."""
    points = []
    for q in tqdm(questions, desc=f"{name} evidence", unit="q", disable=not progress):
        vector = engine.retriever.embed_query(q.question)
        found = engine.retriever.search(
            q.question, DEPTH, "hybrid", vector=vector, dense_scores=True
        )
        ev = engine.extractor.evidence(
            q.question, vector, found.analysis, engine.index, list(found.hits)
        )
        if ev is None:
            points.append(Point(q.answerable, None, None, None))
        else:
            points.append(Point(q.answerable, ev.lead, ev.margin, ev.support, ev.english))
    return points


def rates(points: list[Point], cal: Calibration, min_confidence: float) -> dict[str, float | None]:
    """Answered (share of answerable questions answered) and Abstained (share of unanswerable
    ones not answered); None where the set has none of that kind."""

    def answers(p: Point) -> bool:
        if p.support is None:
            return False
        return confidence(p.lead, p.margin, p.support, cal, p.english) >= min_confidence

    yes = [answers(p) for p in points if p.answerable]
    no = [not answers(p) for p in points if not p.answerable]
    return {
        "Answered": sum(yes) / len(yes) if yes else None,
        "Abstained": sum(no) / len(no) if no else None,
    }


MIN_ABSTAINED = 0.8  # the goal: at least this share of unanswerable questions get no answer


def preference(r: dict[str, float | None], min_abstained: float) -> tuple:
    """Sort key, larger is better: values that leave at least ``min_abstained`` of the
    unanswerable questions unanswered come first, the most answered among them, then the
    most abstained; where none does, the most abstained, then the most answered."""
    answered, abstained = r["Answered"], r["Abstained"]
    if abstained >= min_abstained:
        return (1, answered, abstained)
    return (0, abstained, answered)


def candidates(points: list[Point], threshold: str) -> list[float]:
    """Every value of ``threshold`` that decides differently on these points: the midpoints
    between consecutive distinct figures of the questions it applies to (the support
    thresholds: Chinese or English ones), and one beyond each end."""
    english = ENGLISH.get(threshold)
    values = sorted(
        {
            v
            for p in points
            if (v := getattr(p, FIGURE[threshold])) is not None
            and (english is None or p.english == english)
        }
    )
    if not values:
        return []
    mids = [round((a + b) / 2, 4) for a, b in zip(values, values[1:], strict=False)]
    ends = [round(values[0] - 0.001, 4), round(values[-1] + 0.001, 4)]
    return sorted({v for v in (*ends, *mids) if v > 0})  # a threshold of 0 means nothing


def choose(
    on: list[Point],
    threshold: str,
    current: Calibration,
    min_confidence: float,
    min_abstained: float = MIN_ABSTAINED,
) -> tuple[float, list[tuple[float, dict]]]:
    """The chosen value and every candidate's rates on the choosing set."""
    scored = []
    for value in candidates(on, threshold):
        r = rates(on, replace(current, **{threshold: value}), min_confidence)
        if r["Answered"] is None or r["Abstained"] is None:
            raise DatasetError(
                "the choosing set needs answerable and unanswerable questions "
                '("answers": []); give both with --on'
            )
        scored.append((value, r))
    if not scored:
        raise DatasetError("no question of the choosing set could be answered at all")
    best = max(preference(r, min_abstained) for _, r in scored)
    return middle_of_ties([(v, preference(r, min_abstained) == best) for v, r in scored]), scored


def middle_of_ties(candidates: list[tuple[float, bool]]) -> float:
    """The tied value with the widest room on either side: of the widest run of consecutive
    tied candidates (``(value, tied)`` in increasing value), the one nearest its middle in
    value. The middle in count would sit where the figures crowd: gemma's support ties from
    0.51 to 0.87 on the CRUD part, and the middle candidate was 0.856, next to one end."""
    runs: list[list[float]] = [[]]
    for value, tied in candidates:
        if tied:
            runs[-1].append(value)
        elif runs[-1]:
            runs.append([])
    widest = max((r for r in runs if r), key=lambda r: r[-1] - r[0])
    centre = (widest[0] + widest[-1]) / 2
    return min(widest, key=lambda v: abs(v - centre))


def cmd_calibrate(args, answers_engine) -> int:
    """``answers_engine(spec, questions, tmp)``: the engine a --dataset/--on spec names
    (``eval.cli._answers_engine``)."""
    progress = not args.quiet
    sets: list[tuple[str, bool, list[Point]]] = []  # (name, choosing, points)
    models = set()
    min_confidence = None
    with tempfile.TemporaryDirectory() as tmp:
        for choosing, specs in ((True, args.on), (False, args.dataset or [])):
            for spec in specs:
                questions = load_questions(spec.path)
                engine = answers_engine(spec, questions, Path(tmp))
                models.add(engine.index.manifest.settings.model_name)
                min_confidence = engine.extractor.min_confidence
                sets.append((spec.name, choosing, collect(engine, questions, progress, spec.name)))
    if len(models) != 1:
        raise DatasetError(f"every index must be built with one model, not {sorted(models)}")
    model = models.pop()
    current = for_model(model)
    on = [p for _, choosing, points in sets if choosing for p in points]
    value, scored = choose(on, args.threshold, current, min_confidence, args.min_abstained)
    chosen = replace(current, **{args.threshold: value})

    print(f"\nmodel {model}: {args.threshold}, chosen on {' + '.join(n for n, c, _ in sets if c)}")
    header = f"{args.threshold:>12}  {'on: answered':>12}  {'abstained':>9}"
    header += "".join(f"  {name[:18]:>18}" for name, _, _ in sets)
    print(header + "   (Answered / Abstained)")
    rows, shown = [], None
    for v, on_rates in scored:
        cal = replace(current, **{args.threshold: v})
        cells = {name: rates(points, cal, min_confidence) for name, _, points in sets}
        rows.append({"value": v, "on": on_rates, "sets": cells})
        mark = "  <- chosen" if v == value else ""
        if cells == shown and not mark:
            continue  # the same decisions as the row above
        shown = cells
        line = "".join(f"  {_pair(r):>18}" for r in cells.values())
        head = f"{v:>12.4f}  {on_rates['Answered']:>12.3f}  {on_rates['Abstained']:>9.3f}"
        print(f"{head}{line}{mark}")
    print(
        f"\nchosen {args.threshold} = {value} (current {getattr(current, args.threshold)}); "
        f"qa_service/calibration.py: {model!r}: {chosen}"
    )
    if args.report:
        report = {
            "model": model,
            "threshold": args.threshold,
            "chosen": value,
            "calibration": {t: getattr(chosen, t) for t in THRESHOLDS},
            "candidates": rows,
        }
        args.report.write_text(json.dumps(report, ensure_ascii=False, indent=2))
        print(f"report written to {args.report}")
    return 0


def _pair(r: dict[str, float | None]) -> str:
    def cell(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    return f"{cell(r['Answered'])} / {cell(r['Abstained'])}"
