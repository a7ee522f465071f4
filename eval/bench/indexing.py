"""Indexing speed: the whole pipeline against the bare model on the same passages."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path


def bench_index(sources: list[Path], dtypes: list[str], rounds: int = 2) -> list[dict]:
    """Passages per second of ``build`` (read, ingest, chunk, tokenize, embed, write) against
    sentence-transformers' own ``encode_document`` on the passages it embedded.

    The two alternate ``rounds`` times and each keeps its fastest run, so a burst of load
    from another job on the shared machine does not land on one side only."""
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
        pipeline, bare = [], []
        for _ in range(rounds):
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                content = build(Path(tmp) / "index", files, indexer=indexer).content
                pipeline.append(time.perf_counter() - start)
            texts = [
                Indexer.indexed_text(p, content.articles[p.article_id]) for p in content.passages
            ]
            start = time.perf_counter()
            embedder.model.encode_document(
                texts, batch_size=settings.embed_batch_size, normalize_embeddings=True
            )
            bare.append(time.perf_counter() - start)
        n = len(texts)
        pipeline_s, bare_s = min(pipeline), min(bare)
        row = {
            "dtype": dtype,
            "passages": n,
            "pipeline_s": round(pipeline_s, 2),
            "bare_encode_s": round(bare_s, 2),
            "pipeline_pps": round(n / pipeline_s, 1),
            "bare_pps": round(n / bare_s, 1),
            "overhead_pct": round(100 * (pipeline_s / bare_s - 1), 1),
            "runs_s": {
                "pipeline": [round(x, 2) for x in pipeline],
                "bare": [round(x, 2) for x in bare],
            },
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows
