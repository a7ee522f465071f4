"""Reading the source files an update found changed: ingest each one and name its articles
by the source's key.

The :class:`~indexer.pipeline.Indexer` decides which files changed (their sha256 against the
index's) and what their articles mean for the index; a :class:`Reader` only reads.
:class:`LocalReader` reads in this process, one file after the other; ``indexer.cluster``
reads each file in a Ray task, and cuts its articles into passages there as well, so that the
driver receives them ready (:attr:`FileRead.passages`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from tqdm import tqdm

from indexer.chunk import chunk_article
from indexer.files import SourceFile
from indexer.ingest import IngestResult, ingest_path
from indexer.schema import Passage

#: Chunking parameters: target characters, maximum characters, overlap in sentences.
Chunking = tuple[int, int, int]


def chunking_of(settings) -> Chunking:
    return (
        settings.chunk_target_chars,
        settings.chunk_max_chars,
        settings.chunk_overlap_sentences,
    )


@dataclass
class FileRead:
    """One changed source file, read. ``passages``, when the reader chunked the articles where
    it read them, holds each article's passages, in the order of ``result.articles``."""

    source: SourceFile
    digest: str  # the sha256 the update decided on
    result: IngestResult
    passages: list[list[Passage]] | None = field(default=None, repr=False)


def read_source(source: SourceFile, digest: str, chunking: Chunking | None = None) -> FileRead:
    """Ingest one file; with ``chunking``, also cut every article into passages."""
    result = ingest_path(source.path)
    for article in result.articles:
        article.file = _rekey(article.file, source)
    passages = None
    if chunking is not None:
        passages = [chunk_article(article, *chunking) for article in result.articles]
    return FileRead(source, digest, result, passages)


def _rekey(name: str, source: SourceFile) -> str:
    """The index names a file by the source's key (``news.jsonl#L3`` keeps its line)."""
    base, sep, line = name.partition("#L")
    return f"{source.key}{sep}{line}" if sep else source.key


class Reader(Protocol):
    def read(self, files: list[tuple[SourceFile, str]], progress: bool) -> Iterator[FileRead]:
        """Each (source, sha256) read, yielded in the order given."""
        ...


class LocalReader:
    """One file after the other, in this process; passages are cut later, only for the
    articles that turn out to be new."""

    def read(self, files: list[tuple[SourceFile, str]], progress: bool) -> Iterator[FileRead]:
        for source, digest in tqdm(files, desc="reading", unit="file", disable=not progress):
            yield read_source(source, digest)
