"""The sharded-serving benchmark's own parts (``eval.bench.shards``): its corpus content and
its projection, without the model or a server."""

from __future__ import annotations

import numpy as np
import pytest

from eval.bench.shards import corpus_content, project


def test_projection_fits_lines_through_what_was_measured():
    scaling = [{"passages": n, "p50_ms": 5.0 + 0.25 * n / 1000} for n in (10_000, 20_000, 40_000)]
    fit, rows = project(scaling, {1: 15.0, 2: 22.0, 4: 29.0}, total=1_000_000)
    assert fit["shard_ms_per_1k_passages"] == pytest.approx(0.25)
    assert fit["shard_fixed_ms"] == pytest.approx(5.0)
    assert fit["fan_out_ms_per_doubling"] == pytest.approx(7.0)
    by_shards = {r["shards"]: r for r in rows}
    assert by_shards[4]["shard_ms"] == pytest.approx(5.0 + 0.25 * 250, abs=0.1)
    assert by_shards[8]["fan_out_ms"] == pytest.approx(36.0, abs=0.1)  # beyond the measured
    assert all(r["projected_ms"] == pytest.approx(r["shard_ms"] + r["fan_out_ms"]) for r in rows)


def test_corpus_content_is_the_real_pipeline_with_random_unit_vectors(settings):
    records = [
        {
            "id": f"r{i}",
            "date": "2023-02-08",
            "text": f"第{i}条新闻。重庆市北碚区今天召开会议。" * 8,
        }
        for i in range(3)
    ]
    content = corpus_content(records, settings, copies=2)
    assert len(content.articles) == 6 and len(content.passages) == len(content.tokens)
    assert {p.article_id for p in content.passages} == set(content.articles)
    assert len({p.passage_id for p in content.passages}) == len(content.passages)
    assert np.allclose(np.linalg.norm(content.vectors, axis=1), 1.0, atol=1e-5)
    assert all(tokens for tokens in content.tokens)
