"""Indexing on a real Ray cluster (``indexer.cluster``): the 2-node loopback cluster of the
``ray_cluster`` fixture (tests/helpers/ray_cluster.py), and ``--ray local``.

A build on the cluster must equal an in-process build of the same sources (the session's
``seed_index``): same articles, passages and ids, same BM25 tokens, the same vectors, and so
the same top-10 for every seed question. The builds run the real command line, as a user
does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, SEEDS

pytestmark = [pytest.mark.cluster, pytest.mark.model]

SEED_QA = REPO / "eval" / "data" / "seed_qa.jsonl"
RUN_TIMEOUT_S = 1200
NEW_ARTICLE = {
    "id": "cluster-test-1",
    "title": "北碚区新建社区图书馆对外开放",
    "date": "2024-03-02",
    "source": "测试日报",
    "text": "3月2日，北碚区天生街道新建的社区图书馆正式对外开放。图书馆面积约六百平方米，"
    "藏书两万余册，设有少儿阅览区、自习区和老年人阅读角。街道负责人介绍，图书馆每天早上九点"
    "开放至晚上九点，居民凭身份证即可免费办理借阅证。\n开馆当天，不少居民带着孩子前来看书。"
    "图书馆还将每月举办一次读书分享会，并与附近的三所小学合作开展课外阅读活动。",
}


def indexer_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "indexer", *args],
        cwd=REPO,
        env=os.environ | (env or {}),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )


def assert_same_index(path: Path, expected: Path) -> None:
    """Same articles, passages (ids, text, offsets, order), tokens and source files; vectors
    equal within 1e-5 in cosine."""
    from indexer import store

    _, got = store.load_content(path)
    _, want = store.load_content(expected)
    assert list(got.articles) == list(want.articles)
    assert [got.articles[k] for k in got.articles] == [want.articles[k] for k in want.articles]
    assert got.passages == want.passages
    assert got.tokens == want.tokens
    assert got.files == want.files
    cosine = np.einsum("ij,ij->i", got.vectors, want.vectors)
    assert got.vectors.shape == want.vectors.shape
    assert cosine.min() >= 1 - 1e-5


def assert_same_rankings(path: Path, expected_engine, settings, embedder) -> None:
    """The hybrid top-10 of every seed question: the same passage ids in the same order."""
    from qa_service.engine import open_engine

    engine = open_engine(path, settings, embedder)
    questions = [json.loads(line)["question"] for line in SEED_QA.read_text().splitlines()]
    for question in questions:
        vector = embedder.encode_query([question])[0]
        ids = []
        for e in (engine, expected_engine):
            hits = e.retriever.search(question, 10, "hybrid", vector=vector).hits
            ids.append([e.index.passages[h.row].passage_id for h in hits])
        assert ids[0] == ids[1], question


def test_cluster_build_equals_in_process_build(
    ray_cluster, seed_index, engine, settings, embedder, tmp_path
):
    out = tmp_path / "index"
    done = indexer_cli(
        "build", "seeds", "--out", str(out), "--ray", ray_cluster.address, "--workers", "2"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = done.stdout.splitlines()[-1]
    assert summary.startswith("ray: 5 file(s) read in tasks; ")
    assert "by 2 worker(s) on 127.0.0.2, 127.0.0.3" in summary  # one on each node
    assert_same_index(out, seed_index)
    assert_same_rankings(out, engine, settings, embedder)
    from indexer import store

    build = store.read_manifest(store.resolve_version(out)).build
    assert build["workers"] == "2" and build["device"] == "cpu" and build["dtype"]


def test_ray_local_build_serves_the_same_results(seed_index, engine, settings, embedder, tmp_path):
    """The Done-when of issue 14: `--ray local --workers 2` answers every question with the
    same passages, in the same order, as an in-process build."""
    out = tmp_path / "index"
    done = indexer_cli("build", "seeds", "--out", str(out), "--ray", "local", "--workers", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "by 2 worker(s)" in done.stdout
    assert_same_index(out, seed_index)
    assert_same_rankings(out, engine, settings, embedder)


class CountingEncoder:
    """An encoder that counts the texts it is given (the in-process side of a comparison)."""

    def __init__(self, inner) -> None:
        self.inner, self.texts = inner, 0
        self.identity, self.tokenizer_fingerprint = inner.identity, inner.tokenizer_fingerprint

    def encode(self, texts, progress):
        self.texts += len(texts)
        return self.inner.encode(texts, progress)

    def build_info(self):
        return self.inner.build_info()


def test_incremental_add_sends_only_new_articles(
    ray_cluster, seed_index, indexer_obj, settings, tmp_path
):
    from indexer.pipeline import Indexer, iter_sources, update
    from tests.helpers.service import copy_index

    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "new.jsonl").write_text(json.dumps(NEW_ARTICLE, ensure_ascii=False) + "\n")
    on_cluster = copy_index(seed_index, tmp_path / "a")
    in_process = copy_index(seed_index, tmp_path / "b")

    done = indexer_cli(
        "add", str(on_cluster), str(SEEDS), str(extra), "--ray", ray_cluster.address, "-q"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    counting = CountingEncoder(indexer_obj.encoder)
    indexer = Indexer(settings, encoder=counting)
    report = update(in_process, sources=iter_sources([SEEDS, extra]), indexer=indexer)
    assert report.articles_added == 1 and report.files_skipped == 5
    assert 0 < report.passages_embedded <= counting.texts
    assert "+1 added" in done.stdout and "5 files unchanged" in done.stdout
    # Only the new file went to a task, and only what the in-process update encoded (the new
    # article's passages) to the workers.
    assert f"ray: 1 file(s) read in tasks; {counting.texts} texts embedded" in done.stdout
    assert_same_index(on_cluster, in_process)


def test_a_worker_node_killed_mid_build_the_build_still_finishes(ray_cluster, seed_index, tmp_path):
    """The node 127.0.0.3 dies (SIGKILL to all its processes) while its embedding worker has
    batches: they are run again on the head's worker and the build is the in-process one.
    The build replaces an existing index, which stays whole until the new one is complete."""
    from indexer import store
    from tests.helpers.ray_cluster import WORKER_IP
    from tests.helpers.service import copy_index

    out = copy_index(seed_index, tmp_path / "idx")
    before = store.resolve_version(out)
    err_file = tmp_path / "stderr"
    with open(err_file, "wb") as err_out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "indexer", "build", "seeds", "--out", str(out)]
            + ["--ray", ray_cluster.address, "--workers", "2"],
            cwd=REPO,
            env=os.environ,
            stdout=subprocess.PIPE,
            stderr=err_out,
        )
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while b"embedding (ray)" not in err_file.read_bytes():  # workers up, batches sent
            assert proc.poll() is None, err_file.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the build never started embedding"
            time.sleep(0.2)
        assert store.resolve_version(out) == before  # nothing written yet
        ray_cluster.stop_node(WORKER_IP, grace_s=0)
        stdout, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if WORKER_IP not in ray_cluster.nodes:  # for the tests that come after
            ray_cluster.start_node(WORKER_IP)
    err = err_file.read_text(errors="replace")
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    assert "1 lost" in stdout.decode(), stdout.decode()
    assert store.resolve_version(out) != before
    assert_same_index(out, seed_index)
