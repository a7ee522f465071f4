"""Source files: which files an index reads, in what order, and their checksums.

One walker for the whole project: ingestion, the build and ``add`` all see the same files
(``.txt``, ``.md``, ``.jsonl``; dot-files and dot-folders such as ``.git`` are skipped).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SOURCE_SUFFIXES = (".txt", ".md", ".jsonl")


@dataclass(frozen=True)
class SourceFile:
    path: Path
    key: str  # how the index names the file: relative to the folder given, or its name


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in blocks (models are gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def files_under(folder: Path) -> list[Path]:
    """Source files below ``folder``, sorted by relative path, dot-files/folders skipped."""
    found = [
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in SOURCE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def iter_sources(paths: Iterable[Path]) -> list[SourceFile]:
    """The files to ingest, in a stable order; a missing path raises ``FileNotFoundError``."""
    found: list[SourceFile] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += [SourceFile(f, f.relative_to(path).as_posix()) for f in files_under(path)]
        elif path.is_file():
            found.append(SourceFile(path, path.name))
        else:
            raise FileNotFoundError(f"No such file or folder: {path}")
    return found
