"""Benchmarks that print figures (never timed tests): ``python -m eval bench ...``.

Every benchmark measures a baseline in the same run and reports a ratio, because the
machines are shared and noisy:

* ``serve``: HTTP latency and throughput of /ask and /search on loopback at several
  concurrencies, against GET /healthz (the bare HTTP round trip) in the same run; optionally
  several checkouts of the service one after the other (before/after).
* ``index``: passages per second of the whole indexing pipeline against the bare
  ``model.encode_document`` on the same passages, in float32 and bfloat16; with ``--ray``,
  in-process encoding against a pool of 1, 2, ... Ray workers on the same passages.
* ``vectors``: FAISS at scale (100k, 1M vectors): exact search against HNSW and IVF.
* ``corpus``: a real news corpus indexed with the real pipeline; search and ask latency.
* ``profile``: where an /ask request spends its time (pyinstrument).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from eval.bench.common import REPO, load_average, machine
from indexer.choices import COMPUTE_DTYPES, FAISS_KINDS, MODEL_DTYPES
from indexer.vectors import HNSW_EF_CONSTRUCTION

DTYPES = list(COMPUTE_DTYPES)
CPU_DTYPES = [d for d in DTYPES if d != "float16"]  # float16 is a GPU's: a CPU emulates it
SERVE_DTYPES = list(MODEL_DTYPES)  # auto: bfloat16 where the CPU has it (indexer.embed)
APPROXIMATE_KINDS = [k for k in FAISS_KINDS if k != "flat"]  # compared against exact search


def _header() -> None:
    print(f"machine: {machine()}; date: {time.strftime('%Y-%m-%d')}; {load_average()}", flush=True)


def _footer() -> int:
    print(f"done; {load_average()}", flush=True)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from eval.bench.serve import bench_serve

    _header()
    bench_serve(args.index, args.concurrency, args.rounds, args.dtype, args.code)
    return _footer()


def cmd_index(args: argparse.Namespace) -> int:
    from eval.bench.indexing import bench_index, bench_index_ray

    _header()
    if args.ray:
        dtype = args.dtypes[0] if args.dtypes else "auto"
        bench_index_ray(args.sources, args.ray, args.workers, dtype, args.rounds)
    else:
        bench_index(args.sources, args.dtypes or CPU_DTYPES, args.rounds)
    return _footer()


def cmd_vectors(args: argparse.Namespace) -> int:
    from eval.bench.vectors import VectorConfigs, bench_vectors

    _header()
    cfg = VectorConfigs(
        kinds=args.kinds,
        ef_construction=args.ef_construction,
        ef_search=tuple(args.ef_search),
        nprobe=tuple(args.nprobe),
        ivf_points_per_list=args.ivf_points_per_list,
        hnsw_budget_s=args.hnsw_budget_s,
    )
    bench_vectors(
        args.index,
        args.sizes,
        args.queries,
        args.noise,
        args.query_noise,
        cfg,
        real=not args.no_real,
        real_queries=args.real_queries,
    )
    return _footer()


def cmd_corpus(args: argparse.Namespace) -> int:
    from eval.bench.corpus import bench_corpus

    _header()
    bench_corpus(args.corpus, args.limit, args.dtype, args.questions, args.out, args.reuse)
    return _footer()


def cmd_profile(args: argparse.Namespace) -> int:
    from eval.bench.profile import bench_profile

    _header()
    bench_profile(args.index, args.limit, args.dtype, args.html)
    return _footer()


def cmd_shards(args: argparse.Namespace) -> int:
    from eval.bench.shards import bench_shards

    _header()
    bench_shards(
        args.corpus,
        args.limit,
        args.out,
        args.questions,
        args.rounds,
        args.ray,
        args.before,
        args.copies,
    )
    return _footer()


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks that print figures (see BENCHMARKS.md)")
    bsub = p.add_subparsers(dest="what", required=True)
    default_index = REPO / "data" / "index"

    s = bsub.add_parser("serve", help="HTTP latency/throughput of /ask and /search on loopback")
    s.add_argument("--index", type=Path, default=default_index)
    s.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    s.add_argument("--rounds", type=int, default=1, help="passes over the seed questions")
    s.add_argument("--dtype", choices=SERVE_DTYPES, default="auto")
    s.add_argument(
        "--code",
        type=Path,
        nargs="+",
        help="checkouts of the service to measure one after the other (default: this one)",
    )
    s.set_defaults(func=cmd_serve)

    s = bsub.add_parser("index", help="pipeline vs bare encode_document, passages per second")
    s.add_argument("sources", type=Path, nargs="*", default=[REPO / "seeds"])
    s.add_argument(
        "--dtypes",
        nargs="+",
        choices=SERVE_DTYPES,
        help=f"default {' '.join(CPU_DTYPES)}; with --ray the first only (default auto)",
    )
    s.add_argument("--rounds", type=int, default=2, help="alternating runs; the fastest counts")
    s.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="compare in-process encoding with Ray workers: 'local', 'auto' or HOST:PORT",
    )
    s.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 2],
        help="with --ray: the pool sizes to measure",
    )
    s.set_defaults(func=cmd_index)

    s = bsub.add_parser("vectors", help="FAISS exact vs HNSW vs IVF at 100k-1M vectors")
    s.add_argument(
        "--index",
        type=Path,
        default=default_index,
        help="index whose passage vectors are the centres of the synthetic ones",
    )
    s.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    s.add_argument("--queries", type=int, default=200)
    s.add_argument(
        "--noise", type=float, default=0.15, help="noise norm of stored vectors (centre = 1)"
    )
    s.add_argument("--query-noise", type=float, default=0.5, help="noise norm of queries")
    s.add_argument("--no-real", action="store_true", help="skip the comparison on the real vectors")
    s.add_argument(
        "--real-queries",
        choices=DTYPES,
        help="also search the real vectors with questions embedded by the model (this dtype)",
    )
    s.add_argument("--kinds", nargs="+", choices=APPROXIMATE_KINDS, default=APPROXIMATE_KINDS)
    s.add_argument("--ef-construction", type=int, default=HNSW_EF_CONSTRUCTION)
    s.add_argument(
        "--ef-search",
        type=int,
        nargs="+",
        default=[64],
        help="HNSW efSearch values (the value indexer.vectors.build_faiss sets is added)",
    )
    s.add_argument(
        "--nprobe",
        type=int,
        nargs="+",
        default=[8, 32],
        help="IVF probes (the value indexer.vectors.build_faiss sets is added)",
    )
    s.add_argument(
        "--ivf-points-per-list",
        type=int,
        default=64,
        help="k-means training sample per list (faiss's default is 256)",
    )
    s.add_argument(
        "--hnsw-budget-s",
        type=float,
        default=900,
        help="stop an HNSW build over this time and report its rate instead",
    )
    s.set_defaults(func=cmd_vectors)

    s = bsub.add_parser("corpus", help="index a real news corpus; search and ask latency")
    s.add_argument("--corpus", type=Path, required=True, help="JSON lines (.gz): id, date, text")
    s.add_argument("--limit", type=int, default=None, help="only the first N articles")
    s.add_argument("--dtype", choices=SERVE_DTYPES, default="auto")
    s.add_argument("--questions", type=int, default=100)
    s.add_argument(
        "--out", type=Path, default=None, help="keep the index here (default: a temp dir)"
    )
    s.add_argument(
        "--reuse", action="store_true", help="an existing --out index: measure queries only"
    )
    s.set_defaults(func=cmd_corpus)

    s = bsub.add_parser("profile", help="where an /ask request spends its time (pyinstrument)")
    s.add_argument("--index", type=Path, default=default_index)
    s.add_argument("--limit", type=int, help="only the first N seed questions")
    s.add_argument("--dtype", choices=SERVE_DTYPES, default="auto")
    s.add_argument("--html", type=Path, help="also write pyinstrument's HTML report here")
    s.set_defaults(func=cmd_profile)

    s = bsub.add_parser(
        "shards", help="sharded index: latency vs shards, in one process and on Ray; memory"
    )
    s.add_argument("--corpus", type=Path, required=True, help="JSON lines (.gz): id, date, text")
    s.add_argument("--limit", type=int, default=None, help="only the first N articles")
    s.add_argument("--out", type=Path, required=True, help="where the indexes are built (reused)")
    s.add_argument("--questions", type=int, default=100)
    s.add_argument("--rounds", type=int, default=2, help="measured passes over the questions")
    s.add_argument("--ray", metavar="ADDRESS", help="also serve on Ray: local, auto, HOST:PORT")
    s.add_argument(
        "--before",
        type=Path,
        help="a checkout before issue 15: today's plain service, measured too",
    )
    s.add_argument(
        "--copies",
        type=int,
        nargs="+",
        default=[1, 2, 4],
        help="shard sizes for the projection: the corpus repeated this many times",
    )
    s.set_defaults(func=cmd_shards)
