"""A real news corpus (JSON lines, gzip: ``id``, ``date``, ``text``) through the real pipeline:
build time and size, then in-process hybrid search and ``Engine.ask`` latency on questions cut
from its passages."""

from __future__ import annotations

import gzip
import json
import os
import random
import time
from pathlib import Path

from eval.bench.common import dir_bytes, rss_mb
from eval.metrics import percentile
from indexer.chunk import sentence_bounds


def _sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_bounds(text)]


def corpus_title(text: str) -> str:
    """The first sentence when it is short enough for a headline, else the first 30 chars."""
    sentences = _sentences(text)
    first = sentences[0] if sentences else text.strip()
    return first if len(first) <= 40 else first[:30]


def read_corpus(path: Path, limit: int | None) -> list[dict]:
    records = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                records.append(json.loads(line))
                if limit and len(records) >= limit:
                    break
    return records


def corpus_questions(passages: list, n: int, seed: int) -> list[tuple[str, str]]:
    """(query, article id): the first 12 characters of a sentence of a random passage."""
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    tries = 0
    while len(out) < n and tries < 50 * n:
        tries += 1
        p = passages[rng.randrange(len(passages))]
        candidates = [s for s in _sentences(p.text) if len(s) >= 16]
        if candidates:
            out.append((rng.choice(candidates)[:12], p.article_id))
    return out


def _build_corpus_index(records: list[dict], name: str, indexer, out: Path, dtype: str) -> dict:
    """Ingest, chunk, embed, tokenize and write: the pipeline's figures."""
    from indexer import store
    from indexer.ingest import article_from_record
    from indexer.pipeline import UpdateReport

    start = time.perf_counter()
    articles = [
        article_from_record(
            {
                "id": r["id"],
                "title": corpus_title(r["text"]),
                "text": r["text"],
                "date": r.get("date"),
            },
            f"{name}#{r['id']}",
        )
        for r in records
    ]
    ingest_s = time.perf_counter() - start
    content = store.IndexContent()
    indexer.apply(content, articles, set(), UpdateReport(), progress=True)
    embed_s = time.perf_counter() - start - ingest_s
    version = store.write_index(
        out, content, indexer.index_settings(), indexer.build_info()
    ).version
    build_s = time.perf_counter() - start
    return {
        "corpus": name,
        "records": len(records),
        "dtype": dtype,
        "articles": len(content.articles),
        "passages": len(content.passages),
        "build_s": round(build_s, 1),
        "ingest_s": round(ingest_s, 1),
        "chunk_embed_tokenize_s": round(embed_s, 1),
        "write_s": round(build_s - ingest_s - embed_s, 1),
        "passages_per_s": round(len(content.passages) / build_s, 1),
        "index_mb": round(dir_bytes(version) / 1e6, 1),
        "loadavg_1m_after_build": round(os.getloadavg()[0], 2),
    }


def bench_corpus(
    corpus: Path,
    limit: int | None,
    dtype: str,
    questions: int,
    out: Path | None,
    reuse: bool = False,
) -> dict:
    """Index a real corpus with the real pipeline; then search and ask latency in-process.

    With ``reuse`` and an existing ``out``, the build is skipped and only the query side is
    measured (``dtype`` is then the query model's dtype)."""
    import tempfile

    from indexer.embed import Embedder
    from indexer.pipeline import Indexer
    from indexer.settings import get_settings
    from qa_service.engine import open_engine

    settings = get_settings().model_copy(update={"model_dtype": dtype})
    embedder = Embedder(settings=settings, dtype=dtype)
    embedder.encode_document(["预热"] * 8)
    name = corpus.name.removesuffix(".gz")
    tmp = None
    if out is None:
        tmp = tempfile.TemporaryDirectory()
        out = Path(tmp.name) / "index"
    try:
        if reuse and out.exists():
            row = {"corpus": name, "reused_index": str(out), "dtype": embedder.dtype}
        else:
            indexer = Indexer(settings, embedder=embedder)
            records = read_corpus(corpus, limit)
            row = _build_corpus_index(records, name, indexer, out, embedder.dtype)
        rss0 = rss_mb()
        start = time.perf_counter()
        engine = open_engine(out, settings, embedder)
        row["load_s"] = round(time.perf_counter() - start, 2)
        row["load_rss_mb"] = round(rss_mb() - rss0)
        row["index_passages"] = len(engine.index.passages)
        qs = corpus_questions(engine.index.passages, 2 * questions, seed=7)
        search_qs, ask_qs = qs[:questions], qs[questions:]  # disjoint: no query-cache hits
        search_ms, ask_ms, embed_ms, hits, answered = [], [], [], 0, 0
        for q, article_id in search_qs:
            t = time.perf_counter()
            results, _, _ = engine.search(q, 10, "hybrid")
            search_ms.append((time.perf_counter() - t) * 1000)
            hits += any(engine.index.passages[r.row].article_id == article_id for r in results)
        for q, _ in ask_qs:
            t = time.perf_counter()
            result = engine.ask(q, 5, "hybrid")
            ask_ms.append((time.perf_counter() - t) * 1000)
            embed_ms.append(result.timings["embed_ms"])
            answered += result.answer is not None
        row |= {
            "questions": len(search_qs),
            "search_p50_ms": round(percentile(search_ms, 50), 1),
            "search_p95_ms": round(percentile(search_ms, 95), 1),
            "ask_p50_ms": round(percentile(ask_ms, 50), 1),
            "ask_p95_ms": round(percentile(ask_ms, 95), 1),
            "ask_embed_p50_ms": round(percentile(embed_ms, 50), 1),
            "source_article_in_top10": round(hits / max(1, len(search_qs)), 3),
            "ask_answered": round(answered / max(1, len(ask_qs)), 3),
            "loadavg_1m": round(os.getloadavg()[0], 2),
            "example_queries": [q for q, _ in search_qs[:3]],
        }
        print(json.dumps(row, ensure_ascii=False), flush=True)
        return row
    finally:
        if tmp is not None:
            tmp.cleanup()
