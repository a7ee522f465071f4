"""Run a gold set through the retriever in-process and score it.

Two kinds of gold set (see ``eval.datasets``):

* a BEIR folder: its corpus is indexed (and the index cached, keyed by the corpus hash, the
  model and every index setting), every query is answered, passages are collapsed to their
  documents and scored at document level; a TREC run file can be written.
* an answer-string set over an existing index: a passage is a hit when it contains a gold
  answer; the ``/ask`` answer text is scored the same way.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from eval.datasets import AnswerQuestion, BeirDataset, answer_hit
from eval.metrics import collapse_to_docs, evaluate, percentile
from indexer import store
from indexer.embed import resolve_dtype
from indexer.ingest import article_from_record
from indexer.pipeline import Indexer, UpdateReport
from indexer.settings import Settings
from qa_service.engine import Engine

RUN_DEPTH = 100  # documents per query in run files (what trec_eval-style tools expect)
PASSAGE_DEPTH = 1000  # passages fetched to fill RUN_DEPTH documents


@dataclass
class EvalResult:
    dataset: str
    mode: str
    queries: int
    metrics: dict[str, float]
    latency_ms: dict[str, float]
    by_kind: dict[str, dict[str, float]] = field(default_factory=dict)
    missed: list[dict] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def _latency(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0}
    return {"p50": round(percentile(values, 50), 2), "p95": round(percentile(values, 95), 2)}


# ---------------------------------------------------------------------- BEIR


def beir_cache_key(dataset: BeirDataset, indexer: Indexer) -> str:
    """The corpus, every index setting and the dtype the vectors were computed in."""
    settings = json.dumps(asdict(indexer.index_settings()), sort_keys=True)
    key = f"{dataset.corpus_sha256}|{settings}|{indexer.embedder.dtype}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def beir_index(dataset: BeirDataset, indexer: Indexer, cache_dir: Path, progress: bool) -> Path:
    """The index of a BEIR corpus, built once per (corpus, model, settings)."""
    path = cache_dir / f"{dataset.name}-{beir_cache_key(dataset, indexer)}" / "index"
    if path.exists():
        try:
            store.read_manifest(store.resolve_version(path))
            return path
        except store.IndexStoreError:
            pass  # damaged cache: rebuild it
    articles = [
        article_from_record(
            {"id": doc.doc_id, "title": doc.title or doc.doc_id, "text": doc.text},
            f"corpus.jsonl#{doc.doc_id}",
        )
        for doc in dataset.corpus.values()
    ]
    content = store.IndexContent()
    indexer.apply(content, articles, set(), UpdateReport(), progress=progress)
    store.write_index(path, content, indexer.index_settings())
    return path


def fixed_subset(dataset: BeirDataset, limit: int | None) -> list[str] | None:
    """A fixed sample of ``limit`` judged queries: the same ids on every machine and run."""
    if not limit:
        return None
    ids = dataset.judged_query_ids
    return sorted(ids, key=lambda q: hashlib.sha1(q.encode()).hexdigest())[:limit]


def run_beir(
    engine: Engine,
    dataset: BeirDataset,
    mode: str,
    ks: list[int],
    query_ids: list[str] | None = None,
    progress: bool = True,
) -> tuple[EvalResult, dict[str, list[tuple[str, float]]]]:
    qids = query_ids or dataset.judged_query_ids
    run: dict[str, list[tuple[str, float]]] = {}
    latencies = []
    for qid in tqdm(qids, desc=f"{dataset.name} {mode}", unit="q", disable=not progress):
        start = time.perf_counter()
        results, _, _ = engine.search(dataset.queries[qid], PASSAGE_DEPTH, mode, highlight=False)
        latencies.append((time.perf_counter() - start) * 1000)
        ranked = [(engine.index.passages[r.row].article_id, r.hit.score) for r in results]
        run[qid] = collapse_to_docs(ranked)[:RUN_DEPTH]
    qrels = {q: dataset.qrels[q] for q in qids}
    report = evaluate(run, qrels, ks)
    result = EvalResult(dataset.name, mode, len(qids), report.mean, _latency(latencies))
    return result, run


# ------------------------------------------------------------------- answers


def run_answers(
    engine: Engine,
    questions: list[AnswerQuestion],
    mode: str,
    ks: list[int],
    name: str,
    progress: bool = True,
) -> EvalResult:
    depth = max([*ks, 10])
    per_question: list[dict] = []
    latencies = []
    for q in tqdm(questions, desc=f"{name} {mode}", unit="q", disable=not progress):
        start = time.perf_counter()
        result = engine.ask(q.question, depth, mode)
        latencies.append((time.perf_counter() - start) * 1000)
        texts = [engine.index.passages[r.row].text for r in result.passages]
        first = next((i for i, t in enumerate(texts) if answer_hit(t, q.answers)), None)
        answer_text = result.answer.text if result.answer else ""
        row = {
            "id": q.id,
            "kind": q.kind or "",
            "rank": None if first is None else first + 1,
            "answer_hit": bool(answer_text) and answer_hit(answer_text, q.answers),
        }
        for k in ks:
            row[f"Hit@{k}"] = float(first is not None and first < k)
        row["MRR@10"] = 1.0 / (first + 1) if first is not None and first < 10 else 0.0
        per_question.append(
            row | {"question": q.question, "answers": q.answers, "answer": answer_text}
        )

    def mean(rows: list[dict], key: str) -> float:
        return round(sum(float(r[key]) for r in rows) / len(rows), 4) if rows else 0.0

    keys = [f"Hit@{k}" for k in ks] + ["MRR@10", "answer_hit"]
    metrics = {k if k != "answer_hit" else "AnswerHit": mean(per_question, k) for k in keys}
    by_kind = {}
    for kind in sorted({r["kind"] for r in per_question}):
        rows = [r for r in per_question if r["kind"] == kind]
        by_kind[kind or "-"] = {"n": len(rows)} | {
            k if k != "answer_hit" else "AnswerHit": mean(rows, k) for k in keys
        }
    missed = [
        {k: r[k] for k in ("id", "kind", "question", "answers", "rank")}
        for r in per_question
        if r["rank"] is None or r["rank"] > max(ks)
    ]
    return EvalResult(
        name, mode, len(questions), metrics, _latency(latencies), by_kind=by_kind, missed=missed
    )


def describe_settings(settings: Settings) -> dict:
    return {
        "model": settings.model,
        "dtype": resolve_dtype(settings.model_dtype),
        "chunk_target_chars": settings.chunk_target_chars,
        "chunk_max_chars": settings.chunk_max_chars,
        "chunk_overlap_sentences": settings.chunk_overlap_sentences,
        "faiss": settings.faiss_kind,
        "fusion": settings.fusion,
        "fusion_weight": settings.fusion_weight,
    }


def bm25_tokenizer_study(
    index_path: Path, dataset: BeirDataset, modes: list[str], ks: list[int], limit: int | None
) -> dict[str, dict[str, float]]:
    """BM25 alone over an existing index's passages, once per jieba mode (no embedding needed)."""
    from indexer.pipeline import Indexer
    from indexer.store import build_bm25
    from indexer.tokenize import ChineseTokenizer

    _, content = store.load_content(index_path)
    texts = [Indexer.indexed_text(p, content.articles[p.article_id]) for p in content.passages]
    qids = fixed_subset(dataset, limit) or dataset.judged_query_ids
    results = {}
    for mode in modes:
        tokenizer = ChineseTokenizer(mode=mode)
        bm25 = build_bm25(tokenizer.tokenize_many(texts), 1.2, 0.75)
        run = {}
        for qid in qids:
            tokens = tokenizer.tokenize(dataset.queries[qid])
            scores = bm25.get_scores(tokens) if tokens else []
            ranked = sorted(range(len(scores)), key=lambda i: -scores[i])[:PASSAGE_DEPTH]
            run[qid] = collapse_to_docs(
                [(content.passages[i].article_id, float(scores[i])) for i in ranked]
            )[:RUN_DEPTH]
        results[mode] = evaluate(run, {q: dataset.qrels[q] for q in qids}, ks).mean
    return results
