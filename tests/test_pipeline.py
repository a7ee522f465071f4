"""Building and updating a real index of the seed pages (real model, real FAISS, real BM25)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from indexer import store
from indexer.clean import squash
from indexer.pipeline import build, iter_sources, update
from tests.conftest import SEEDS
from tests.helpers import synthetic


@pytest.fixture()
def small_sources(tmp_path):
    """Two seed pages in a folder of their own, so tests can change them."""
    folder = tmp_path / "pages"
    folder.mkdir()
    for name in ("000_a53461ffb1d4bfa9.txt", "002_0a7ba2105b8ed319.txt"):
        shutil.copy(SEEDS / name, folder / name)
    return folder


def _build(indexer_obj, folder, out):
    report = build(out, iter_sources([folder]), indexer=indexer_obj, progress=False)
    return report, report.content


def _update(indexer_obj, out, **changes):
    return update(out, indexer=indexer_obj, **changes)


def test_seed_index_manifest_and_offsets(seed_index):
    manifest, content = store.load_content(seed_index)
    assert manifest.counts.files == 5
    assert manifest.settings.model_name == "multilingual-e5-small"
    assert manifest.build["device"] == "cpu" and manifest.build["dtype"] in ("float32", "bfloat16")
    assert manifest.counts.passages == len(content.passages) > 50
    for p in content.passages:
        raw = (SEEDS / p.file).read_text(encoding="utf-8")
        assert squash(raw[p.start : p.end]) == squash(p.text), p.passage_id


def test_readd_unchanged_is_a_noop(indexer_obj, small_sources, tmp_path):
    out = tmp_path / "index"
    _build(indexer_obj, small_sources, out)
    version = store.resolve_version(out)
    report = _update(indexer_obj, out, sources=iter_sources([small_sources]))
    assert not report.changed and report.passages_embedded == 0 and report.files_skipped == 2
    assert report.written is None and store.resolve_version(out) == version
    run = subprocess.run(
        [sys.executable, "-m", "indexer", "add", str(out), str(small_sources), "-q"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "nothing changed" in run.stdout
    assert store.resolve_version(out) == version


def test_add_new_file_embeds_only_its_articles(indexer_obj, small_sources, tmp_path):
    out = tmp_path / "index"
    _, before = _build(indexer_obj, small_sources, out)
    shutil.copy(SEEDS / "004_0c57ab9ed425abbc.txt", small_sources)
    report = _update(indexer_obj, out, sources=iter_sources([small_sources]))
    _, content = store.load_content(out)
    new_passages = [p for p in content.passages if p.file.startswith("004")]
    assert report.passages_embedded == len(new_passages) > 0
    assert report.files_skipped == 2
    old_ids = {p.passage_id for p in before.passages}
    assert old_ids <= {p.passage_id for p in content.passages}


def test_changed_article_replaces_its_passages(indexer_obj, small_sources, tmp_path):
    out = tmp_path / "index"
    _, before = _build(indexer_obj, small_sources, out)
    page = small_sources / "000_a53461ffb1d4bfa9.txt"
    raw = page.read_text(encoding="utf-8")
    page.write_text(raw.replace("总投资2亿元", "总投资3亿元"), encoding="utf-8")
    report = _update(indexer_obj, out, sources=iter_sources([small_sources]))
    assert report.articles_added == 1 and report.articles_removed == 1
    _, after = store.load_content(out)
    texts = "".join(p.text for p in after.passages)
    assert "总投资3亿元" in texts and "总投资2亿元" not in texts
    assert len(after.articles) == len(before.articles)


def test_duplicate_article_is_stored_once_with_both_files(indexer_obj, small_sources, tmp_path):
    shutil.copy(small_sources / "002_0a7ba2105b8ed319.txt", small_sources / "002_copy.txt")
    _, content = _build(indexer_obj, small_sources, tmp_path / "index")
    hub = [a for a in content.articles.values() if "算力网络国家枢纽节点" in a.title]
    assert len(hub) == 1
    assert {hub[0].file, *hub[0].extra_files} == {"002_0a7ba2105b8ed319.txt", "002_copy.txt"}
    texts = [squash(p.text) for p in content.passages]
    assert len(texts) == len(set(texts))


def test_remove_article_and_readd_restores_it(indexer_obj, small_sources, tmp_path):
    out = tmp_path / "index"
    _, content = _build(indexer_obj, small_sources, out)
    victim = next(iter(content.articles))
    _update(indexer_obj, out, remove=[victim])
    _, after = store.load_content(out)
    assert victim not in after.articles
    assert all(p.article_id != victim for p in after.passages)
    version = store.resolve_version(out)
    with pytest.raises(KeyError, match="No article"):
        _update(indexer_obj, out, remove=["no-such-id"])
    assert store.resolve_version(out) == version
    _update(indexer_obj, out, sources=iter_sources([small_sources]))
    _, again = store.load_content(out)
    assert victim in again.articles


def test_update_keeps_the_index_faiss_kind(indexer_obj, small_sources, tmp_path):
    """An add with default settings does not silently turn an HNSW index into a flat one."""
    from indexer.pipeline import Indexer

    out = tmp_path / "index"
    hnsw = Indexer(
        indexer_obj.settings.model_copy(update={"faiss_kind": "hnsw"}),
        embedder=indexer_obj.embedder,
        tokenizer=indexer_obj.tokenizer,
    )
    _build(hnsw, small_sources, out)
    shutil.copy(SEEDS / "004_0c57ab9ed425abbc.txt", small_sources)
    _update(indexer_obj, out, sources=iter_sources([small_sources]))
    assert store.read_manifest(store.resolve_version(out)).settings.faiss_kind == "hnsw"


@pytest.mark.model  # `indexer build` loads the model in its own process
def test_cli_build_and_info(tmp_path):
    out = tmp_path / "index"
    page = tmp_path / "one.jsonl"
    lines = [
        {
            "id": "a1",
            "title": "测试文章",
            "text": "重庆剑涛物联网科技有限公司在北碚开工。第二句话。",
        },
        "{broken",
    ]
    page.write_text(
        "\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines)
    )
    run = subprocess.run(
        [sys.executable, "-m", "indexer", "build", str(page), "--out", str(out), "-q"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "articles: 1" in run.stdout and "line 2" in run.stdout
    info = subprocess.run(
        [sys.executable, "-m", "indexer", "info", str(out)], capture_output=True, text=True
    )
    assert "1 articles" in info.stdout


def test_cli_errors_before_any_model_is_loaded(tmp_path):
    """A missing index or source is reported before the model is needed (none is loaded)."""
    out = tmp_path / "index"
    missing = subprocess.run(
        [sys.executable, "-m", "indexer", "info", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "No index at" in missing.stderr
    assert "Traceback" not in missing.stderr
    nofile = subprocess.run(
        [sys.executable, "-m", "indexer", "build", str(tmp_path / "absent"), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert nofile.returncode == 2 and "No such file or folder" in nofile.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = subprocess.run(
        [sys.executable, "-m", "indexer", "build", str(empty), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert nothing.returncode == 2 and "no .txt, .md or .jsonl files" in nothing.stderr
    assert not out.exists()


def test_cli_info_reads_an_index_without_the_model(tmp_path):
    """`indexer info` only reads the manifest: synthetic content (random vectors, see
    tests/helpers/synthetic.py) stands in for a built index, since the model is not the subject."""
    out = tmp_path / "index"
    store.write_index(out, synthetic.content(3), synthetic.settings())
    info = subprocess.run(
        [sys.executable, "-m", "indexer", "info", str(out)], capture_output=True, text=True
    )
    assert info.returncode == 0, info.stderr
    assert "3 articles, 9 passages, 1 files" in info.stdout
    assert "multilingual-e5-small (dim 384" in info.stdout


@pytest.mark.model  # `indexer add` reads the installed model's description in its own process
@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"NEWSQA_TOKENIZER_MODE": "precise"}, "tokenizer"),
        ({"NEWSQA_CHUNK_TARGET_CHARS": "300"}, "chunk_target_chars"),
    ],
)
def test_add_with_other_settings_is_refused_and_changes_nothing(index_copy, tmp_path, env, setting):
    """The index was built with jieba's search mode and 200-character chunks; an add that would
    tokenize or chunk differently exits non-zero, names the setting and both values, and leaves
    manifest.json byte-identical (the version link unchanged)."""
    import os

    new = tmp_path / "new"
    new.mkdir()
    (new / "n.jsonl").write_text(
        json.dumps({"id": "x1", "title": "新闻", "text": "重庆日报讯 一条新的新闻。"}) + "\n",
        encoding="utf-8",
    )
    version = store.resolve_version(index_copy)
    before = (version / store.MANIFEST).read_bytes()
    run = subprocess.run(
        [sys.executable, "-m", "indexer", "add", str(index_copy), str(new), "-q"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    assert run.returncode == 2, run.stdout
    assert setting in run.stderr and "python -m indexer build" in run.stderr
    assert "Traceback" not in run.stderr
    if setting == "tokenizer":
        assert "-search-" in run.stderr and "-precise-" in run.stderr
    else:
        assert "= 200" in run.stderr and "= 300" in run.stderr
    assert store.resolve_version(index_copy) == version
    assert (version / store.MANIFEST).read_bytes() == before


def test_service_refuses_an_index_tokenized_otherwise(seed_index, settings, embedder):
    """Reading needs the same tokenizer: a service started with another jieba mode would miss
    keywords silently, so opening the index fails with the reason."""
    from indexer.manifest import IncompatibleIndex
    from qa_service.engine import open_engine

    precise = settings.model_copy(update={"tokenizer_mode": "precise"})
    with pytest.raises(IncompatibleIndex, match="tokenizer"):
        open_engine(seed_index, precise, embedder)
    # chunking is the index's own business when only reading
    other_chunks = settings.model_copy(update={"chunk_target_chars": 300})
    assert open_engine(seed_index, other_chunks, embedder).index.passages
