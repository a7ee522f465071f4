"""Shared fixtures. The quality tests use the real model and real FAISS; building the seed
index once per session keeps the suite fast."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def settings():
    from indexer.settings import get_settings

    return get_settings()


@pytest.fixture(scope="session")
def embedder(settings):
    from indexer.embed import Embedder

    return Embedder(settings=settings)


@pytest.fixture(scope="session")
def indexer_obj(settings, embedder):
    from indexer.pipeline import Indexer

    return Indexer(settings, embedder=embedder)


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory, indexer_obj) -> Path:
    """The index of the five seed pages, built once with the real model (read-only!)."""
    from indexer.pipeline import build, iter_sources

    out = tmp_path_factory.mktemp("seed-index") / "index"
    build(iter_sources([SEEDS]), out, indexer_obj, progress=False)
    return out


@pytest.fixture(scope="session")
def engine(seed_index, embedder, settings):
    from qa_service.state import ServiceState

    state = ServiceState(settings, seed_index, embedder=embedder)
    state.start()
    return state.engine
