"""``python -m qa_service``: serve the HTTP API, ask a question at the terminal, or serve the
MCP tools over stdio."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from indexer import models, store
from indexer.choices import SEARCH_MODES
from indexer.embed import DeviceError
from indexer.settings import get_settings


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from qa_service.app import create_app
    from qa_service.state import ServiceState

    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.ray:
        from qa_service.serve_ray import serve_on_ray

        return serve_on_ray(
            args.index,
            args.ray,
            settings,
            replicas=args.replicas or 1,
            host=args.host,
            port=args.port,
            replica_cpus=args.replica_cpus,
            retry_s=args.shard_retry_s,
        )
    if args.replicas is not None:
        print("error: --replicas goes with --ray", file=sys.stderr)
        return 2
    state = ServiceState(settings, args.index)
    print(f"loading the model and the index {args.index} ...", flush=True)
    state.start()  # fail here, with a plain message, rather than inside uvicorn
    app = create_app(settings=settings, state=state)
    print(f"serving on http://{args.host}:{args.port}  (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from qa_service.engine import open_engine

    question = args.question.strip()
    if not question:
        print("error: the question is empty", file=sys.stderr)
        return 2
    engine = open_engine(args.index, get_settings())
    result = engine.ask(question, args.top_k, args.mode)
    if result.answer:
        print(f"答案 / answer (confidence {result.answer.confidence:.2f}):")
        print(f"  {result.answer.text}\n")
    else:
        print("No passage answers this question with enough confidence.\n")
    for n, r in enumerate(result.passages, 1):
        p = engine.index.passages[r.row]
        a = engine.index.articles[p.article_id]
        print(f"[{n}] {a.title}  ({a.date or 'date unknown'}, {a.source or 'source unknown'})")
        print(f"    {p.file} characters {p.start}-{p.end}  score {r.hit.score:.3f}")
        print(f"    {p.text[:160]}{'…' if len(p.text) > 160 else ''}")
    return 0


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send whatever is written to file descriptor 1 (Python's prints and native libraries'
    alike) to stderr meanwhile: over stdio, stdout carries the MCP protocol and nothing else."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def cmd_mcp(args: argparse.Namespace) -> int:
    from qa_service.mcp_server import build_server
    from qa_service.state import ServiceState

    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    state = ServiceState(settings, args.index)
    with stdout_to_stderr():
        logging.getLogger("qa_service").info("loading the model and the index %s ...", args.index)
        state.start()  # once, before the first message; a bad index fails here, plainly
    build_server(lambda: state.engine, settings).run("stdio")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from qa_service.serve_ray import REPLICA_CPUS, RETRY_S

    settings = get_settings()
    parser = argparse.ArgumentParser(
        prog="python -m qa_service", description="Question answering over a news index."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the HTTP API and web page")
    p.add_argument("--index", type=Path, default=settings.index_dir, help="index directory")
    p.add_argument("--host", default=settings.host)
    p.add_argument("--port", type=int, default=settings.port)
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="serve a sharded index on Ray Serve (the 'serve' extra), each shard a deployment: "
        "'local' (the default) starts a Ray instance for this service, 'auto' joins this "
        "machine's cluster, HOST:PORT the cluster with that head",
    )
    p.add_argument(
        "--replicas", type=int, metavar="R", help="with --ray: replicas of each shard (1)"
    )
    p.add_argument(
        "--replica-cpus",
        type=float,
        default=REPLICA_CPUS,
        metavar="C",
        help=f"with --ray: CPUs Ray reserves for each replica ({REPLICA_CPUS})",
    )
    p.add_argument(
        "--shard-retry-s",
        type=float,
        default=RETRY_S,
        metavar="S",
        help="with --ray: how long a shard call is sent again while Serve replaces a dead "
        f"replica, before the request fails with a 503 naming the shard ({RETRY_S:g})",
    )
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("ask", help="answer one question and print the cited passages")
    p.add_argument("question")
    p.add_argument("--index", type=Path, default=settings.index_dir, help="index directory")
    p.add_argument(
        "--top-k",
        type=int,
        default=5,
        choices=range(1, settings.max_top_k + 1),
        metavar="N",
        help=f"passages to show (1-{settings.max_top_k})",
    )
    p.add_argument("--mode", choices=SEARCH_MODES, default="hybrid")
    p.set_defaults(func=cmd_ask)
    p = sub.add_parser(
        "mcp", help="serve the MCP tools (search_news, ask_news, ...) over stdio to an AI assistant"
    )
    p.add_argument("--index", type=Path, default=settings.index_dir, help="index directory")
    p.set_defaults(func=cmd_mcp)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (store.IndexStoreError, models.ModelError, DeviceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
