"""Shared fixtures. The quality tests use the real model and real FAISS; building the seed
index once per session keeps the suite fast.

Two lanes: every test whose fixtures reach the model (``embedder`` and all that depends on
it) is marked ``model`` at collection, so ``pytest -m "not model"`` runs the rest with no
model installed. A test that loads the model some other way (a CLI subprocess, an installed
model directory) carries ``@pytest.mark.model`` itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"
SHARED = REPO.parent / "shared"

# Fixtures that load the model; anything depending on them is in their fixture closure.
MODEL_FIXTURES = frozenset({"embedder"})

# Fixtures any test module may use: ``ray_cluster`` (a real 2-node Ray cluster on loopback).
pytest_plugins = ["tests.helpers.ray_cluster"]


@pytest.hookimpl(tryfirst=True)  # before -m deselects (the mark plugin's hook is tryfirst too)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)


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
    build(out, iter_sources([SEEDS]), indexer=indexer_obj, progress=False)
    return out


@pytest.fixture()
def index_copy(seed_index, tmp_path) -> Path:
    """A private copy of the seed index (the link and its version directory), for tests
    that write."""
    from tests.helpers.service import copy_index

    return copy_index(seed_index, tmp_path / "idx")


@pytest.fixture(scope="session")
def engine(seed_index, embedder, settings):
    from qa_service.engine import open_engine

    return open_engine(seed_index, settings, embedder)
