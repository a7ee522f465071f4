"""The ``device`` setting: which device and dtype the model computes in, and a plain message
(no traceback) when a GPU is asked for on a machine without one."""

from __future__ import annotations

import os
import subprocess
import sys

import pydantic
import pytest

from indexer import embed
from indexer.settings import Settings
from tests.conftest import REPO


def _no_cuda() -> bool:
    import torch

    return not torch.cuda.is_available()


def test_device_setting_takes_auto_cpu_cuda_and_cuda_n(monkeypatch):
    for good in ("auto", "cpu", "cuda", "cuda:0", "cuda:12"):
        monkeypatch.setenv("NEWSQA_DEVICE", good)
        assert Settings().device == good
    for bad in ("gpu", "cuda:", "cuda:x", "CPU", "cuda:0 "):
        monkeypatch.setenv("NEWSQA_DEVICE", bad)
        with pytest.raises(pydantic.ValidationError, match="device"):
            Settings()


def test_auto_is_the_gpu_where_torch_sees_one(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert embed.resolve_device("auto") == "cpu"
    assert embed.resolve_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert embed.resolve_device("auto") == "cuda:0"
    assert embed.resolve_device("cuda") == "cuda:0"
    assert embed.resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(embed.DeviceError, match="2 CUDA GPU"):
        embed.resolve_device("cuda:2")


def test_half_precision_on_a_gpu_by_the_card(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert embed.resolve_dtype("auto", "cuda:0") == "bfloat16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    assert embed.resolve_dtype("auto", "cuda:0") == "float16"  # before compute capability 8.0
    assert embed.resolve_dtype("float32", "cuda:0") == "float32"  # asked for: kept
    monkeypatch.setattr(embed, "cpu_has_bf16", lambda: False)
    assert embed.resolve_dtype("auto") == "float32"  # the CPU rule is unchanged


@pytest.mark.skipif(not _no_cuda(), reason="this machine has a GPU")
@pytest.mark.parametrize(
    "command",
    [
        ["indexer", "build", "seeds", "--out", "{tmp}/index"],
        ["qa_service", "serve", "--index", "{tmp}/index", "--port", "0"],
    ],
    ids=["indexer-build", "qa_service-serve"],
)
def test_cuda_without_a_gpu_is_a_plain_message(command, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        env=os.environ | {"NEWSQA_DEVICE": "cuda"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert "no CUDA GPU on this machine" in done.stderr
    assert "NEWSQA_DEVICE=cpu" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "index").exists()


def test_the_manifest_records_the_device_and_dtype(embedder):
    assert embedder.device == "cpu" or embedder.device.startswith("cuda:")
    info = embedder.build_info()
    assert info["device"] == embedder.device and info["dtype"] == embedder.dtype
    assert embedder.batch_size == (
        embedder.settings.embed_batch_size or (32 if embedder.device == "cpu" else 512)
    )
