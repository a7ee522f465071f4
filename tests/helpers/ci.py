"""What a test does when something it needs is not on this machine: in CI (env CI set, as
.ci/run does) that is a failure; on a developer's machine a skip that says what is missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(what: str, how: str) -> None:
    """Fail in CI, skip elsewhere, with ``what`` is missing and ``how`` to get it."""
    message = f"{what} is missing: {how}"
    if in_ci():
        pytest.fail(f"{message} (CI must run this test)", pytrace=False)
    pytest.skip(message)


def require_shared(path: Path) -> Path:
    """``path`` under ../shared (the data beside the checkout), or fail/skip as above."""
    if not path.exists():
        missing(str(path), "the shared data folder belongs beside the checkout, as ../shared")
    return path
