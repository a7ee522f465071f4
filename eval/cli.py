"""``python -m eval``: score retrieval on gold sets, compare modes and settings, benchmark."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from eval import calibrate, corpus, runner
from eval.datasets import DatasetError, detect, load_beir, load_questions
from eval.runfile import write_run
from indexer import models, store
from indexer.choices import SEARCH_MODES, TOKENIZER_MODES, SearchMode
from indexer.settings import Settings, get_settings
from qa_service.calibration import THRESHOLDS


def _ks(text: str) -> list[int]:
    try:
        ks = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k takes numbers like 1,3,5,10, not {text!r}") from None
    if not ks or ks[0] < 1:
        raise argparse.ArgumentTypeError("--k values must be positive")
    return ks


@dataclass(frozen=True)
class DatasetSpec:
    """``--dataset PATH[=SOURCE]``: a gold set and, for answer sets, what to score it against
    (an index, a corpus ``.jsonl``/``.jsonl.gz``, a BEIR folder or source files; without one,
    ``--index``/``--sources`` or the configured index)."""

    path: Path
    source: Path | None = None

    @property
    def name(self) -> str:
        return self.path.name if self.path.is_dir() else self.path.stem


def _dataset(text: str) -> DatasetSpec:
    path, sep, source = text.partition("=")
    if sep and not source:
        raise argparse.ArgumentTypeError(f"--dataset {text!r}: nothing after '='")
    return DatasetSpec(Path(path), Path(source) if sep else None)


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


def _answers_engine(session: Session, args, spec: DatasetSpec, questions, settings, tmp: Path):
    """An engine over the dataset's source, else --index, else a fresh index of --sources
    (one per index settings), else the configured index."""
    source = spec.source
    progress = not args.quiet
    cache = settings.data_dir / "eval-cache"
    if source is not None and corpus.is_corpus(source) and source.is_file():
        wanted = {str(q.extra["article"]) for q in questions if q.extra.get("article")}
        path = corpus.corpus_index(
            source, session.indexer(settings), cache, wanted, args.corpus_part, progress
        )
        return session.engine(path, settings)
    if source is not None and store.is_index(source):
        return session.engine(source, settings)
    if source is not None and (source / "corpus.jsonl").is_file():
        _, engine = _beir_engine(session, source, settings, progress)
        return engine
    sources = [source] if source is not None else getattr(args, "sources", None)
    if not sources:
        return session.engine(args.index or settings.index_dir, settings)
    from indexer.embed import resolve_dtype
    from indexer.manifest import expected_settings
    from indexer.pipeline import build, iter_sources

    # One index per (index settings as the manifest records them, dtype of the vectors).
    recorded = asdict(expected_settings(settings))
    key = json.dumps(
        [recorded, resolve_dtype(settings.model_dtype), [str(s) for s in sources]], sort_keys=True
    )
    path = tmp / f"index-{hashlib.sha1(key.encode()).hexdigest()[:12]}"
    if not path.exists():
        build(path, iter_sources(sources), indexer=session.indexer(settings), progress=False)
    return session.engine(path, settings)


def run_one(
    session: Session,
    args,
    spec: DatasetSpec,
    settings: Settings,
    mode: SearchMode,
    tmp: Path,
) -> runner.EvalResult:
    progress = not args.quiet
    if detect(spec.path) == "beir":
        dataset, engine = _beir_engine(session, spec.path, settings, progress)
        result, _ = runner.run_beir(
            engine, dataset, mode, args.k, runner.fixed_subset(dataset, args.limit), progress
        )
    else:
        questions = runner.fixed_questions(load_questions(spec.path), args.limit)
        engine = _answers_engine(session, args, spec, questions, settings, tmp)
        result = runner.run_answers(engine, questions, mode, args.k, spec.name, progress)
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
        keys = list(dict.fromkeys(k for row in result.by_kind.values() for k in row))
        print("  by kind:     " + "  ".join(f"{k:>10}" for k in keys))
        for kind, row in result.by_kind.items():
            cells = (f"{row[k]:>10.3g}" if k in row else f"{'-':>10}" for k in keys)
            print(f"  {kind:12} " + "  ".join(cells))
    if show_missed and result.missed:
        print(f"  missed ({len(result.missed)}):")
        for m in result.missed:
            print(
                f"    {m['id']} [{m['kind']}] {m['question']}  -> {m['answers']} (rank {m['rank']})"
            )


def cmd_run(args) -> int:
    if args.run_file and len(args.dataset) > 1:
        raise DatasetError("--run-file takes one --dataset")
    session = Session(get_settings())
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.dataset:
            results.append(run_one(session, args, spec, session.settings, args.mode, Path(tmp)))
            _print_result(results[-1])
    if len(results) > 1:
        _print_table([(r.dataset, "default", r) for r in results])
    if args.report:
        data = results[0].to_json() if len(results) == 1 else [r.to_json() for r in results]
        args.report.write_text(json.dumps(data, ensure_ascii=False, indent=2))
        print(f"report written to {args.report}")
    if args.run_file:
        print(f"run file written to {args.run_file}")
    return 0


def cmd_calibrate(args) -> int:
    session = Session(get_settings())

    def engine(spec: DatasetSpec, questions, tmp: Path):
        return _answers_engine(session, args, spec, questions, session.settings, tmp)

    return calibrate.cmd_calibrate(args, engine)


def _print_table(rows: list[tuple[str, str, runner.EvalResult]]) -> None:
    """One line per (dataset, variant, mode); a metric a dataset lacks shows as -."""
    metrics = list(dict.fromkeys(m for *_, r in rows for m in r.metrics))
    header = (
        f"{'dataset':16} {'variant':14} {'mode':7} "
        + " ".join(f"{m:>10}" for m in metrics)
        + "   p50 ms"
    )
    print("\n" + header)
    print("-" * len(header))
    for dataset, name, r in rows:
        values = " ".join(
            f"{r.metrics[m]:>10.4f}" if m in r.metrics else f"{'-':>10}" for m in metrics
        )
        print(f"{dataset[:16]:16} {name[:14]:14} {r.mode:7} {values}   {r.latency_ms['p50']:>6}")


def cmd_compare(args) -> int:
    session = Session(get_settings())
    variants = args.variant or [("default", {})]
    rows: list[tuple[str, str, runner.EvalResult]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.dataset:
            for name, overrides in variants:
                settings = session.with_settings(overrides)
                for mode in args.modes:
                    result = run_one(session, args, spec, settings, mode, Path(tmp))
                    rows.append((spec.name, name, result))
    _print_table(rows)
    if args.plot:
        for dataset in dict.fromkeys(d for d, _, _ in rows):
            mine = [(n, r) for d, n, r in rows if d == dataset]
            path = args.plot
            if len(args.dataset) > 1:
                path = args.plot.with_name(f"{args.plot.stem}-{dataset}{args.plot.suffix}")
            _plot(mine, path)
            print(f"plot written to {path}")
    if args.report:
        data = [{"variant": n} | r.to_json() for _, n, r in rows]
        args.report.write_text(json.dumps(data, ensure_ascii=False, indent=2))
    return 0


def cmd_tokenizers(args) -> int:
    session = Session(get_settings())
    dataset = load_beir(args.dataset[0].path)
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
            type=_dataset,
            action="append",
            required=True,
            metavar="PATH[=SOURCE]",
            help="a BEIR folder (corpus.jsonl, queries.jsonl, qrels.tsv), a .jsonl answer set "
            "or a SQuAD .json file; repeat for several. An answer set may name what to score "
            "it against after '=': an index, a corpus .jsonl(.gz) (indexed once, cached), a "
            "BEIR folder (its corpus) or source files",
        )
        p.add_argument("--index", type=Path, help="index for answer sets (default: settings)")
        p.add_argument(
            "--sources",
            type=Path,
            nargs="+",
            help="for answer sets: build a fresh index of these files instead",
        )
        p.add_argument("--k", type=_ks, default=[1, 3, 5, 10], help="cut-offs, e.g. 1,3,5,10")
        p.add_argument(
            "--limit", type=int, help="a fixed subset of this many queries (BEIR, SQuAD)"
        )
        p.add_argument(
            "--corpus-part",
            type=int,
            metavar="N",
            help="a corpus SOURCE: index only the articles the questions name plus N others "
            "(chosen by hash, the same everywhere), e.g. 1500 for a CI-sized index",
        )
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

    p = sub.add_parser(
        "calibrate",
        help="choose one answer threshold (qa_service.calibration) on one set, report others",
        description="Compute each question's answer evidence once, try every value of one "
        "threshold that changes a decision on the --on sets, choose the one that answers the "
        "most answerable questions there while leaving --min-abstained of the unanswerable "
        "ones unanswered (then the most abstentions, then the middle of ties) and report it "
        "on every --dataset. Prints the line for qa_service/calibration.py.",
    )
    p.add_argument("--threshold", choices=THRESHOLDS, required=True, help="which one to choose")
    for flag, text in (
        (
            "--on",
            "an answer set to choose on (repeat: they count as one set); it needs "
            'answerable and unanswerable ("answers": []) questions',
        ),
        ("--dataset", "an answer set to report on (repeat for several)"),
    ):
        p.add_argument(
            flag,
            type=_dataset,
            action="append",
            required=flag == "--on",
            metavar="PATH[=SOURCE]",
            help=f"{text}; SOURCE as for `run`: an index or a corpus .jsonl(.gz)",
        )
    p.add_argument(
        "--min-abstained",
        type=float,
        default=calibrate.MIN_ABSTAINED,
        help="the share of unanswerable questions that must get no answer (default: %(default)s)",
    )
    p.add_argument("--index", type=Path, help="index for sets without '=' (default: settings)")
    p.add_argument("--corpus-part", type=int, metavar="N", help="as for `run`")
    p.add_argument("--report", type=Path, help="write a JSON report here")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_calibrate)

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
