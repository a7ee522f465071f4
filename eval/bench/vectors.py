"""FAISS at scale: exact search (the baseline) against HNSW and IVF on 100k-1M vectors.

The vectors are synthetic but shaped like real passage vectors of an index (see
``VectorModel``); build time, memory, single-query latency and recall@10 against exact search.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.bench.common import markdown_table, rss_mb
from eval.metrics import percentile
from indexer import store
from indexer import vectors as faiss_params


class VectorModel:
    """Synthetic vectors shaped like real ones: a real passage vector as the centre, plus
    gaussian noise, most of it along the real vectors' main directions (their PCA) and the
    rest isotropic, then L2-normalised. ``noise`` is the noise norm relative to the unit
    centre.

    The defaults (stored noise 0.15, query noise 0.5) were calibrated on the real passage
    vectors of crud_news_5k so that neighbour cosines and HNSW/IVF recall come close to the
    real figures; every run prints the real-vector rows beside the synthetic ones so the
    calibration can be checked (BENCHMARKS.md, "Vector search at scale")."""

    def __init__(self, centres: np.ndarray, noise: float, aniso_share: float = 0.7, k: int = 64):
        self.centres = np.ascontiguousarray(centres, dtype=np.float32)
        self.dim = centres.shape[1]
        mean = centres.mean(axis=0)
        _, sing, vt = np.linalg.svd(centres - mean, full_matrices=False)
        k = max(1, min(k, len(centres) - 1))
        std = sing[:k] / np.sqrt(max(1, len(centres) - 1))
        self.basis = (std[:, None] * vt[:k]).astype(np.float32)  # k x dim, rows scaled by std
        self.aniso = noise * np.sqrt(aniso_share / float((std**2).sum() or 1.0))
        self.iso = noise * np.sqrt((1 - aniso_share) / self.dim)

    def sample(self, n: int, seed: int, chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        out = np.empty((n, self.dim), dtype=np.float32)
        owner = rng.integers(0, len(self.centres), size=n).astype(np.int32)
        k = self.basis.shape[0]
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            m = hi - lo
            x = self.centres[owner[lo:hi]].copy()
            x += self.aniso * (rng.standard_normal((m, k), dtype=np.float32) @ self.basis)
            x += self.iso * rng.standard_normal((m, self.dim), dtype=np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            out[lo:hi] = x
        return out, owner


def _single_query_latency(index, queries: np.ndarray, k: int) -> tuple[list[float], np.ndarray]:
    """One query per call, as the service searches; returns latencies (ms) and the ids."""
    for q in queries[:5]:  # warm caches
        index.search(q.reshape(1, -1), k)
    times, ids = [], np.empty((len(queries), k), dtype=np.int64)
    for i, q in enumerate(queries):
        start = time.perf_counter()
        _, found = index.search(q.reshape(1, -1), k)
        times.append((time.perf_counter() - start) * 1000)
        ids[i] = found[0]
    return times, ids


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth, strict=True)]))


@dataclass
class VectorConfigs:
    kinds: list[str]
    ef_construction: int = faiss_params.HNSW_EF_CONSTRUCTION
    ef_search: tuple[int, ...] = (64,)  # the store's efSearch is always added
    nprobe: tuple[int, ...] = (8, 32)
    ivf_points_per_list: int = 64
    hnsw_budget_s: float = 900


def _emit(rows: list[dict], row: dict) -> None:
    rows.append(row)
    print(json.dumps(row), flush=True)


def compare_indexes(data: str, base: np.ndarray, query: np.ndarray, cfg: VectorConfigs) -> list:
    """Exact search (the baseline and the truth for recall) against HNSW and IVF."""
    import faiss

    n, dim = base.shape
    k = 10
    rows: list[dict] = []
    head = {"data": data, "size": n}
    rss0 = rss_mb()
    start = time.perf_counter()
    flat = faiss.IndexFlatIP(dim)
    flat.add(base)
    flat_build = time.perf_counter() - start
    flat_rss = rss_mb() - rss0
    flat_bytes = len(faiss.serialize_index(flat))
    truth_scores, truth = flat.search(query, k)
    times, _ = _single_query_latency(flat, query, k)
    flat_p50 = percentile(times, 50)
    profile = {
        "top1_cos_p50": round(float(np.median(truth_scores[:, 0])), 4),
        "top10_cos_p50": round(float(np.median(truth_scores[:, -1])), 4),
    }
    _emit(rows, head | {"kind": "queries", "queries": len(query)} | profile)
    _emit(
        rows,
        head
        | {
            "kind": "flat",
            "params": {},
            "build_s": round(flat_build, 2),
            "bytes": flat_bytes,
            "rss_delta_mb": round(flat_rss),
            "p50_ms": round(flat_p50, 3),
            "p95_ms": round(percentile(times, 95), 3),
            "recall_at_10": 1.0,
        },
    )
    del flat

    def measured(row: dict, index) -> dict:
        times, found = _single_query_latency(index, query, k)
        row |= {
            "p50_ms": round(percentile(times, 50), 3),
            "p95_ms": round(percentile(times, 95), 3),
            "recall_at_10": round(_recall(found, truth), 4),
            "p50_vs_flat": round(percentile(times, 50) / max(flat_p50, 1e-6), 3),
            "build_vs_flat": round(row["build_s"] / max(flat_build, 1e-6), 1),
            "bytes_vs_flat": round(row["bytes"] / flat_bytes, 3),
        }
        return row

    if "hnsw" in cfg.kinds:
        params = {"M": faiss_params.HNSW_M, "efConstruction": cfg.ef_construction}
        rss0 = rss_mb()
        start = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(dim, faiss_params.HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = cfg.ef_construction
        step = 50_000
        for lo in range(0, n, step):
            hnsw.add(base[lo : lo + step])
            if time.perf_counter() - start > cfg.hnsw_budget_s and lo + step < n:
                break
        build = time.perf_counter() - start
        if hnsw.ntotal < n:  # over the time budget: report the rate, not a search
            _emit(
                rows,
                head
                | {
                    "kind": "hnsw",
                    "params": params,
                    "build_incomplete": True,
                    "added": int(hnsw.ntotal),
                    "build_s": round(build, 1),
                    "projected_build_s": round(build * n / hnsw.ntotal),
                    "budget_s": cfg.hnsw_budget_s,
                },
            )
        else:
            figures = {
                "build_s": round(build, 2),
                "bytes": len(faiss.serialize_index(hnsw)),
                "rss_delta_mb": round(rss_mb() - rss0),
            }
            for ef in sorted({*cfg.ef_search, faiss_params.HNSW_EF_SEARCH}):
                hnsw.hnsw.efSearch = ef
                row = head | {"kind": "hnsw", "params": params | {"efSearch": ef}} | figures
                _emit(rows, measured(row, hnsw))
        del hnsw

    if "ivf" in cfg.kinds:
        nlist, store_nprobe = faiss_params.ivf_lists(n)
        rss0 = rss_mb()
        start = time.perf_counter()
        quantizer = faiss.IndexFlatIP(dim)
        ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.max_points_per_centroid = cfg.ivf_points_per_list
        ivf.train(base)
        train = time.perf_counter() - start
        ivf.add(base)
        figures = {
            "train_s": round(train, 2),
            "build_s": round(time.perf_counter() - start, 2),
            "bytes": len(faiss.serialize_index(ivf)),
            "rss_delta_mb": round(rss_mb() - rss0),
        }
        train_points = min(n, nlist * cfg.ivf_points_per_list)
        for probe in sorted({*cfg.nprobe, store_nprobe}):
            ivf.nprobe = probe
            params = {"nlist": nlist, "nprobe": probe, "train_points": train_points}
            _emit(rows, measured(head | {"kind": "ivf", "params": params} | figures, ivf))
        del ivf, quantizer
    return rows


def bench_vectors(
    index_path: Path,
    sizes: list[int],
    queries: int,
    noise: float,
    query_noise: float,
    cfg: VectorConfigs,
    real: bool = True,
    real_queries: str | None = None,
    seed: int = 0,
) -> list[dict]:
    """Exact vs HNSW vs IVF on synthetic vectors around an index's real passage vectors.

    With ``real`` (and an index of at least 5,000 vectors), the same comparison first runs on
    the real vectors themselves, held-out passages as queries, next to synthetic vectors of the
    same number: how far the synthetic ones are from the real thing. ``real_queries`` (a
    dtype) also embeds short questions cut from the passages with the model and searches the
    real vectors with them."""
    import faiss

    _, content = store.load_content(index_path)
    centres = content.vectors
    if centres is None or len(centres) < 2:
        raise SystemExit(f"the index {index_path} holds fewer than 2 vectors")
    stored = VectorModel(centres, noise)
    asked = VectorModel(centres, query_noise)
    print(
        f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads; "
        f"{len(centres)} real vectors of dimension {stored.dim} from {index_path} as centres; "
        f"noise {noise} (stored), {query_noise} (queries)",
        flush=True,
    )
    if len(centres) < 5000:
        print(
            f"note: only {len(centres)} centres; at 1M that is {1_000_000 // len(centres)} "
            "near-copies each. A bigger index (--index) gives a more realistic spread.",
            flush=True,
        )
    rows: list[dict] = []
    if real and len(centres) >= 5000:
        order = np.random.default_rng(seed).permutation(len(centres))
        held, kept = order[:queries], order[queries:]
        rows += compare_indexes("real", centres[kept], centres[held], cfg)
        if real_queries:  # real short questions, embedded by the model, over all passages
            from eval.bench.corpus import corpus_questions
            from indexer.embed import Embedder

            texts = [q for q, _ in corpus_questions(content.passages, queries, seed=11)]
            vectors = Embedder(dtype=real_queries).encode_query(texts)
            rows += compare_indexes("real, questions", centres, vectors, cfg)
        base, _ = stored.sample(len(kept), seed=seed + 1)
        rows += compare_indexes("synthetic", base, stored.sample(queries, seed + 2)[0], cfg)
        if real_queries:
            query, _ = asked.sample(queries, seed + 3)
            rows += compare_indexes("synthetic, questions", base, query, cfg)
    for size in sizes:
        base, _ = stored.sample(size, seed=seed + size)
        query, _ = asked.sample(queries, seed=seed + size + 1)
        rows += compare_indexes("synthetic", base, query, cfg)
        del base
    print(vector_table(rows), flush=True)
    return rows


def vector_table(rows: list[dict]) -> str:
    columns = ["data", "vectors", "index", "params", "build s", "MB", "RSS +MB", "p50 ms"]
    columns += ["p95 ms", "recall@10", "build/flat", "size/flat", "p50/flat"]
    out = []
    for r in rows:
        if r["kind"] == "queries":
            continue
        params = " ".join(f"{k}={v}" for k, v in r["params"].items())
        lead = [r["data"], f"{r['size']:,}", r["kind"], params]
        if r.get("build_incomplete"):
            build = f">{r['build_s']} ({r['added']:,} added; projected {r['projected_build_s']})"
            out.append(lead + [build] + [""] * (len(columns) - len(lead) - 1))
            continue
        out.append(
            lead
            + [r["build_s"], f"{r['bytes'] / 1e6:.0f}", r["rss_delta_mb"], r["p50_ms"]]
            + [r["p95_ms"], r["recall_at_10"], r.get("build_vs_flat", 1.0)]
            + [r.get("bytes_vs_flat", 1.0), r.get("p50_vs_flat", 1.0)]
        )
    return markdown_table(columns, out, right_from=4)
