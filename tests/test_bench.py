"""The benchmark helpers print the figures BENCHMARKS.md holds; these tests check that they
measure the right thing on small inputs (no timing is asserted). Random unit vectors stand in
for embeddings: the subject is the FAISS comparison, not the model."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from eval.bench.common import markdown_table
from eval.bench.vectors import VectorConfigs, VectorModel, compare_indexes, vector_table


def _unit(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_synthetic_vectors_are_unit_length_and_near_their_centre():
    centres = _unit(300, 32, seed=0)
    vectors, owner = VectorModel(centres, noise=0.15).sample(1000, seed=1)
    assert vectors.shape == (1000, 32)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    own = np.einsum("ij,ij->i", vectors, centres[owner])
    nearest_other = np.max(vectors @ centres.T - np.eye(300)[owner] * 2, axis=1)
    assert np.mean(own > nearest_other) > 0.99  # each one is closest to its own centre


def test_compare_indexes_reports_recall_against_exact_search():
    base, queries = _unit(3000, 32, seed=2), _unit(50, 32, seed=3)
    rows = compare_indexes("t", base, queries, VectorConfigs(kinds=["hnsw", "ivf"]))
    by_kind = {}
    for row in rows:
        by_kind.setdefault(row["kind"], []).append(row)
    assert by_kind["flat"][0]["recall_at_10"] == 1.0
    assert len(by_kind["hnsw"]) == 2 and len(by_kind["ivf"]) >= 2  # one row per setting
    best_hnsw = max(r["recall_at_10"] for r in by_kind["hnsw"])
    assert 0.8 <= best_hnsw <= 1.0
    ivf = sorted(by_kind["ivf"], key=lambda r: r["params"]["nprobe"])
    assert ivf[-1]["recall_at_10"] >= ivf[0]["recall_at_10"]  # more probes, more recall
    table = vector_table(rows).splitlines()
    assert len(table) == 2 + sum(len(v) for k, v in by_kind.items() if k != "queries")


def test_markdown_table_aligns_number_columns_right():
    table = markdown_table(["name", "p50 ms"], [["a", 1.5], ["b", 2]], right_from=1)
    assert table.splitlines() == ["| name | p50 ms |", "|---|---:|", "| a | 1.5 |", "| b | 2 |"]


def test_every_benchmark_has_help():
    for name in ["serve", "index", "vectors", "corpus", "profile", "shards"]:
        done = subprocess.run(
            [sys.executable, "-m", "eval", "bench", name, "--help"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "usage:" in done.stdout
