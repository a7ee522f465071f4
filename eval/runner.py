"""Run a gold set through the retriever in-process and score it.

Two kinds of gold set (see ``eval.datasets``):

* a BEIR folder: its corpus is indexed (and the index cached, keyed by the corpus hash, the
  model and every index setting), every query is answered, passages are collapsed to their
  documents and scored at document level; a TREC run file can be written.
* an answer-string set over an existing index: a passage is a hit when it contains a gold
  answer; the ``/ask`` answer text is scored the same way (``eval.metrics``); the run file
  lists the passages each question retrieved.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from eval.datasets import AnswerQuestion, BeirDataset
from eval.metrics import (
    MRR_K,
    answer_set_means,
    collapse_to_docs,
    evaluate,
    first_answer_rank,
    percentile,
    score_answers,
    score_unanswerable,
)
from indexer import store
from indexer.choices import SearchMode, TokenizerMode
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
    mode: SearchMode
    queries: int
    metrics: dict[str, float]
    latency_ms: dict[str, float]
    by_kind: dict[str, dict[str, float]] = field(default_factory=dict)
    missed: list[dict] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    run: dict[str, list[tuple[str, float]]] = field(default_factory=dict, repr=False)
    """What was retrieved, for a TREC run file: documents (BEIR) or passages (answer sets)."""
    per_question: list[dict] = field(default_factory=list, repr=False)
    """Answer sets: each question's rank, metrics, answer and confidence (in the report)."""

    def to_json(self) -> dict:
        report = asdict(self)
        del report["run"]
        return report


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
    if store.is_index(path):
        return path  # else missing or damaged: (re)build it
    articles = [
        article_from_record(
            {"id": doc.doc_id, "title": doc.title or doc.doc_id, "text": doc.text},
            f"corpus.jsonl#{doc.doc_id}",
        )
        for doc in dataset.corpus.values()
    ]
    content = store.IndexContent()
    indexer.apply(content, articles, set(), UpdateReport(), progress=progress)
    store.write_index(path, content, indexer.index_settings(), indexer.build_info())
    return path


def fixed_subset(dataset: BeirDataset, limit: int | None) -> list[str] | None:
    """A fixed sample of ``limit`` judged queries: the same ids on every machine and run."""
    if not limit:
        return None
    ids = dataset.judged_query_ids
    return sorted(ids, key=_id_hash)[:limit]


def fixed_questions(questions: list[AnswerQuestion], limit: int | None) -> list[AnswerQuestion]:
    """A fixed sample of an answer set, chosen as ``fixed_subset`` chooses BEIR queries (so
    CMRC's SQuAD file and its BEIR folder give the same 500 questions); in file order."""
    if not limit:
        return questions
    keep = set(sorted((q.id for q in questions), key=_id_hash)[:limit])
    return [q for q in questions if q.id in keep]


def _id_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def run_beir(
    engine: Engine,
    dataset: BeirDataset,
    mode: SearchMode,
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
    result = EvalResult(dataset.name, mode, len(qids), report.mean, _latency(latencies), run=run)
    return result, run


# ------------------------------------------------------------------- answers


def run_answers(
    engine: Engine,
    questions: list[AnswerQuestion],
    mode: SearchMode,
    ks: list[int],
    name: str,
    progress: bool = True,
) -> EvalResult:
    """Ask every question; passage and answer metrics over the answerable ones, abstention
    over the unanswerable ones (``eval.metrics.answer_set_means``), overall and by kind."""
    depth = max([*ks, MRR_K])
    per_question: list[dict] = []
    run: dict[str, list[tuple[str, float]]] = {}
    latencies = []
    for q in tqdm(questions, desc=f"{name} {mode}", unit="q", disable=not progress):
        start = time.perf_counter()
        result = engine.ask(q.question, depth, mode)
        latencies.append((time.perf_counter() - start) * 1000)
        run[q.id] = [
            (engine.index.passages[r.row].passage_id, r.hit.score) for r in result.passages
        ]
        answer_text = result.answer.text if result.answer else ""
        if q.answerable:
            texts = [engine.index.passages[r.row].text for r in result.passages]
            rank = first_answer_rank(texts, q.answers)
            values = score_answers(rank, answer_text, q.answers, ks, MRR_K)
        else:
            rank, values = None, score_unanswerable(answer_text)
        per_question.append(
            {"id": q.id, "kind": q.kind or "", "rank": rank}
            | values
            | {
                "question": q.question,
                "answers": q.answers,
                "answer": answer_text,
                "confidence": result.answer.confidence if result.answer else None,
            }
        )

    def mean(rows: list[dict]) -> dict[str, float]:
        return {k: round(v, 4) for k, v in answer_set_means(rows, ks, MRR_K).items()}

    by_kind = {}
    for kind in sorted({r["kind"] for r in per_question}):
        rows = [r for r in per_question if r["kind"] == kind]
        by_kind[kind or "-"] = {"n": len(rows)} | mean(rows)
    missed = [
        {k: r[k] for k in ("id", "kind", "question", "answers", "rank")}
        for r in per_question
        if r["answers"] and (r["rank"] is None or r["rank"] > max(ks))
    ]
    return EvalResult(
        name,
        mode,
        len(questions),
        mean(per_question),
        _latency(latencies),
        by_kind=by_kind,
        missed=missed,
        run=run,
        per_question=per_question,
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
    index_path: Path,
    dataset: BeirDataset,
    settings: Settings,
    modes: Iterable[TokenizerMode],
    ks: list[int],
    limit: int | None,
) -> dict[str, dict[str, float]]:
    """BM25 alone (the settings' k1 and b) over an existing index's passages, once per jieba
    mode (no embedding needed)."""
    from indexer.keywords import build_bm25
    from indexer.pipeline import Indexer
    from indexer.tokenize import ChineseTokenizer

    _, content = store.load_content(index_path)
    texts = [Indexer.indexed_text(p, content.articles[p.article_id]) for p in content.passages]
    qids = fixed_subset(dataset, limit) or dataset.judged_query_ids
    results = {}
    for mode in modes:
        tokenizer = ChineseTokenizer(mode, settings.user_dict, settings.script_fold)
        bm25 = build_bm25(tokenizer.tokenize_many(texts), settings.bm25_k1, settings.bm25_b)
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
