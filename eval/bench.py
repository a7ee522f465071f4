"""Benchmarks that print figures (never timed tests): ``python -m eval bench ...``.

Every benchmark measures a baseline in the same run and reports a ratio, because the
machines are shared and noisy:

* ``serve``: HTTP latency and throughput of /ask and /search on loopback at several
  concurrencies, against GET /healthz (the bare HTTP round trip) in the same run.
* ``index``: passages per second of the whole indexing pipeline against the bare
  ``model.encode_document`` on the same passages, in float32 and bfloat16.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from eval.datasets import load_answer_set
from eval.metrics import percentile

REPO = Path(__file__).resolve().parent.parent


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(index: Path, extra_env: dict | None = None):
    """The real service in a subprocess on a free loopback port."""
    import httpx

    port = _free_port()
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"} | (extra_env or {})
    cmd = [sys.executable, "-m", "qa_service", "serve", "--index", str(index), "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            raise RuntimeError("the server did not become ready in 180 s")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def load_run(
    base: str, method: str, path: str, bodies: list[dict | None], concurrency: int
) -> dict:
    """Send every body once (a bounded run), ``concurrency`` requests in flight."""
    import httpx

    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    queue = list(enumerate(bodies))

    def worker() -> None:
        nonlocal errors
        with httpx.Client(base_url=base, timeout=60) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    _, body = queue.pop()
                start = time.perf_counter()
                r = (
                    client.request(method, path, json=body)
                    if body
                    else client.request(method, path)
                )
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


def bench_serve(index: Path, concurrencies: list[int], rounds: int, dtype: str) -> list[dict]:
    questions = [q.question for q in load_answer_set(REPO / "eval" / "data" / "seed_qa.jsonl")]
    rows = []
    with running_server(index, {"NEWSQA_MODEL_DTYPE": dtype}) as base:
        load_run(base, "GET", "/healthz", [None] * 50, 1)  # warm the connection path
        for c in concurrencies:
            n = len(questions) * rounds
            base_row = load_run(base, "GET", "/healthz", [None] * n, c)
            for endpoint, key in (("/ask", "question"), ("/search", "query")):
                # distinct questions: the query cache must not flatter the figures
                bodies = [{key: f"{q} ({c}.{i})"} for i in range(rounds) for q in questions]
                row = load_run(base, "POST", endpoint, bodies, c)
                row |= {
                    "endpoint": endpoint,
                    "concurrency": c,
                    "healthz_p50_ms": base_row["p50_ms"],
                    "ratio_p50_vs_healthz": round(row["p50_ms"] / max(base_row["p50_ms"], 0.01), 1),
                }
                rows.append(row)
                print(json.dumps(row, ensure_ascii=False), flush=True)
    return rows


def bench_index(sources: list[Path], dtypes: list[str]) -> list[dict]:
    """Whole pipeline (ingest, chunk, tokenize, embed, write) vs bare encode_document."""
    import tempfile

    from indexer.embed import Embedder
    from indexer.pipeline import Indexer, build, iter_sources
    from indexer.settings import get_settings

    rows = []
    files = iter_sources(sources)
    for dtype in dtypes:
        settings = get_settings().model_copy(update={"model_dtype": dtype})
        embedder = Embedder(settings=settings, dtype=dtype)
        indexer = Indexer(settings, embedder=embedder)
        embedder.encode_document(["预热"] * 8)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            _, content = build(files, Path(tmp) / "index", indexer, progress=False)
            pipeline_s = time.perf_counter() - start
        texts = [Indexer.indexed_text(p, content.articles[p.article_id]) for p in content.passages]
        start = time.perf_counter()
        embedder.encode_document(texts)
        bare_s = time.perf_counter() - start
        n = len(texts)
        row = {
            "dtype": dtype,
            "passages": n,
            "pipeline_s": round(pipeline_s, 2),
            "bare_encode_s": round(bare_s, 2),
            "pipeline_pps": round(n / pipeline_s, 1),
            "bare_pps": round(n / bare_s, 1),
            "overhead_pct": round(100 * (pipeline_s / bare_s - 1), 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main(args) -> int:
    print(f"machine: {machine()}; date: {time.strftime('%Y-%m-%d')}")
    if args.what == "serve":
        bench_serve(args.index, args.concurrency, args.rounds, args.dtype)
    elif args.what == "index":
        bench_index(args.sources, args.dtypes)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks that print figures (see BENCHMARKS.md)")
    bsub = p.add_subparsers(dest="what", required=True)
    s = bsub.add_parser("serve", help="HTTP latency/throughput of /ask and /search on loopback")
    s.add_argument("--index", type=Path, default=REPO / "data" / "index")
    s.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    s.add_argument("--rounds", type=int, default=1, help="passes over the seed questions")
    s.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    s.set_defaults(func=main)
    s = bsub.add_parser("index", help="pipeline vs bare encode_document, passages per second")
    s.add_argument("sources", type=Path, nargs="*", default=[REPO / "seeds"])
    s.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    s.set_defaults(func=main)
