"""Where an /ask request spends its time: ``Engine.ask`` (what the route calls) over the seed
questions, first timed (the per-stage timings each answer reports), then again under
pyinstrument for the call tree."""

from __future__ import annotations

import time
from pathlib import Path

from eval.bench.common import REPO
from eval.datasets import load_answer_set
from eval.metrics import percentile


def bench_profile(index: Path, limit: int | None, dtype: str, html: Path | None) -> dict:
    from pyinstrument import Profiler

    from indexer.settings import get_settings
    from qa_service.engine import open_engine

    settings = get_settings().model_copy(update={"model_dtype": dtype})
    engine = open_engine(index, settings)
    questions = [q.question for q in load_answer_set(REPO / "eval" / "data" / "seed_qa.jsonl")]
    questions = questions[:limit] if limit else questions
    engine.ask("预热：北碚的规划面积是多少？", 5, "hybrid")
    totals: list[float] = []
    stages: dict[str, list[float]] = {}
    for i, q in enumerate(questions):  # timed without the profiler, which slows torch down
        start = time.perf_counter()
        result = engine.ask(f"{q} (t{i})", 5, "hybrid")  # suffix: the query cache stays out
        totals.append((time.perf_counter() - start) * 1000)
        for name, ms in result.timings.items():
            stages.setdefault(name, []).append(ms)
    profiler = Profiler(interval=0.001)
    profiler.start()
    for i, q in enumerate(questions):
        engine.ask(f"{q} (p{i})", 5, "hybrid")
    profiler.stop()
    summary = {
        name: {
            "p50_ms": round(percentile(values, 50), 2),
            "p95_ms": round(percentile(values, 95), 2),
            "mean_ms": round(sum(values) / len(values), 2),
        }
        for name, values in [("ask", totals), *stages.items()]
    }
    print(f"{len(questions)} questions, index {index}, model dtype {engine.embedder.dtype}")
    print(f"{'stage':14} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8}")
    for name, row in summary.items():
        print(f"{name:14} {row['p50_ms']:>8} {row['p95_ms']:>8} {row['mean_ms']:>8}")
    print(profiler.output_text(unicode=True, color=False))
    if html:
        html.write_text(profiler.output_html(), encoding="utf-8")
        print(f"profile written to {html}")
    return summary
