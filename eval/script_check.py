"""``python -m eval script-check``: does a question in one Chinese script find text in the other?

From a BEIR folder in simplified Chinese (CMRC 2018 dev) it writes four folders, converted with
OpenCC (``--to``, Taiwan characters by default): traditional paragraphs with traditional
questions and with the original simplified questions, and simplified paragraphs with
traditional and with simplified questions. Each is scored (nDCG@10 on a fixed subset of
questions) with script folding (``indexer.script``, the ``script_fold`` setting) off and on;
the loss is what a question in the other script costs against one in the text's own script.
The goal of issue 16: a simplified question over traditional text loses at most 0.01 with
folding on.

Folding applies to the BM25 tokens and to what the model embeds. ``--dense`` separates the two:
with the tokens folded as ``--folds`` says, the model embeds the texts unfolded (``none``),
folds only the question (``query``) or the question and the passages (``both``); ``auto``, the
default, is what the service does (``both`` with folding on, ``none`` with it off). Every
vector is cached on disk by the text embedded, so variants that share texts embed them once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from eval import runner
from eval.datasets import find_qrels, load_beir
from indexer import script
from indexer.choices import SEARCH_MODES

CONVERSIONS = ("s2tw", "s2hk", "s2t")
DENSE_VARIANTS = ("auto", "none", "query", "both")  # what is folded before embedding
GOAL = 0.01  # nDCG@10 a simplified question may lose over traditional text
K = 10


@dataclass(frozen=True)
class Pair:
    """One derived BEIR folder: the script of its paragraphs and of its questions."""

    corpus: str  # "traditional" or "simplified"
    questions: str

    @property
    def name(self) -> str:
        return f"{self.corpus[:4]}-corpus-{self.questions[:4]}-questions"


PAIRS = tuple(
    Pair(c, q) for c in ("traditional", "simplified") for q in ("traditional", "simplified")
)


@dataclass
class Row:
    corpus: str
    questions: str
    fold: bool
    dense: str
    mode: str
    ndcg: float


# ------------------------------------------------------------------ the folders


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )


def make_folders(source: Path, out: Path, conversion: str) -> dict[Pair, Path]:
    """The four script pairs of ``source`` (simplified), as BEIR folders under ``out``."""
    import opencc

    to_traditional = opencc.OpenCC(conversion).convert
    data = load_beir(source)
    qrels = find_qrels(Path(source))
    folders = {}
    for pair in PAIRS:
        corpus_fn = to_traditional if pair.corpus == "traditional" else str
        query_fn = to_traditional if pair.questions == "traditional" else str
        folder = out / f"{data.name}-{conversion}-{pair.name}"
        folder.mkdir(parents=True, exist_ok=True)
        _write_jsonl(
            folder / "corpus.jsonl",
            [
                {"_id": d.doc_id, "title": corpus_fn(d.title), "text": corpus_fn(d.text)}
                for d in data.corpus.values()
            ],
        )
        _write_jsonl(
            folder / "queries.jsonl",
            [{"_id": qid, "text": query_fn(text)} for qid, text in data.queries.items()],
        )
        shutil.copyfile(qrels, folder / "qrels.tsv")
        folders[pair] = folder
    return folders


# ------------------------------------------------------------------ cached vectors


class VectorCache:
    """Vectors by (kind, text), kept in one ``.npz``: the folders share most of their texts
    (simplified and folded traditional paragraphs are mostly the same characters)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.vectors: dict[str, np.ndarray] = {}
        if path.exists():
            with np.load(path) as stored:
                self.vectors = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))
        self._dirty = False

    @staticmethod
    def _key(kind: str, text: str) -> str:
        return hashlib.sha1(f"{kind}\n{text}".encode()).hexdigest()

    def get(self, kind: str, texts: list[str], compute) -> np.ndarray:
        keys = [self._key(kind, t) for t in texts]
        missing = list(
            dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in self.vectors)
        )
        if missing:
            for text, vector in zip(missing, compute(missing), strict=True):
                self.vectors[self._key(kind, text)] = vector
            self._dirty = True
        return np.stack([self.vectors[k] for k in keys])

    def save(self) -> None:
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self.vectors)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(keys), vectors=np.stack([self.vectors[k] for k in keys]))
        tmp.replace(self.path)
        self._dirty = False


class CheckEmbedder:
    """An :class:`~indexer.embed.Embedder` that folds what it embeds as the dense variant says
    and takes vectors from a :class:`VectorCache`; everything else is the real embedder's
    (which must not fold by itself)."""

    def __init__(self, inner, cache: VectorCache, variant: str) -> None:
        assert not inner.script_fold, "the check folds what it embeds itself"
        self.inner = inner
        self.cache = cache
        self.fold_queries = variant in ("query", "both")
        self.fold_documents = variant == "both"

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def encode_query(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        texts = [script.fold(t) for t in texts] if self.fold_queries else texts
        return self.cache.get("query", texts, lambda m: self.inner.encode_query(m, batch_size))

    def encode_document(
        self, texts: list[str], batch_size: int | None = None, progress: bool = False
    ) -> np.ndarray:
        texts = [script.fold(t) for t in texts] if self.fold_documents else texts
        return self.cache.get(
            "document", texts, lambda m: self.inner.encode_document(m, batch_size, progress)
        )


# ------------------------------------------------------------------ the check


def dense_variant(variant: str, fold: bool) -> str:
    """What ``auto`` means: the service folds what it embeds exactly when it folds tokens."""
    if variant != "auto":
        return variant
    return "both" if fold else "none"


def run_check(args, settings, progress: bool) -> list[Row]:
    from indexer.embed import Embedder, resolve_dtype
    from indexer.pipeline import Indexer
    from qa_service.engine import open_engine

    work = settings.data_dir / "eval-cache" / "script-check"
    folders = make_folders(args.dataset, work / "folders", args.to)
    inner = Embedder(settings=settings.model_copy(update={"script_fold": False}))
    dtype = resolve_dtype(settings.model_dtype)
    cache = VectorCache(work / f"vectors-{inner.identity.name}-{dtype}.npz")
    rows: list[Row] = []
    done: set[tuple] = set()  # BM25 ignores the dense variant, dense mode the token folding
    try:
        for fold in args.folds:
            s = settings.model_copy(update={"script_fold": fold})
            for variant in dict.fromkeys(dense_variant(v, fold) for v in args.dense):
                embedder = CheckEmbedder(inner, cache, variant)
                docs = "folded" if embedder.fold_documents else "original"
                indexer = Indexer(s, embedder=embedder)
                for pair, folder in folders.items():
                    keys = {
                        "bm25": ("bm25", fold, pair),
                        "dense": ("dense", variant, pair),
                        "hybrid": ("hybrid", fold, variant, pair),
                    }
                    modes = [m for m in args.modes if keys[m] not in done]
                    if not modes:
                        continue
                    dataset = load_beir(folder)
                    path = runner.beir_index(dataset, indexer, work / f"index-{docs}", progress)
                    cache.save()
                    engine = open_engine(path, s, embedder)
                    subset = runner.fixed_subset(dataset, args.limit)
                    if modes != ["bm25"]:  # the questions in one batch, not one by one
                        qids = subset or dataset.judged_query_ids
                        embedder.encode_query([dataset.queries[q] for q in qids])
                    for mode in modes:
                        result, _ = runner.run_beir(engine, dataset, mode, [K], subset, progress)
                        ndcg = result.metrics[f"nDCG@{K}"]
                        rows.append(Row(pair.corpus, pair.questions, fold, variant, mode, ndcg))
                        done.add(keys[mode])
                    cache.save()
    finally:
        cache.save()
    return rows


def losses(rows: list[Row]) -> list[dict]:
    """Per corpus script, folding, dense variant and mode: nDCG@10 of questions in the text's
    own script and in the other, and the loss (own minus other)."""
    table: dict[tuple, dict[str, float]] = {}
    for r in rows:
        table.setdefault((r.corpus, r.fold, r.dense, r.mode), {})[r.questions] = r.ndcg
    out = []
    for (corpus, fold, dense, mode), by_q in table.items():
        other = "simplified" if corpus == "traditional" else "traditional"
        own_v, other_v = by_q.get(corpus), by_q.get(other)
        if own_v is None or other_v is None:
            continue
        out.append(
            {
                "corpus": corpus,
                "fold": fold,
                "dense": dense,
                "mode": mode,
                "same_script": own_v,
                "other_script": other_v,
                "loss": round(own_v - other_v, 4),
            }
        )
    return out


def print_table(summary: list[dict], args) -> None:
    print(f"\nnDCG@{K}, {args.limit or 'all'} questions, traditional = OpenCC {args.to}")
    header = f"{'corpus':12} {'fold':5} {'dense':6} {'mode':7} {'same script':>12} {'other':>8} {'loss':>8}"
    print(header)
    print("-" * len(header))
    for s in summary:
        print(
            f"{s['corpus']:12} {'on' if s['fold'] else 'off':5} {s['dense']:6} {s['mode']:7} "
            f"{s['same_script']:>12.4f} {s['other_script']:>8.4f} {s['loss']:>+8.4f}"
        )

    def as_served(s: dict) -> bool:  # folding on: tokens and embedded texts folded
        return s["fold"] and (s["mode"] == "bm25" or s["dense"] == "both")

    goal = [s for s in summary if s["corpus"] == "traditional" and as_served(s)]
    for s in goal:
        verdict = "met" if s["loss"] <= GOAL else "NOT met"
        print(
            f"goal ({s['mode']}): a simplified question over traditional text loses "
            f"{s['loss']:+.4f} (at most {GOAL}): {verdict}"
        )


def cmd_script_check(args) -> int:
    from eval.bench.common import load_average, machine
    from indexer.settings import get_settings

    print(f"machine: {machine()}; date: {time.strftime('%Y-%m-%d')}; {load_average()}", flush=True)
    start = time.perf_counter()
    rows = run_check(args, get_settings(), not args.quiet)
    summary = losses(rows)
    print_table(summary, args)
    print(f"took {time.perf_counter() - start:.0f} s; {load_average()}")
    if args.report:
        report = {"conversion": args.to, "limit": args.limit, "rows": [asdict(r) for r in rows]}
        args.report.write_text(json.dumps(report | {"summary": summary}, indent=2))
        print(f"report written to {args.report}")
    return 0


def _on_off(text: str) -> bool:
    if text not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"--folds takes on and/or off, not {text!r}")
    return text == "on"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "script-check",
        help="simplified vs traditional questions over traditional and simplified text",
    )
    p.add_argument(
        "--dataset", type=Path, required=True, help="a BEIR folder in simplified Chinese"
    )
    p.add_argument("--limit", type=int, default=300, help="a fixed subset of this many queries")
    p.add_argument("--to", choices=CONVERSIONS, default="s2tw", help="OpenCC conversion")
    p.add_argument("--modes", nargs="+", choices=SEARCH_MODES, default=["bm25", "hybrid"])
    p.add_argument(
        "--folds", nargs="+", type=_on_off, default=[False, True], help="tokenizer folding: off on"
    )
    p.add_argument(
        "--dense",
        nargs="+",
        choices=DENSE_VARIANTS,
        default=["auto"],
        help="what the model embeds folded: auto (as the service), none, query, both",
    )
    p.add_argument("--report", type=Path, help="write a JSON report here")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_script_check)
