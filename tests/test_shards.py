"""Sharded indexes (issue 15) without the model: the layout, generations switched atomically,
updates that rewrite only the shards they touch, and results exactly those of a plain index
of the same passages (same passage ids in the same order, same scores, same answers) for
every mode, filter, top_k and /similar.

The model-backed version of the same comparison, over the seed pages and questions, is in
``test_sharded_seeds.py``; on Ray Serve, in ``test_serve_ray.py``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from indexer import shards, store
from indexer.manifest import IndexStoreError
from qa_service.retrieval import Filters
from tests.helpers import corpus

SHARD_COUNTS = (1, 2, 3)


@pytest.fixture(scope="module")
def archive():
    return corpus.archive(90, seed=3)


@pytest.fixture(scope="module")
def built(tmp_path_factory, archive) -> Path:
    root = tmp_path_factory.mktemp("sharded")
    store.write_index(root / "plain", archive, corpus.settings())
    for n in SHARD_COUNTS:
        shards.write(root / f"s{n}", archive, n, corpus.settings())
    return root


@pytest.fixture(scope="module")
def embedder(archive):
    """The fake embedder, which knows the query vectors of :func:`queries`."""
    return corpus.FakeEmbedder()


def queries(archive, embedder, n: int = 24) -> list[str]:
    """Query texts from the vocabulary (with a word no passage has), each given a vector:
    a stored passage's own (its duplicates tie with it), or a blend of two."""
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        words = list(rng.choice(corpus.VOCAB[:120], size=int(rng.integers(1, 6))))
        if i % 5 == 0:
            words.append("没见过的词")
        text = " ".join(words) + f" q{i}"
        a, b = rng.integers(len(archive.passages), size=2)
        vector = archive.vectors[a] if i % 3 == 0 else archive.vectors[a] + archive.vectors[b]
        embedder.known[text] = (vector / np.linalg.norm(vector)).astype(np.float32)
        out.append(text)
    return out


def _filters(archive) -> list[Filters | None]:
    some = list(archive.articles)[5:30:3]
    return [
        None,
        Filters(date_from="2023-03-01", date_to="2023-09-30"),
        Filters(source="日报"),
        Filters(article_ids=some),
        Filters(date_to="2023-06-30", source="新华社"),
    ]


def _search(engine, text, top_k, mode, filters):
    results, analysis, _ = engine.search(text, top_k, mode, filters)
    rows = [
        (
            engine.index.passages[r.row].passage_id,
            r.hit.score,
            r.hit.dense,
            r.hit.bm25,
            r.highlights,
        )
        for r in results
    ]
    return rows, (analysis.tokens, analysis.coverage, analysis.background, analysis.matched)


def _ask(engine, text, top_k, mode, filters):
    result = engine.ask(text, top_k, mode, filters)
    answer = result.answer
    return (
        [
            (engine.index.passages[r.row].passage_id, r.hit.score, r.highlights)
            for r in result.passages
        ],
        None if answer is None else (answer.text, answer.citations, answer.confidence),
        (result.analysis.coverage, result.analysis.background),
    )


# ------------------------------------------------------------------------------ layout


def test_shard_of_is_a_stable_hash():
    assert [shards.shard_of(a, 3) for a in ("a", "b", "c", "一篇文章")] == [
        shards.shard_of(a, 3) for a in ("a", "b", "c", "一篇文章")
    ]
    assert shards.shard_of("a", 1) == 0
    # Fixed values: a change of the rule would move every article of every sharded index.
    assert [shards.shard_of(f"id{i}", 4) for i in range(8)] == [
        int.from_bytes(
            __import__("hashlib").blake2b(f"id{i}".encode(), digest_size=8).digest(), "big"
        )
        % 4
        for i in range(8)
    ]


def test_generation_holds_plain_shards_that_partition_the_archive(built, archive):
    from qa_service import index as loaded_index

    path = built / "s3"
    assert shards.is_sharded(path) and not shards.is_sharded(built / "plain")
    opened = shards.read_generation(path)
    assert opened.shard_count == 3 and opened.generation.number == 1
    seen = {}
    for i in range(3):
        shard = loaded_index.load(opened.shard_path(i))  # each shard: a complete plain index
        assert type(shard).__name__ == "LoadedIndex"
        for aid in shard.articles:
            assert shards.shard_of(aid, 3) == i
            seen[aid] = i
        assert shard.vectors.shape[0] == len(shard.passages)
    assert set(seen) == set(archive.articles)
    assert opened.generation.counts.passages == len(archive.passages)
    assert opened.generation.source_files == archive.files


def test_a_shard_changed_behind_the_generation_is_refused(built, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(built, copy, symlinks=True)
    opened = shards.read_generation(copy / "s2")
    manifest = opened.shard_version(1) / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"built_at"', '"built_at" '))
    with pytest.raises(IndexStoreError, match="shard-001"):
        shards.read_generation(copy / "s2")


def test_partition_then_merge_gives_back_the_archive(archive):
    parts = shards.partition(archive, 3)
    whole = shards.merge(parts, archive.files)
    order = {p.passage_id: i for i, p in enumerate(whole.passages)}
    assert sorted(order) == sorted(p.passage_id for p in archive.passages)
    for i, p in enumerate(archive.passages):
        j = order[p.passage_id]
        assert whole.tokens[j] == archive.tokens[i]
        assert np.array_equal(whole.vectors[j], archive.vectors[i])
    assert whole.articles.keys() == archive.articles.keys()


# --------------------------------------------------------------------------- exactness


@pytest.fixture(scope="module")
def engines(built, embedder):
    return {
        name: corpus.engine(built / name, embedder)
        for name in ("plain", *(f"s{n}" for n in SHARD_COUNTS))
    }


@pytest.mark.parametrize("n", SHARD_COUNTS)
@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_search_equals_the_plain_index(engines, archive, embedder, n, mode):
    plain, sharded = engines["plain"], engines[f"s{n}"]
    for i, text in enumerate(queries(archive, embedder)):
        for filters in _filters(archive):
            top_k = (1, 5, 10, 37, 120)[i % 5]
            assert _search(sharded, text, top_k, mode, filters) == _search(
                plain, text, top_k, mode, filters
            ), (text, top_k, filters)


@pytest.mark.parametrize("n", SHARD_COUNTS)
@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_ask_equals_the_plain_index(engines, archive, embedder, n, mode):
    plain, sharded = engines["plain"], engines[f"s{n}"]
    for text in queries(archive, embedder, 12):
        for filters in _filters(archive)[:3]:
            assert _ask(sharded, text, 5, mode, filters) == _ask(plain, text, 5, mode, filters)


@pytest.mark.parametrize("n", SHARD_COUNTS)
def test_recency_boost_equals_the_plain_index(engines, archive, embedder, n):
    import inspect

    from qa_service.engine import Engine

    if "recency_half_life_days" not in inspect.signature(Engine.search).parameters:
        pytest.skip("no recency boost in this checkout")
    plain, sharded = engines["plain"], engines[f"s{n}"]

    def ranked(engine, text):
        results, _, _ = engine.search(text, 10, "hybrid", recency_half_life_days=30)
        return [(engine.index.passages[r.row].passage_id, r.hit.score) for r in results]

    for text in queries(archive, embedder, 8):
        assert ranked(sharded, text) == ranked(plain, text)


@pytest.mark.parametrize("n", SHARD_COUNTS)
@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
@pytest.mark.parametrize("cut", [None, 7])
def test_facets_equal_the_plain_index(engines, archive, embedder, n, mode, cut, monkeypatch):
    """Facet counts as the plain index's; ``cut``: only the 7 nearest passages of all shards
    count (any similarity), so that which shard's candidates make the global cut matters."""
    from qa_service import facets

    if cut:
        monkeypatch.setattr(facets, "DENSE_CANDIDATES", cut)
        monkeypatch.setattr(facets, "DENSE_MARGIN", -2.0)
    plain, sharded = engines["plain"], engines[f"s{n}"]

    def counts(engine, text, filters):
        _, analysis, _ = engine.search(text, 3, mode, filters)
        return facets.facets(engine.retriever, text, analysis, mode, filters, ["month", "source"])

    found = 0
    for text in queries(archive, embedder, 12):
        for filters in _filters(archive):
            want = counts(plain, text, filters)
            assert counts(sharded, text, filters) == want, (text, filters)
            found += sum(v.count for v in want["month"])
    assert found > 0


@pytest.mark.parametrize("n", SHARD_COUNTS)
def test_similar_equals_the_plain_index(engines, archive, n):
    plain, sharded = engines["plain"], engines[f"s{n}"]

    def passages(engine, **kw):
        return [
            (engine.index.passages[r.row].passage_id, r.hit.score) for r in engine.similar(**kw)
        ]

    def articles(engine, **kw):
        return [(h.article_id, h.score) for h in engine.similar(level="article", **kw)]

    for p in archive.passages[::7]:
        kw = {"passage_id": p.passage_id, "top_k": 9}
        assert passages(sharded, **kw) == passages(plain, **kw)
        assert articles(sharded, **kw) == articles(plain, **kw)
    for aid in list(archive.articles)[::9]:
        kw = {"article_id": aid, "top_k": 6}
        assert passages(sharded, **kw) == passages(plain, **kw)
        assert articles(sharded, **kw) == articles(plain, **kw)
    kw = {"text": "词3 词9 词20", "top_k": 12}
    assert passages(sharded, **kw) == passages(plain, **kw)
    with pytest.raises(KeyError):
        sharded.similar(passage_id="nope-0000")


@pytest.mark.parametrize("n", SHARD_COUNTS)
def test_articles_and_stats_read_the_same(engines, archive, n):
    from qa_service import schemas
    from qa_service.state import ServiceState

    plain, sharded = engines["plain"], engines[f"s{n}"]
    for aid in list(archive.articles)[::11]:
        a = schemas.ArticleOut.from_article(plain.index, plain.index.articles[aid])
        b = schemas.ArticleOut.from_article(sharded.index, sharded.index.articles[aid])
        assert a == b
    assert sharded.index.articles.get("nope") is None and "nope" not in sharded.index.articles
    stats = ServiceState.stats(None, plain), ServiceState.stats(None, sharded)
    keep = ("articles", "passages", "sources", "files", "date_range", "model", "dimension")
    assert {k: stats[0][k] for k in keep} == {k: stats[1][k] for k in keep}


# ----------------------------------------------------------------------------- updates


def test_an_update_writes_only_the_shards_it_changes(tmp_path, archive):
    path = tmp_path / "idx"
    shards.write(path, archive, 3, corpus.settings())
    before = shards.read_generation(path)
    target = shards.at(path)
    content = target.load()
    victim = next(iter(content.articles))
    content.articles.pop(victim)
    keep = [i for i, p in enumerate(content.passages) if p.article_id != victim]
    content.passages = [content.passages[i] for i in keep]
    content.tokens = [content.tokens[i] for i in keep]
    content.vectors = content.vectors[keep]
    written = target.write(content, corpus.settings(), {})
    after = shards.read_generation(path)
    owner = shards.shard_of(victim, 3)
    assert after.generation.number == 2 and set(written.written) == {owner}
    for i in range(3):
        old, new = before.generation.shards[i], after.generation.shards[i]
        if i == owner:
            assert new.version != old.version
            assert new.counts.articles == old.counts.articles - 1
        else:  # the same files, hard-linked into the new generation
            assert new.version == old.version
            a, b = before.shard_version(i) / "vectors.npy", after.shard_version(i) / "vectors.npy"
            assert os.stat(a).st_ino == os.stat(b).st_ino


def test_an_update_served_from_memory_equals_the_generation_read_back(tmp_path, archive):
    from qa_service import index as loaded_index

    path = tmp_path / "idx"
    shards.write(path, archive, 2, corpus.settings())
    target = shards.at(path)
    content = target.load()
    content.articles.popitem()
    gone = set(p.passage_id for p in content.passages) - {
        p.passage_id for p in content.passages if p.article_id in content.articles
    }
    keep = [i for i, p in enumerate(content.passages) if p.passage_id not in gone]
    content.passages = [content.passages[i] for i in keep]
    content.tokens = [content.tokens[i] for i in keep]
    content.vectors = content.vectors[keep]
    written = target.write(content, corpus.settings(), {})
    served = loaded_index.from_written(path, written, content)
    read = loaded_index.load(path)
    assert served.version == read.version
    v = archive.vectors[3]
    a = served.router.candidates(v, ["词1", "词2"], 20, dense_top=True, keyword=True)
    b = read.router.candidates(v, ["词1", "词2"], 20, dense_top=True, keyword=True)
    assert [a.passage_ids[r] for r in a.dense_top] == [b.passage_ids[r] for r in b.dense_top]
    assert a.keyword.scores == b.keyword.scores and a.background == b.background


def test_a_writer_killed_at_any_moment_leaves_one_whole_generation(tmp_path):
    """SIGKILL a process that keeps writing generations of two contents; every time, the
    index reads back as one of the two, whole (as ``test_reliability`` checks plain ones)."""
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "idx"
    helper = Path(__file__).parent / "helpers" / "shard_write_loop.py"
    sizes = {20: None, 35: None}
    for attempt in range(4):
        proc = subprocess.Popen(
            [sys.executable, str(helper), str(path), "20,35"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(0.8 + 0.37 * attempt)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        opened = shards.read_generation(path)  # whole, or this raises
        articles = opened.generation.counts.articles
        assert articles in sizes
        from qa_service import index as loaded_index

        assert len(loaded_index.load(path).articles) == articles


def test_info_describes_every_shard(built, capsys):
    from indexer.cli import main

    assert main(["info", str(built / "s3")]) == 0
    out = capsys.readouterr().out
    assert "shards:     3" in out
    assert [line.split()[0] for line in out.splitlines() if line.startswith("  shard-")] == [
        "shard-000",
        "shard-001",
        "shard-002",
    ]
    assert main(["info", str(built / "s3"), "--json"]) == 0
    assert '"number": 1' in capsys.readouterr().out


def test_stored_sentence_vectors_go_with_their_shard(tmp_path, archive, embedder):
    """Answers drawn from stored sentence vectors (``indexer.sentences``, where the checkout
    has them) are the plain index's on a sharded one."""
    import copy

    from qa_service.index import LoadedIndex

    sentences = pytest.importorskip("indexer.sentences")
    if not hasattr(LoadedIndex, "passage_sentences"):
        pytest.skip("no stored sentence vectors in this checkout")

    content = copy.deepcopy(archive)
    content.sentences = sentences.SentenceIndex.build(
        [p.text for p in content.passages], embedder.encode_document, corpus.DIM
    )
    store.write_index(tmp_path / "plain", content, corpus.settings())
    shards.write(tmp_path / "s3", content, 3, corpus.settings())
    whole = shards.merge(shards.partition(content, 3), content.files)
    assert len(whole.sentences) == len(content.sentences)
    plain = corpus.engine(tmp_path / "plain", embedder)
    sharded = corpus.engine(tmp_path / "s3", embedder)
    for p in content.passages[::13]:
        a, b = (
            plain.index.passage_by_id[p.passage_id],
            sharded.index.passage_by_id.get(p.passage_id),
        )
        mine, theirs = plain.index.passage_sentences(a), sharded.index.passage_sentences(b)
        assert np.array_equal(mine[0], theirs[0]) and np.array_equal(mine[1], theirs[1])
    for text in queries(archive, embedder, 10):
        for mode in ("hybrid", "bm25"):
            assert _ask(sharded, text, 5, mode, None) == _ask(plain, text, 5, mode, None)
