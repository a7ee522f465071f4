"""Sharded serving (issue 15): query latency against the number of shards, in one process and
on Ray Serve, against the plain index; memory per passage of a loaded plain index against a
lean shard; per-shard latency against shard size, for a projection to 10M passages.

The corpus: a real news corpus (JSON lines) cut into passages and tokenized by the real
chunker and tokenizer. Its passage vectors are random unit vectors: embedding tens of
thousands of passages on a 2-core CPU takes hours, and what a search costs depends on the
vectors' shape (count, dimension), not their values. The questions are sentence beginnings
of random passages, embedded by the real model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from eval.bench.common import REPO, markdown_table, running_server
from eval.bench.corpus import corpus_questions, corpus_title, read_corpus
from eval.metrics import percentile

SHARD_COUNTS = (1, 2, 4)


# ---------------------------------------------------------------------------- the corpus


def corpus_content(records: list[dict], settings, seed: int = 0, copies: int = 1):
    """Articles, passages and tokens of ``records`` through the real chunker and tokenizer,
    with random unit vectors; ``copies`` > 1 repeats the corpus under new ids (for larger
    shards than the corpus gives)."""
    from indexer import store, tokenize
    from indexer.chunk import chunk_article
    from indexer.ingest import article_from_record
    from indexer.pipeline import Indexer

    tokenizer = tokenize.from_settings(settings)
    content = store.IndexContent()
    base_tokens: list[list[str]] = []
    base_passages = []
    for r in records:
        record = {"id": r["id"], "title": corpus_title(r["text"]), "text": r["text"]}
        if r.get("date"):
            record["date"] = r["date"]
        article = article_from_record(record, f"corpus#{r['id']}")
        if article.article_id in content.articles:
            continue
        content.articles[article.article_id] = article
        passages = chunk_article(
            article,
            settings.chunk_target_chars,
            settings.chunk_max_chars,
            settings.chunk_overlap_sentences,
        )
        texts = [Indexer.indexed_text(p, article) for p in passages]
        base_passages += passages
        base_tokens += tokenizer.tokenize_many(texts)
    content.passages, content.tokens = list(base_passages), list(base_tokens)
    originals = list(content.articles.values())
    for copy in range(1, copies):
        for article in originals:
            clone = _renamed(article, f"{article.article_id}~{copy}")
            content.articles[clone.article_id] = clone
        for p, toks in zip(base_passages, base_tokens, strict=True):
            aid = f"{p.article_id}~{copy}"
            content.passages.append(
                type(p)(f"{aid}-{p.position:04d}", aid, p.position, p.text, p.file, p.start, p.end)
            )
            content.tokens.append(toks)
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((len(content.passages), 384), dtype=np.float32)
    content.vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    content.files = {"corpus": "0" * 64}
    return content


def _renamed(article, article_id: str):
    from dataclasses import replace

    return replace(
        article, article_id=article_id, content_hash=f"{article.content_hash}~{article_id}"
    )


def build_indexes(corpus: Path, limit: int | None, out: Path, settings) -> dict[str, Path]:
    """The plain index and 1, 2, 4 shards of the same content, under ``out`` (reused)."""
    from indexer import shards, store
    from indexer.manifest import expected_settings

    paths = {"plain": out / "plain", **{f"s{n}": out / f"s{n}" for n in SHARD_COUNTS}}
    if all(p.exists() for p in paths.values()):
        return paths
    content = corpus_content(read_corpus(corpus, limit), settings)
    made_with = expected_settings(settings)
    store.write_index(paths["plain"], content, made_with)
    for n in SHARD_COUNTS:
        shards.write(paths[f"s{n}"], content, n, made_with)
    return paths


# ------------------------------------------------------------------------------ latency


def _stats(ms: list[float]) -> dict:
    return {
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "n": len(ms),
    }


def retrieval_latency(paths: dict[str, Path], questions: list[str], rounds: int) -> list[dict]:
    """In-process hybrid retrieval (router and shards; the question's vector given, so the
    model is out of the figure), each variant in turn, alternating rounds."""
    from indexer import tokenize
    from indexer.embed import Embedder
    from indexer.settings import get_settings
    from qa_service.engine import engine_for
    from qa_service.index import load

    settings = get_settings()
    embedder = Embedder(settings=settings)
    tokenizer = tokenize.from_settings(settings)
    vectors = embedder.encode_query(questions)
    engines = {
        name: engine_for(load(path), settings, embedder, tokenizer) for name, path in paths.items()
    }
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(rounds):
        for name, engine in engines.items():
            for q, v in zip(questions, vectors, strict=True):
                start = time.perf_counter()
                engine.retriever.search(q, 10, "hybrid", vector=v)
                times[name].append((time.perf_counter() - start) * 1000)
    return [{"variant": name, "where": "in-process", **_stats(ms)} for name, ms in times.items()]


def http_latency(
    variants: list[tuple[str, Path, list[str], Path | None]], questions: list[str], rounds: int
) -> list[dict]:
    """/search over HTTP, one request at a time: a first pass warms the service (and its
    cache of question vectors), the next ``rounds`` count. The model's time is then out of
    the figure; it is the same for every variant."""
    import httpx

    rows = []
    for name, path, args, code in variants:
        with running_server(path, args=args, code=code, wait_s=900) as base:
            client = httpx.Client(timeout=120)
            for q in questions:  # warm-up: embeddings cached, shards' pages touched
                client.post(f"{base}/search", json={"query": q, "top_k": 10})
            ms = []
            for _ in range(rounds):
                for q in questions:
                    start = time.perf_counter()
                    r = client.post(f"{base}/search", json={"query": q, "top_k": 10})
                    ms.append((time.perf_counter() - start) * 1000)
                    r.raise_for_status()
            where = "Ray Serve" if "--ray" in args else "one process"
            rows.append({"variant": name, "where": where, **_stats(ms)})
            print(json.dumps(rows[-1]), flush=True)
    return rows


# ------------------------------------------------------------------------------- memory

_MEMORY_PROBE = """
import json, sys, gc
from pathlib import Path
def anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
kind, path = sys.argv[1], Path(sys.argv[2])
import numpy, faiss, bm25s, sqlite3  # libraries first: only the index counts
from qa_service import index as loaded_index
if kind != "plain-before":
    from qa_service import shard_disk, router, shard
gc.collect(); before = anon()
if kind == "lean":
    s = shard_disk.open_shard(path.resolve()); n = len(s)
elif kind == "plain-now":
    i = loaded_index.load(path); i.router; n = len(i.passages)
else:
    i = loaded_index.load(path); n = len(i.passages)
gc.collect(); print(json.dumps({"passages": n, "bytes": anon() - before}))
"""


def memory_per_passage(plain: Path, before_code: Path | None) -> list[dict]:
    """Anonymous resident memory a loaded index adds, per passage, in a fresh process each
    (file-backed pages, such as memory-mapped vectors, are not counted: they are the page
    cache's, shared by every process serving the shard)."""
    variants = [("plain-now", "today's loaded index + its shard view (router)", None)]
    if before_code is not None:
        variants.insert(0, ("plain-before", "loaded index before issue 15", before_code))
    variants.append(("lean", "lean shard (issue 15, item 6)", None))
    rows = []
    for kind, label, code in variants:
        out = subprocess.run(
            [sys.executable, "-c", _MEMORY_PROBE, kind, str(plain)],
            cwd=code or REPO,
            capture_output=True,
            text=True,
            check=True,
            env=os.environ | {"PYTHONPATH": str(code or REPO)},
        )
        got = json.loads(out.stdout.strip().splitlines()[-1])
        n = got["passages"]
        vectors = 384 * 4  # float32 per passage, in memory unless memory-mapped
        per = got["bytes"] / n
        rows.append(
            {
                "what": label,
                "passages": n,
                "anon_mb": round(got["bytes"] / 2**20, 1),
                "bytes_per_passage": round(per),
                "beyond_vectors": round(per - (0 if kind == "lean" else vectors)),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


# --------------------------------------------------------------------------- projection


def shard_scaling(corpus: Path, limit: int | None, copies: list[int], questions: int) -> list[dict]:
    """One lean shard's hybrid search (what a shard does per query: dense top-100, BM25 with
    global statistics, exact dense scores of the keyword rows, the background sample) at
    several sizes (the corpus repeated under new ids), question vectors given."""
    import tempfile

    from indexer import shards
    from indexer.embed import Embedder
    from indexer.manifest import expected_settings
    from indexer.settings import get_settings
    from indexer.tokenize import from_settings
    from qa_service.router import Router
    from qa_service.shard_disk import open_shard

    settings = get_settings()
    records = read_corpus(corpus, limit)
    embedder = Embedder(settings=settings)
    tokenizer = from_settings(settings)
    rows = []
    for k in copies:
        content = corpus_content(records, settings, copies=k)
        qs = [q for q, _ in corpus_questions(content.passages, questions, seed=11)]
        vectors = embedder.encode_query(qs)
        with tempfile.TemporaryDirectory() as tmp:
            shards.write(Path(tmp) / "idx", content, 1, expected_settings(settings))
            opened = shards.read_generation(Path(tmp) / "idx")
            searcher = open_shard(opened.shard_version(0))
            router = Router.local(searcher)
            ms = []
            for _ in range(2):
                for q, v in zip(qs, vectors, strict=True):
                    tokens = tokenizer.tokenize(q)
                    start = time.perf_counter()
                    router.candidates(v, tokens, 100, dense_top=True, keyword=True)
                    ms.append((time.perf_counter() - start) * 1000)
            rows.append({"passages": len(searcher), **_stats(ms[len(qs) :])})
            print(json.dumps(rows[-1]), flush=True)
            del searcher, router
    return rows


def project(scaling: list[dict], overhead_ms: dict[int, float], total: int = 10_000_000):
    """Latency of ``total`` passages in S shards: a least-squares line through the measured
    per-shard latencies (each shard on cores of its own), plus a fan-out overhead fitted
    against log2(S) through the measured ones (it grew by a constant per doubling here)."""
    n = np.array([r["passages"] for r in scaling], dtype=float)
    t = np.array([r["p50_ms"] for r in scaling], dtype=float)
    slope, intercept = np.polyfit(n, t, 1)
    s_measured = np.array(sorted(overhead_ms), dtype=float)
    o_measured = np.array([overhead_ms[int(s)] for s in s_measured], dtype=float)
    if len(s_measured) > 1:
        o_slope, o_intercept = np.polyfit(np.log2(s_measured), o_measured, 1)
    else:
        o_slope, o_intercept = 0.0, float(o_measured[0]) if len(o_measured) else 0.0
    rows = []
    for s in (1, 4, 8, 16, 32):
        per_shard = intercept + slope * total / s
        fan = o_intercept + o_slope * np.log2(s)
        rows.append(
            {
                "shards": s,
                "passages_per_shard": total // s,
                "shard_ms": round(float(per_shard), 1),
                "fan_out_ms": round(float(fan), 1),
                "projected_ms": round(float(per_shard + fan), 1),
            }
        )
    fit = {
        "shard_ms_per_1k_passages": round(float(slope) * 1000, 4),
        "shard_fixed_ms": round(float(intercept), 2),
        "fan_out_ms": round(float(o_intercept), 2),
        "fan_out_ms_per_doubling": round(float(o_slope), 2),
    }
    return fit, rows


# -------------------------------------------------------------------------------- driver


def _shards(n: int) -> str:
    return f"{n} shard{'s' if n > 1 else ''}"


def bench_shards(
    corpus: Path,
    limit: int | None,
    out: Path,
    questions: int,
    rounds: int,
    ray: str | None,
    before_code: Path | None,
    copies: list[int],
) -> None:
    from indexer.settings import get_settings

    settings = get_settings()
    paths = build_indexes(corpus, limit, out, settings)
    from qa_service.index import load

    plain = load(paths["plain"])
    qs = [q for q, _ in corpus_questions(plain.passages, questions, seed=7)]
    print(f"corpus: {len(plain.passages)} passages, {len(plain.articles)} articles", flush=True)
    del plain

    print("\n## retrieval in one process (router + shards; question vectors given)", flush=True)
    rows = retrieval_latency(paths, qs, rounds)
    base = next(r for r in rows if r["variant"] == "plain")["p50_ms"]
    print(
        markdown_table(
            ["variant", "p50 ms", "p95 ms", "p50 / plain"],
            [[r["variant"], r["p50_ms"], r["p95_ms"], round(r["p50_ms"] / base, 2)] for r in rows],
            right_from=1,
        ),
        flush=True,
    )

    print("\n## /search over HTTP (question vectors cached after a warm-up pass)", flush=True)
    variants: list[tuple[str, Path, list[str], Path | None]] = []
    if before_code is not None:
        variants.append(("plain, before issue 15", paths["plain"], [], before_code))
    variants.append(("plain", paths["plain"], [], None))
    variants += [(_shards(n), paths[f"s{n}"], [], None) for n in SHARD_COUNTS]
    if ray:
        variants += [
            (_shards(n), paths[f"s{n}"], ["--ray", ray, "--replicas", "1"], None)
            for n in SHARD_COUNTS
        ]
    http = http_latency(variants, qs, rounds)
    today = http[0]["p50_ms"]
    print(
        markdown_table(
            ["variant", "where", "p50 ms", "p95 ms", f"p50 / {http[0]['variant']}"],
            [
                [r["variant"], r["where"], r["p50_ms"], r["p95_ms"], round(r["p50_ms"] / today, 2)]
                for r in http
            ],
            right_from=2,
        ),
        flush=True,
    )

    print("\n## memory per passage (anonymous RSS added by loading)", flush=True)
    mem = memory_per_passage(paths["plain"], before_code)
    print(
        markdown_table(
            ["loaded as", "passages", "MB", "bytes/passage", "beyond the vectors"],
            [
                [
                    r["what"],
                    r["passages"],
                    r["anon_mb"],
                    r["bytes_per_passage"],
                    r["beyond_vectors"],
                ]
                for r in mem
            ],
            right_from=1,
        ),
        flush=True,
    )

    print("\n## one shard's search against its size (for the projection)", flush=True)
    scaling = shard_scaling(corpus, limit, copies, min(questions, 50))
    in_process = {r["variant"]: r["p50_ms"] for r in http if r["where"] == "one process"}
    on_ray = {r["variant"]: r["p50_ms"] for r in http if r["where"] == "Ray Serve"}
    overhead = {
        n: on_ray[_shards(n)] - in_process[_shards(1)] for n in SHARD_COUNTS if _shards(n) in on_ray
    }
    line, projection = project(scaling, overhead)
    measured = {n: round(ms, 2) for n, ms in overhead.items()}
    print(f"fit: {line}; fan-out overhead measured (ms): {measured}")
    print("PROJECTION (not a measurement) to 10M passages:")
    print(
        markdown_table(
            ["shards", "passages/shard", "shard ms", "fan-out ms", "projected p50 ms"],
            [list(r.values()) for r in projection],
            right_from=1,
        ),
        flush=True,
    )
