"""HTTP latency and throughput of /ask and /search on loopback, against GET /healthz."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

from eval.bench.common import REPO, markdown_table, running_server
from eval.datasets import load_answer_set
from eval.metrics import percentile


def load_run(
    base: str, method: str, path: str, bodies: list[dict | None], concurrency: int
) -> dict:
    """Send every body once (a bounded run), ``concurrency`` requests in flight."""
    import httpx

    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    queue = list(reversed(bodies))

    def worker() -> None:
        nonlocal errors
        with httpx.Client(base_url=base, timeout=60) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                start = time.perf_counter()
                if body is None:
                    r = client.request(method, path)
                else:
                    r = client.request(method, path, json=body)
                elapsed = (time.perf_counter() - start) * 1000
                with lock:
                    latencies.append(elapsed)
                    errors += r.status_code >= 400

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return {
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "rps": round(len(latencies) / wall, 1),
    }


def describe_code(code: Path | None) -> str:
    """A checkout as ``<short commit>`` (``+`` when it has uncommitted changes)."""
    folder = code or REPO
    try:
        rev = subprocess.run(
            ["git", "describe", "--always", "--dirty=+"],
            cwd=folder,
            capture_output=True,
            text=True,
            check=True,
        )
        return rev.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(folder)


def bench_serve(
    index: Path,
    concurrencies: list[int],
    rounds: int,
    dtype: str,
    codes: list[Path | None] | None = None,
) -> list[dict]:
    """Each row is a bounded run: every seed question sent once per round.

    Questions carry a suffix unique to the endpoint, concurrency and round, so that the
    query-embedding cache never answers for the model. ``codes``: several checkouts of the
    service, measured one after the other in the same run (before/after)."""
    questions = [q.question for q in load_answer_set(REPO / "eval" / "data" / "seed_qa.jsonl")]
    rows = []
    for code in codes or [None]:
        label = describe_code(code)
        with running_server(index, {"NEWSQA_MODEL_DTYPE": dtype}, code) as base:
            load_run(base, "GET", "/healthz", [None] * 50, 1)  # warm the connection path
            for c in concurrencies:
                n = len(questions) * rounds
                base_row = load_run(base, "GET", "/healthz", [None] * n, c)
                for endpoint, key in (("/ask", "question"), ("/search", "query")):
                    bodies = [
                        {key: f"{q} ({endpoint[1]}{c}.{i})"}
                        for i in range(rounds)
                        for q in questions
                    ]
                    row = {"code": label, "endpoint": endpoint, "concurrency": c}
                    row |= load_run(base, "POST", endpoint, bodies, c)
                    row |= {
                        "healthz_p50_ms": base_row["p50_ms"],
                        "ratio_p50_vs_healthz": round(
                            row["p50_ms"] / max(base_row["p50_ms"], 0.01), 1
                        ),
                    }
                    rows.append(row)
                    print(json.dumps(row, ensure_ascii=False), flush=True)
    print(serve_table(rows), flush=True)
    return rows


SERVE_COLUMNS = [
    ("code", "code"),
    ("endpoint", "endpoint"),
    ("concurrency", "concurrency"),
    ("requests", "requests"),
    ("errors", "errors"),
    ("p50 ms", "p50_ms"),
    ("p95 ms", "p95_ms"),
    ("p99 ms", "p99_ms"),
    ("req/s", "rps"),
    ("healthz p50 ms", "healthz_p50_ms"),
    ("p50 / healthz", "ratio_p50_vs_healthz"),
]


def serve_table(rows: list[dict]) -> str:
    columns = [header for header, _ in SERVE_COLUMNS]
    cells = [[r[key] for _, key in SERVE_COLUMNS] for r in rows]
    return markdown_table(columns, cells, right_from=2)
