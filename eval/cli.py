"""``python -m eval``: score retrieval on gold sets, compare modes and settings, benchmark."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from eval import runner
from eval.datasets import DatasetError, detect, load_answer_set, load_beir
from eval.runfile import write_run
from indexer import models, store
from indexer.choices import SEARCH_MODES, TOKENIZER_MODES, SearchMode
from indexer.settings import Settings, get_settings


def _ks(text: str) -> list[int]:
    try:
        ks = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k takes numbers like 1,3,5,10, not {text!r}") from None
    if not ks or ks[0] < 1:
        raise argparse.ArgumentTypeError("--k values must be positive")
    return ks


def _variant(text: str) -> tuple[str, dict[str, str]]:
    """``name:key=value,key=value`` -> (name, overrides of Settings)."""
    name, _, spec = text.partition(":")
    overrides = {}
    for pair in filter(None, spec.split(",")):
        key, sep, value = pair.partition("=")
        if not sep or key not in Settings.model_fields:
            raise argparse.ArgumentTypeError(f"bad --variant {text!r}: {key!r} is not a setting")
        overrides[key] = value
    return name, overrides


class Session:
    """Models loaded once per (model, dtype, script folding) for all runs; engines built per
    index."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._embedders: dict[tuple[str, str, bool], object] = {}

    def with_settings(self, overrides: dict) -> Settings:
        return self.settings.model_validate(self.settings.model_dump() | overrides)

    def embedder(self, settings: Settings | None = None):
        from indexer.embed import Embedder, resolve_dtype

        settings = settings or self.settings
        key = (settings.model, resolve_dtype(settings.model_dtype), settings.script_fold)
        if key not in self._embedders:
            self._embedders[key] = Embedder(settings=settings)
        return self._embedders[key]

    def engine(self, index_path: Path, settings: Settings | None = None):
        from qa_service.engine import open_engine

        settings = settings or self.settings
        return open_engine(index_path, settings, self.embedder(settings))

    def indexer(self, settings: Settings | None = None):
        from indexer.pipeline import Indexer

        settings = settings or self.settings
        return Indexer(settings, embedder=self.embedder(settings))


def _beir_engine(session: Session, folder: Path, settings: Settings, progress: bool):
    dataset = load_beir(folder)
    cache = settings.data_dir / "eval-cache"
    path = runner.beir_index(dataset, session.indexer(settings), cache, progress)
    return dataset, session.engine(path, settings)


def _answers_engine(session: Session, args, settings: Settings, tmp: Path):
    """An engine over --index, or over a fresh index of --sources (one per index settings)."""
    if not getattr(args, "sources", None):
        return session.engine(args.index or settings.index_dir, settings)
    from indexer.embed import resolve_dtype
    from indexer.manifest import expected_settings
    from indexer.pipeline import build, iter_sources

    # One index per (index settings as the manifest records them, dtype of the vectors).
    recorded = asdict(expected_settings(settings))
    key = json.dumps([recorded, resolve_dtype(settings.model_dtype)], sort_keys=True)
    path = tmp / f"index-{hashlib.sha1(key.encode()).hexdigest()[:12]}"
    if not path.exists():
        build(path, iter_sources(args.sources), indexer=session.indexer(settings), progress=False)
    return session.engine(path, settings)


def run_one(
    session: Session, args, settings: Settings, mode: SearchMode, tmp: Path
) -> runner.EvalResult:
    progress = not args.quiet
    if detect(args.dataset) == "beir":
        dataset, engine = _beir_engine(session, args.dataset, settings, progress)
        result, _ = runner.run_beir(
            engine, dataset, mode, args.k, runner.fixed_subset(dataset, args.limit), progress
        )
    else:
        questions = load_answer_set(args.dataset)
        engine = _answers_engine(session, args, settings, tmp)
        result = runner.run_answers(engine, questions, mode, args.k, args.dataset.stem, progress)
    if getattr(args, "run_file", None):
        write_run(args.run_file, result.run, f"newsqa-{mode}")
    result.settings = runner.describe_settings(settings)
    return result


def _print_result(result: runner.EvalResult, show_missed: bool = True) -> None:
    print(f"\n{result.dataset}  mode={result.mode}  queries={result.queries}")
    for name, value in result.metrics.items():
        print(f"  {name:10} {value:.4f}")
    print(f"  latency    p50 {result.latency_ms['p50']} ms, p95 {result.latency_ms['p95']} ms")
    if result.by_kind:
        keys = list(next(iter(result.by_kind.values())))
        print("  by kind:   " + "  ".join(f"{k:>9}" for k in keys))
        for kind, row in result.by_kind.items():
            print(f"  {kind:10} " + "  ".join(f"{row[k]:>9.3g}" for k in keys))
    if show_missed and result.missed:
        print(f"  missed ({len(result.missed)}):")
        for m in result.missed:
            print(
                f"    {m['id']} [{m['kind']}] {m['question']}  -> {m['answers']} (rank {m['rank']})"
            )


def cmd_run(args) -> int:
    session = Session(get_settings())
    with tempfile.TemporaryDirectory() as tmp:
        result = run_one(session, args, session.settings, args.mode, Path(tmp))
    _print_result(result)
    if args.report:
        args.report.write_text(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
        print(f"report written to {args.report}")
    if args.run_file:
        print(f"run file written to {args.run_file}")
    return 0


def cmd_compare(args) -> int:
    session = Session(get_settings())
    variants = args.variant or [("default", {})]
    rows: list[tuple[str, runner.EvalResult]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in variants:
            settings = session.with_settings(overrides)
            for mode in args.modes:
                rows.append((name, run_one(session, args, settings, mode, Path(tmp))))
    metrics = list(rows[0][1].metrics)
    header = f"{'variant':14} {'mode':7} " + " ".join(f"{m:>10}" for m in metrics) + "   p50 ms"
    print("\n" + header)
    print("-" * len(header))
    for name, r in rows:
        values = " ".join(f"{r.metrics[m]:>10.4f}" for m in metrics)
        print(f"{name:14} {r.mode:7} {values}   {r.latency_ms['p50']:>6}")
    if args.plot:
        _plot(rows, args.plot)
        print(f"plot written to {args.plot}")
    if args.report:
        data = [{"variant": n} | r.to_json() for n, r in rows]
        args.report.write_text(json.dumps(data, ensure_ascii=False, indent=2))
    return 0


def cmd_tokenizers(args) -> int:
    session = Session(get_settings())
    dataset = load_beir(args.dataset)
    path = runner.beir_index(
        dataset, session.indexer(), session.settings.data_dir / "eval-cache", not args.quiet
    )
    results = runner.bm25_tokenizer_study(
        path, dataset, session.settings, TOKENIZER_MODES, args.k, args.limit
    )
    names = list(next(iter(results.values())))
    print(f"{'jieba mode':10} " + " ".join(f"{n:>10}" for n in names))
    for mode, metrics in results.items():
        print(f"{mode:10} " + " ".join(f"{metrics[n]:>10.4f}" for n in names))
    return 0


def _plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in rows:
        keys = [k for k in r.metrics if k.startswith(("Recall@", "Hit@"))]
        kind = "Recall" if any(k.startswith("Recall@") for k in keys) else "Hit"
        keys = [k for k in keys if k.startswith(kind)]
        xs = [int(k.split("@")[1]) for k in keys]
        label = r.mode if name == "default" else f"{name} {r.mode}"
        ax.plot(xs, [r.metrics[k] for k in keys], marker="o", label=label)
        ax.set_ylabel(f"{kind}@k")
    ax.set_xlabel("k")
    ax.set_title(rows[0][1].dataset)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m eval", description="Offline retrieval evaluation on gold sets."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument(
            "--dataset",
            type=Path,
            required=True,
            help="a BEIR folder (corpus.jsonl, queries.jsonl, qrels.tsv) or a .jsonl answer set",
        )
        p.add_argument("--index", type=Path, help="index for answer sets (default: settings)")
        p.add_argument(
            "--sources",
            type=Path,
            nargs="+",
            help="for answer sets: build a fresh index of these files instead",
        )
        p.add_argument("--k", type=_ks, default=[1, 3, 5, 10], help="cut-offs, e.g. 1,3,5,10")
        p.add_argument("--limit", type=int, help="BEIR: a fixed subset of this many queries")
        p.add_argument("--report", type=Path, help="write a JSON report here")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("run", help="score one mode on one dataset")
    common(p)
    p.add_argument("--mode", choices=SEARCH_MODES, default="hybrid")
    p.add_argument(
        "--run-file",
        type=Path,
        help="write a TREC run file here (documents for BEIR, passages for answer sets)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("compare", help="all modes (and variants) side by side, with a plot")
    common(p)
    p.add_argument("--modes", nargs="+", choices=SEARCH_MODES, default=list(SEARCH_MODES))
    p.add_argument(
        "--variant",
        type=_variant,
        action="append",
        help="name:setting=value,... e.g. small:chunk_target_chars=120,chunk_max_chars=200",
    )
    p.add_argument(
        "--plot",
        type=Path,
        default=get_settings().data_dir / "recall.png",
        help="PNG of Recall@k (default: recall.png in the data directory)",
    )
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("tokenizers", help="BM25 alone with each jieba mode on a BEIR folder")
    common(p)
    p.set_defaults(func=cmd_tokenizers)

    from eval import bench, script_check

    bench.add_parser(sub)
    script_check.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DatasetError, store.IndexStoreError, models.ModelError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
