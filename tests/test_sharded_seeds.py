"""Sharded seed index vs the plain one (issue 15), with the real model: for every seed
question (eval/data/seed_qa.jsonl) in every mode, with filters, /similar and answers, 1, 2
and 3 shards give the same passages in the same order, the same scores and the same
answers, the same facet counts, pages and recency orders; ``build --shards`` gives the plain build's content; and an index updated (a file
added, an article removed) gives what the plain index updated the same way gives, and the
ranking a rebuild gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from indexer import shards, store
from qa_service.retrieval import Filters
from tests.conftest import REPO, SEEDS

SEED_QA = REPO / "eval" / "data" / "seed_qa.jsonl"
MODES = ("hybrid", "dense", "bm25")


def seed_questions() -> list[str]:
    lines = SEED_QA.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def _engine(path, settings, embedder, extractor):
    from indexer import tokenize
    from qa_service.engine import engine_for
    from qa_service.index import load

    return engine_for(load(path), settings, embedder, tokenize.from_settings(settings), extractor)


@pytest.fixture(scope="module")
def sharded_seeds(seed_index, tmp_path_factory) -> dict[int, Path]:
    """The seed index's content split into 1, 2 and 3 shards (the vectors are the plain
    build's: ``build --shards`` splits the content it built, see the test below)."""
    manifest, content = store.load_content(seed_index)
    root = tmp_path_factory.mktemp("sharded-seeds")
    for n in (1, 2, 3):
        shards.write(root / f"s{n}", content, n, manifest.settings)
    return {n: root / f"s{n}" for n in (1, 2, 3)}


@pytest.fixture(scope="module")
def engines(seed_index, sharded_seeds, settings, embedder):
    from qa_service.answer import AnswerExtractor

    extractor = AnswerExtractor(embedder)  # shared: one sentence-vector cache
    out = {0: _engine(seed_index, settings, embedder, extractor)}
    for n, path in sharded_seeds.items():
        out[n] = _engine(path, settings, embedder, extractor)
    return out


def _search(engine, q, top_k, mode, filters=None):
    results, analysis, _ = engine.search(q, top_k, mode, filters)
    return [
        (engine.index.passages[r.row].passage_id, r.hit.score, r.hit.dense, r.hit.bm25)
        for r in results
    ], (analysis.coverage, analysis.background)


def _page(engine, q, mode, **kw):
    results, _, _ = engine.search(q, 5, mode, **kw)
    return [(engine.index.passages[r.row].passage_id, r.hit.score) for r in results]


def _facets(engine, q, mode, filters=None):
    from qa_service import facets

    _, analysis, _ = engine.search(q, 3, mode, filters)
    return facets.facets(engine.retriever, q, analysis, mode, filters, ["month", "source"])


def _ask(engine, q, mode, filters=None, **kw):
    result = engine.ask(q, 5, mode, filters, **kw)
    a = result.answer
    passages = [(engine.index.passages[r.row].passage_id, r.hit.score) for r in result.passages]
    return passages, None if a is None else (a.text, a.citations, a.confidence)


@pytest.mark.slow
@pytest.mark.parametrize("n", (1, 2, 3))
def test_every_seed_question_in_every_mode(engines, n):
    plain, sharded = engines[0], engines[n]
    dated = Filters(date_from="2023-02-08", source="日报")
    for q in seed_questions():
        for mode in MODES:
            assert _search(sharded, q, 10, mode) == _search(plain, q, 10, mode), (q, mode)
            assert _ask(sharded, q, mode) == _ask(plain, q, mode), (q, mode)
        assert _search(sharded, q, 10, "hybrid", dated) == _search(plain, q, 10, "hybrid", dated)


@pytest.mark.parametrize("n", (1, 2, 3))
def test_facets_paging_and_recency(engines, n):
    """Facet counts (keyword matches with the whole index's idf, the nearest passages of all
    shards above the background), pages (``offset``) and the recency boost, as the plain
    index gives them."""
    plain, sharded = engines[0], engines[n]
    filters = (None, Filters(date_from="2023-02-08"), Filters(source="日报"))
    nonempty = 0
    for q in [*seed_questions()[::4], "重庆", "数据", "雷锋", "completely unrelated nonsense"]:
        for mode in MODES:
            for f in filters:
                want = _facets(plain, q, mode, f)
                assert _facets(sharded, q, mode, f) == want, (q, mode, f)
                nonempty += bool(want["month"])
            for offset in (0, 5, 40):
                assert _page(sharded, q, mode, offset=offset) == _page(
                    plain, q, mode, offset=offset
                )
            for days in (3.0, 30.0):
                kw = {"recency_half_life_days": days}
                assert _page(sharded, q, mode, **kw) == _page(plain, q, mode, **kw)
                assert _ask(sharded, q, mode, **kw) == _ask(plain, q, mode, **kw)
    assert nonempty > 20  # the counts compared are not all empty


@pytest.mark.parametrize("n", (2, 3))
def test_similar_and_articles(engines, n):
    from qa_service import schemas

    plain, sharded = engines[0], engines[n]
    for p in plain.index.passages[::17]:
        for level in ("passage", "article"):
            a = plain.similar(passage_id=p.passage_id, top_k=8, level=level)
            b = sharded.similar(passage_id=p.passage_id, top_k=8, level=level)
            assert schemas.SimilarResponse.from_found(
                level, a, plain.index, ""
            ) == schemas.SimilarResponse.from_found(level, b, sharded.index, "")
    for aid in list(plain.index.articles)[::5]:
        a = plain.similar(article_id=aid, top_k=5, level="article")
        b = sharded.similar(article_id=aid, top_k=5, level="article")
        assert [(h.article_id, h.score) for h in a] == [(h.article_id, h.score) for h in b]
        assert schemas.ArticleOut.from_article(
            plain.index, plain.index.articles[aid]
        ) == schemas.ArticleOut.from_article(sharded.index, sharded.index.articles[aid])


@pytest.mark.slow
def test_build_with_shards_splits_the_plain_build(seed_index, indexer_obj, tmp_path):
    from indexer.pipeline import build, iter_sources

    report = build(
        tmp_path / "idx", iter_sources([SEEDS]), indexer=indexer_obj, progress=False, shards=3
    )
    assert report.articles == 32 and shards.is_sharded(tmp_path / "idx")
    _, plain = store.load_content(seed_index)
    opened = shards.read_generation(tmp_path / "idx")
    parts = [store.load_version_content(opened.shard_version(i))[1] for i in range(3)]
    whole = shards.merge(parts, opened.generation.source_files)
    mine = {p.passage_id: (p, whole.vectors[i]) for i, p in enumerate(whole.passages)}
    assert len(mine) == len(plain.passages)
    for i, p in enumerate(plain.passages):
        q, v = mine[p.passage_id]
        assert (q.text, q.file, q.start, q.end) == (p.text, p.file, p.start, p.end)
        assert np.array_equal(v, plain.vectors[i])
    assert whole.files == plain.files


@pytest.mark.slow
def test_add_and_remove_then_compare(seed_index, indexer_obj, settings, embedder, tmp_path):
    """A sharded and a plain index of four seed files; the fifth added, an article removed.
    Both updated the same way answer exactly the same; the sharded one answers exactly as a
    sharded index rebuilt from the archive it now holds; and that archive is the one a build
    of the five files, less the article, makes (the re-added file's vectors up to the batch
    noise of the model's dtype: bfloat16 on CPUs that have it)."""
    from indexer.pipeline import UpdateReport, iter_sources, update
    from qa_service.answer import AnswerExtractor

    manifest, content = store.load_content(seed_index)
    last = sorted(SEEDS.iterdir())[-1]
    indexer_obj.remove_articles(
        content,
        {a.article_id for a in content.articles.values() if a.file == last.name},
        UpdateReport(),
    )
    store.write_index(tmp_path / "plain", content, manifest.settings)
    shards.write(tmp_path / "sharded", content, 3, manifest.settings)
    for path in (tmp_path / "plain", tmp_path / "sharded"):
        report = update(path, sources=iter_sources([SEEDS]), indexer=indexer_obj)
        assert report.articles_added > 0 and report.files_skipped == 4
    victim = sorted(content.articles)[3]
    for path in (tmp_path / "plain", tmp_path / "sharded"):
        assert update(path, remove={victim}, indexer=indexer_obj).articles_removed == 1
    assert shards.read_generation(tmp_path / "sharded").generation.number == 3

    _, now = store.load_content(tmp_path / "plain")
    shards.write(tmp_path / "rebuilt", now, 3, manifest.settings)
    extractor = AnswerExtractor(embedder)
    plain = _engine(tmp_path / "plain", settings, embedder, extractor)
    sharded = _engine(tmp_path / "sharded", settings, embedder, extractor)
    rebuilt = _engine(tmp_path / "rebuilt", settings, embedder, extractor)
    for q in seed_questions()[::3]:
        for mode in MODES:
            got = _search(sharded, q, 10, mode)
            assert got == _search(plain, q, 10, mode) == _search(rebuilt, q, 10, mode)
            assert _ask(sharded, q, mode) == _ask(plain, q, mode) == _ask(rebuilt, q, mode)

    _, built = store.load_content(seed_index)  # the five files in one build
    indexer_obj.remove_articles(built, {victim}, UpdateReport())
    assert now.articles.keys() == built.articles.keys()
    mine = {p.passage_id: i for i, p in enumerate(now.passages)}
    assert mine.keys() == {p.passage_id for p in built.passages}
    for i, p in enumerate(built.passages):
        j = mine[p.passage_id]
        assert now.passages[j] == p and now.tokens[j] == built.tokens[i]
        assert float(now.vectors[j] @ built.vectors[i]) > 0.99
