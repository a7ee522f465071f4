"""The service app over a given index, as the API, admin and reliability tests build it."""

from __future__ import annotations

import shutil
from pathlib import Path

ADMIN_TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def make_app(settings, index_path: Path, embedder, **overrides):
    """The FastAPI app with its own ServiceState; ``overrides`` replace settings fields.
    Admin writes are enabled with :data:`ADMIN_TOKEN` unless ``admin_token`` is given."""
    from qa_service.app import create_app
    from qa_service.state import ServiceState

    s = settings.model_copy(update={"admin_token": ADMIN_TOKEN, **overrides})
    return create_app(settings=s, state=ServiceState(s, index_path, embedder=embedder))


def copy_index(index_path: Path, folder: Path) -> Path:
    """A private copy of an index (its link and version directory) in ``folder``, for tests
    that write."""
    shutil.copytree(index_path.parent, folder, symlinks=True)
    return folder / index_path.name
