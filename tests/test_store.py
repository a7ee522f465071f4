"""The index directory: atomic versions, verification at load, refusal of foreign indexes.

These tests are about the store, so they use synthetic content (random unit vectors in place
of embeddings, see tests/helpers/synthetic.py); retrieval quality is tested elsewhere with
the real model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from indexer import store
from indexer.manifest import Counts, IncompatibleIndex, Manifest
from tests.helpers import synthetic


def test_write_and_read_back(tmp_path):
    path = tmp_path / "index"
    c = synthetic.content(4)
    store.write_index(path, c, synthetic.settings())
    manifest, back = store.load_content(path)
    assert manifest.counts == Counts(articles=4, passages=12, files=1, sources=1)
    assert [p.passage_id for p in back.passages] == [p.passage_id for p in c.passages]
    assert np.allclose(back.vectors, c.vectors)
    assert back.articles["art0-00001"].title == "标题1"
    assert back.tokens == c.tokens
    vectors, keywords = store.load_search_structures(store.resolve_version(path), manifest, back)
    assert vectors.faiss_index.ntotal == 12 and keywords.bm25 is not None
    # the nearest neighbour of a stored vector is itself: vector id == passage row
    assert next(iter(vectors.search(c.vectors[5], 1))) == 5
    # the keyword component finds the passages holding a token, best first
    assert set(keywords.search(["第1篇"], 10).scores) == {3, 4, 5}


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_every_faiss_kind_round_trips_and_finds_stored_vectors(tmp_path, kind):
    """NEWSQA_FAISS_KIND: each kind is written, loaded, and finds a stored vector first.
    400 articles (1,200 vectors) are enough for IVF to train its lists."""
    path = tmp_path / "index"
    c = synthetic.content(400)
    store.write_index(path, c, synthetic.settings(faiss_kind=kind))
    manifest, back = store.load_content(path)
    assert manifest.settings.faiss_kind == kind
    vectors, _ = store.load_search_structures(store.resolve_version(path), manifest, back)
    faiss_index = vectors.faiss_index
    assert faiss_index.ntotal == 1200
    expected = {"flat": "IndexFlatIP", "hnsw": "IndexHNSWFlat", "ivf": "IndexIVFFlat"}[kind]
    assert type(faiss_index).__name__ == expected
    rows = [0, 17, 599, 1199]
    _, ids = faiss_index.search(c.vectors[rows], 1)
    assert ids[:, 0].tolist() == rows


def test_no_pickle_anywhere(tmp_path):
    path = tmp_path / "index"
    store.write_index(path, synthetic.content(2), synthetic.settings())
    for f in store.resolve_version(path).rglob("*"):
        if f.is_file():
            assert b"\x80\x04\x95" not in f.read_bytes()[:64], f"{f.name} looks like a pickle"
    np.load(store.resolve_version(path) / store.VECTORS, allow_pickle=False)


def test_old_versions_are_cleaned_up(tmp_path):
    path = tmp_path / "index"
    for seed in range(4):
        store.write_index(path, synthetic.content(2, seed=seed), synthetic.settings())
    versions = [p for p in tmp_path.iterdir() if p.name.startswith(".index.v")]
    assert len(versions) == 2  # the current one and the previous one (for open readers)
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name or ".link" in p.name]


def test_refuses_a_foreign_directory(tmp_path):
    path = tmp_path / "index"
    path.mkdir()
    (path / "notes.txt").write_text("mine")
    with pytest.raises(store.IndexStoreError, match="not an index made by this tool"):
        store.write_index(path, synthetic.content(1), synthetic.settings())
    assert (path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda v: (v / store.VECTORS).write_bytes((v / store.VECTORS).read_bytes()[:-100]),
            "truncated",
        ),
        (lambda v: (v / store.SQLITE).unlink(), "missing"),
        (
            lambda v: (v / store.FAISS).write_bytes(b"x" * (v / store.FAISS).stat().st_size),
            "checksum",
        ),
        (lambda v: (v / store.MANIFEST).write_text("{not json"), "damaged"),
        (lambda v: (v / store.MANIFEST).unlink(), "missing"),
    ],
)
def test_damaged_index_is_refused_clearly(tmp_path, damage, message):
    path = tmp_path / "index"
    store.write_index(path, synthetic.content(3), synthetic.settings())
    damage(store.resolve_version(path))
    with pytest.raises(store.IndexStoreError, match=message) as err:
        store.load_content(path)
    assert "Rebuild" in str(err.value)


def test_other_format_version_is_refused(tmp_path):
    path = tmp_path / "index"
    store.write_index(path, synthetic.content(1), synthetic.settings())
    manifest_path = store.resolve_version(path) / store.MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["format_version"] = 99
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(store.IndexStoreError, match="format version 99"):
        store.load_content(path)


def test_other_model_or_dimension_is_refused(tmp_path):
    path = tmp_path / "index"
    store.write_index(path, synthetic.content(1), synthetic.settings())
    manifest, _ = store.load_content(path)
    manifest.check_compatible(synthetic.settings())
    cases = [
        ({"model_name": "embeddinggemma-300m"}, "model_name = 'multilingual-e5-small'"),
        ({"model_checksum": "zzz999"}, "model_checksum = 'abc123'"),
        ({"dimension": 768}, "dimension = 384"),
        ({"tokenizer": "jieba-x-precise-"}, "NEWSQA_TOKENIZER_MODE"),
    ]
    for change, message in cases:
        for purpose in ("read", "write"):
            with pytest.raises(IncompatibleIndex, match=message):
                manifest.check_compatible(synthetic.settings(**change), purpose)


def test_chunking_must_match_to_write_not_to_read(tmp_path):
    path = tmp_path / "index"
    store.write_index(path, synthetic.content(1), synthetic.settings())
    manifest, _ = store.load_content(path)
    other = synthetic.settings(chunk_target_chars=300)
    manifest.check_compatible(other, "read")
    with pytest.raises(IncompatibleIndex) as err:
        manifest.check_compatible(other, "write")
    message = str(err.value)
    assert "chunk_target_chars = 200" in message and "= 300" in message
    assert "NEWSQA_CHUNK_TARGET_CHARS" in message and "python -m indexer build" in message
    # the search-structure parameters are the index's own: a write may differ in them
    manifest.check_compatible(synthetic.settings(faiss_kind="hnsw", bm25_k1=1.5), "write")


def test_manifest_round_trips_through_json(tmp_path):
    path = tmp_path / "index"
    store.write_index(path, synthetic.content(2), synthetic.settings(), {"device": "cpu"})
    version = store.resolve_version(path)
    manifest = store.read_manifest(version)
    assert manifest.build == {"device": "cpu"}
    again = Manifest.from_dict(json.loads(manifest.to_json()))
    assert again == manifest
    assert (version / store.MANIFEST).read_text(encoding="utf-8") == manifest.to_json()


def test_missing_index_says_how_to_build_one(tmp_path):
    with pytest.raises(store.IndexStoreError, match="python -m indexer build"):
        store.load_content(tmp_path / "nothing")


def test_sigkill_during_writes_leaves_old_or_new_index(tmp_path):
    """Kill a real writer process at many moments; the index must always load whole."""
    path = tmp_path / "index"
    sizes = (300, 500)  # two known contents, big enough that a write takes a while
    store.write_index(path, synthetic.content(sizes[0], seed=0), synthetic.settings())
    helper = Path(__file__).parent / "helpers" / "write_loop.py"
    seen = set()
    killed_mid_write = 0
    # Kills at fixed moments land anywhere; two more land right after the writer says it
    # finished a write of each size, so both contents are seen however slow the machine.
    moments = [0.05, 0.2, 0.35, 0.5, 0.8, 1.1, 1.5, 2.0, *(f"wrote {n}" for n in sizes)]
    for moment in moments:
        proc = subprocess.Popen(
            [sys.executable, str(helper), str(path), ",".join(map(str, sizes))],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline().strip() == "ready"
        if isinstance(moment, str):
            while (line := proc.stdout.readline()) and line.strip() != moment:
                pass
            assert line, "the writer stopped before finishing a write"
        else:
            time.sleep(moment)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        manifest, content = store.load_content(path)
        vectors, _ = store.load_search_structures(store.resolve_version(path), manifest, content)
        n = manifest.counts.articles
        assert n in sizes
        assert len(content.articles) == n and vectors.faiss_index.ntotal == 3 * n
        seen.add(n)
        killed_mid_write += any(".tmp" in p.name for p in tmp_path.iterdir())
    assert seen == set(sizes), "the writer should have completed some writes"
    assert killed_mid_write >= 2, "most kills should land inside a write"
    # leftovers of killed writes are cleaned by the next successful write
    store.write_index(path, synthetic.content(2), synthetic.settings())
    leftovers = [p for p in tmp_path.iterdir() if p.name != "index"]
    assert len(leftovers) <= 2


def test_paragraph_offset_maps_survive_a_round_trip(tmp_path):
    from indexer.ingest import ingest_text
    from tests.conftest import SEEDS

    page = "003_c39b219bdb99aca7.txt"
    articles = ingest_text((SEEDS / page).read_text(encoding="utf-8"), page)
    c = synthetic.content(0)
    c.articles = {a.article_id: a for a in articles}
    store.write_index(tmp_path / "index", c, synthetic.settings())
    _, back = store.load_content(tmp_path / "index")
    for a in articles:
        b = back.articles[a.article_id]
        assert [(p.text, p.start, p.end, p.runs, p.markup_before) for p in b.paragraphs] == [
            (p.text, p.start, p.end, p.runs, p.markup_before) for p in a.paragraphs
        ]
