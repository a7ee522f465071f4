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


def bench_index_ray(
    sources: list[Path], address: str, workers: list[int], dtype: str, rounds: int = 2
) -> list[dict]:
    """Passages per second of encoding (embedding + BM25 tokens) in-process against a pool of
    Ray actors of each size in ``workers``, on the same passages; and of the whole build.

    ``encode``: the pool already started, alternating ``rounds`` times with the in-process
    encoder on the same texts (each side keeps its fastest run, so a burst of load from
    another job lands on both); ``start``: starting the pool (each actor loads and checks the
    model); ``build``: a whole build on Ray (file-reading tasks, pool start, encoding, the
    write) against the in-process build, one after the other. Ratios are Ray's rate over the
    in-process rate: below 1 is overhead."""
    from indexer.cluster import RayEncoder, RayReader, connect
    from indexer.pipeline import Indexer, build, iter_sources
    from indexer.reader import chunking_of
    from indexer.settings import get_settings

    files = iter_sources(sources)
    settings = get_settings().model_copy(update={"model_dtype": dtype})
    local = Indexer(settings)
    local.encoder.encode(["预热"] * 8, False)

    def local_build() -> tuple[float, list[str]]:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            content = build(Path(tmp) / "index", files, indexer=local, progress=False).content
            seconds = time.perf_counter() - start
        return seconds, [
            Indexer.indexed_text(p, content.articles[p.article_id]) for p in content.passages
        ]

    _, texts = local_build()
    n = len(texts)
    rows = []
    with connect(address):
        for count in workers:
            encoder = RayEncoder(settings, None, count)
            local_build_s, _ = local_build()
            with tempfile.TemporaryDirectory() as tmp:
                indexer = Indexer(
                    settings, encoder=encoder, reader=RayReader(chunking_of(settings))
                )
                start = time.perf_counter()
                build(Path(tmp) / "index", files, indexer=indexer, progress=False)
                build_s = time.perf_counter() - start
            start = time.perf_counter()
            local_runs, ray_runs = [], []
            with encoder.pool():
                start_s = time.perf_counter() - start
                for _ in range(rounds):
                    local_runs.append(_timed(lambda: local.encoder.encode(texts, False)))
                    ray_runs.append(_timed(lambda e=encoder: e.encode(texts, False)))
            local_s, ray_s = min(local_runs), min(ray_runs)
            row = {
                "ray": address,
                "workers": encoder.size,
                "dtype": encoder.build_info().get("dtype", "?"),
                "passages": n,
                "in_process_pps": round(n / local_s, 1),
                "ray_pps": round(n / ray_s, 1),
                "encode_ratio": round(local_s / ray_s, 2),
                "pool_start_s": round(start_s, 2),
                "in_process_build_s": round(local_build_s, 2),
                "ray_build_s": round(build_s, 2),
                "build_ratio": round(local_build_s / build_s, 2),
                "runs_s": {
                    "in_process": [round(x, 2) for x in local_runs],
                    "ray": [round(x, 2) for x in ray_runs],
                },
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
