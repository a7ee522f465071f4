"""Building and updating a real index of the seed pages (real model, real FAISS, real BM25)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from indexer import store
from indexer.pipeline import UpdateReport, build, iter_sources, open_for_update
from tests.conftest import SEEDS


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture()
def small_sources(tmp_path):
    """Two seed pages in a folder of their own, so tests can change them."""
    folder = tmp_path / "pages"
    folder.mkdir()
    for name in ("000_a53461ffb1d4bfa9.txt", "002_0a7ba2105b8ed319.txt"):
        shutil.copy(SEEDS / name, folder / name)
    return folder


def _build(indexer_obj, folder, out):
    report, content = build(iter_sources([folder]), out, indexer_obj, progress=False)
    return report, content


def test_seed_index_manifest_and_offsets(seed_index):
    manifest, content = store.load_content(seed_index)
    assert manifest["counts"]["files"] == 5
    assert manifest["settings"]["model_name"] == "multilingual-e5-small"
    assert manifest["counts"]["passages"] == len(content.passages) > 50
    for p in content.passages:
        raw = (SEEDS / p.file).read_text(encoding="utf-8")
        assert squash(raw[p.start : p.end]) == squash(p.text), p.passage_id


def test_readd_unchanged_is_a_noop(indexer_obj, small_sources, tmp_path):
    out = tmp_path / "index"
    _build(indexer_obj, small_sources, out)
    version = store.resolve_version(out)
    content = open_for_update(out, indexer_obj)
    report = UpdateReport()
    indexer_obj.update_from_files(content, iter_sources([small_sources]), report, progress=False)
    assert not report.changed and report.passages_embedded == 0 and report.files_skipped == 2
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
    content = open_for_update(out, indexer_obj)
    report = UpdateReport()
    indexer_obj.update_from_files(content, iter_sources([small_sources]), report, progress=False)
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
    content = open_for_update(out, indexer_obj)
    report = UpdateReport()
    indexer_obj.update_from_files(content, iter_sources([small_sources]), report, progress=False)
    store.write_index(out, content, indexer_obj.index_settings())
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
    content = open_for_update(out, indexer_obj)
    indexer_obj.remove_articles(content, {victim}, UpdateReport())
    store.write_index(out, content, indexer_obj.index_settings())
    _, after = store.load_content(out)
    assert victim not in after.articles
    assert all(p.article_id != victim for p in after.passages)
    with pytest.raises(KeyError, match="No article"):
        indexer_obj.remove_articles(after, {"no-such-id"}, UpdateReport())
    report = UpdateReport()
    indexer_obj.update_from_files(after, iter_sources([small_sources]), report, progress=False)
    assert victim in after.articles


def test_cli_build_info_and_errors(tmp_path):
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
