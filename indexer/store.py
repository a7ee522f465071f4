"""The index directory: how an index is laid out on disk, written atomically, and loaded.

Layout. The index path (say ``data/index``) is a symbolic link to a version directory beside
it (``data/.index.v<time>-<random>``) that holds::

    manifest.json   format version, model, chunking, tokenizer, counts, checksums
    index.sqlite    articles, their files, source-file hashes, passages (+ BM25 tokens)
    vectors.npy     float32 passage vectors, row i = passage with vec_id i (the truth)
    faiss.index     FAISS index over vectors.npy (derived; rebuilt on every write)
    bm25/           bm25s index over the stored tokens (derived; rebuilt on every write)

A write builds a complete new version directory, fsyncs it, then swaps the link with
``os.replace``, which is atomic: a process killed at any moment leaves the link pointing at
either the old version or the new one, both whole. No pickle anywhere: JSON, SQLite, ``.npy``
loaded with ``allow_pickle=False``, and FAISS's own format.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexer.files import sha256_file
from indexer.keywords import BM25_DIR, KeywordIndex
from indexer.manifest import (  # noqa: F401 (IndexSettings, IndexStoreError: re-exported)
    MANIFEST,
    Counts,
    IndexSettings,
    IndexStoreError,
    Manifest,
    now_utc,
)
from indexer.schema import Article, Passage, Span
from indexer.sentences import FILES as SENTENCE_FILES
from indexer.sentences import SentenceIndex
from indexer.titles import name_untitled
from indexer.vectors import FAISS, VECTORS, VectorIndex  # noqa: F401 (file names re-exported)
from indexer.vectors import FILES as VECTOR_FILES

SQLITE = "index.sqlite"


@dataclass
class IndexContent:
    """Everything an index holds, in memory: what a write starts from."""

    articles: dict[str, Article] = field(default_factory=dict)
    passages: list[Passage] = field(default_factory=list)
    tokens: list[list[str]] = field(default_factory=list)
    vectors: np.ndarray | None = None
    files: dict[str, str] = field(default_factory=dict)  # source file -> sha256
    # Every passage's sentences and their vectors (None: an index written before them).
    sentences: SentenceIndex | None = None

    def vector_matrix(self, dimension: int) -> np.ndarray:
        if self.vectors is None:
            return np.zeros((0, dimension), dtype=np.float32)
        return self.vectors


@dataclass(frozen=True)
class WrittenIndex:
    """A version just written, with the search structures built for it (so that whoever
    wrote it can serve it without reading it back from disk)."""

    version: Path
    manifest: Manifest
    vectors: VectorIndex
    keywords: KeywordIndex


# ----------------------------------------------------------------------------- helpers


def _component_files(version: Path) -> list[Path]:
    files = [version / SQLITE, *(version / name for name in (*VECTOR_FILES, *SENTENCE_FILES))]
    bm25 = version / BM25_DIR
    if bm25.is_dir():
        files += sorted(p for p in bm25.iterdir() if p.is_file())
    return [p for p in files if p.exists()]


def _fsync_tree(folder: Path) -> None:
    for path in [*folder.rglob("*"), folder]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------- the database

_SCHEMA = """
CREATE TABLE articles (
    article_id TEXT PRIMARY KEY, title TEXT NOT NULL, date TEXT, byline TEXT, source TEXT,
    url TEXT, content_hash TEXT NOT NULL, file TEXT NOT NULL,
    title_span TEXT, paragraphs TEXT NOT NULL, title_derived INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE article_files (
    article_id TEXT NOT NULL, file TEXT NOT NULL, PRIMARY KEY (article_id, file)
);
CREATE TABLE files (file TEXT PRIMARY KEY, sha256 TEXT NOT NULL);
CREATE TABLE passages (
    vec_id INTEGER PRIMARY KEY, passage_id TEXT UNIQUE NOT NULL, article_id TEXT NOT NULL,
    position INTEGER NOT NULL, text TEXT NOT NULL, file TEXT NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, tokens TEXT NOT NULL
);
CREATE INDEX passages_article ON passages(article_id);
"""


def _span_json(span: Span | None) -> str | None:
    return (
        None if span is None else json.dumps([span.text, span.start, span.end], ensure_ascii=False)
    )


def _para_row(p: Span) -> list:
    """A paragraph with its offset map, so stored articles can be chunked again exactly."""
    return [p.text, p.start, p.end, [list(r) for r in p.runs], p.markup_before]


def _para_from_row(row: list) -> Span:
    text, start, end, runs, markup_before = row
    return Span(text, start, end, tuple(tuple(r) for r in runs), markup_before)


def _write_sqlite(path: Path, content: IndexContent) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(_SCHEMA)
        conn.executemany(
            "INSERT INTO articles VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    a.article_id,
                    a.title,
                    a.date,
                    a.byline,
                    a.source,
                    a.url,
                    a.content_hash,
                    a.file,
                    _span_json(a.title_span),
                    json.dumps([_para_row(p) for p in a.paragraphs], ensure_ascii=False),
                    int(a.title_derived),
                )
                for a in content.articles.values()
            ],
        )
        conn.executemany(
            "INSERT OR IGNORE INTO article_files VALUES (?,?)",
            [
                (a.article_id, f)
                for a in content.articles.values()
                for f in dict.fromkeys([a.file, *a.extra_files])
            ],
        )
        conn.executemany("INSERT INTO files VALUES (?,?)", sorted(content.files.items()))
        conn.executemany(
            "INSERT INTO passages VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (
                    i,
                    p.passage_id,
                    p.article_id,
                    p.position,
                    p.text,
                    p.file,
                    p.start,
                    p.end,
                    " ".join(t),
                )
                for i, (p, t) in enumerate(zip(content.passages, content.tokens, strict=True))
            ],
        )
        conn.commit()
    finally:
        conn.close()


_PASSAGE_COLUMNS = 'passage_id, article_id, position, text, file, start, "end"'


def read_articles(conn: sqlite3.Connection, ids: list[str] | None = None) -> dict[str, Article]:
    """Articles of an open index database, in stored order: all of them, or those with these
    ids (a shard that keeps only what queries need reads an article when asked for it)."""
    where, params = "", ()
    if ids is not None:
        where, params = f" WHERE article_id IN ({','.join('?' * len(ids))})", tuple(ids)
    extra: dict[str, list[str]] = {}
    for article_id, file in conn.execute(
        "SELECT article_id, file FROM article_files" + where, params
    ):
        extra.setdefault(article_id, []).append(file)
    columns = {r[1] for r in conn.execute("PRAGMA table_info(articles)")}
    # Indexes written before title_derived existed: their untitled articles get a
    # derived title on reading, as a new build would give them.
    legacy = "title_derived" not in columns
    derived = "0" if legacy else "title_derived"
    articles: dict[str, Article] = {}
    for row in conn.execute(
        "SELECT article_id, title, date, byline, source, url, content_hash, file, "
        f"title_span, paragraphs, {derived} FROM articles{where} ORDER BY rowid",
        params,
    ):
        (aid, title, date, byline, source, url, chash, file, title_span, paragraphs, tdr) = row
        ts = json.loads(title_span) if title_span else None
        articles[aid] = article = Article(
            article_id=aid,
            title=title,
            file=file,
            paragraphs=[_para_from_row(p) for p in json.loads(paragraphs)],
            title_span=Span(*ts) if ts else None,
            date=date,
            byline=byline,
            source=source,
            url=url,
            content_hash=chash,
            extra_files=sorted(f for f in extra.get(aid, []) if f != file),
            title_derived=bool(tdr),
        )
        if legacy:
            name_untitled(article)
    return articles


def read_passages(conn: sqlite3.Connection, rows: list[int]) -> list[Passage]:
    """The passages with these rows (``vec_id``), in the order asked."""
    found = {
        vec_id: Passage(*rest)
        for vec_id, *rest in conn.execute(
            f"SELECT vec_id, {_PASSAGE_COLUMNS} FROM passages "
            f"WHERE vec_id IN ({','.join('?' * len(rows))})",
            tuple(rows),
        )
    }
    return [found[r] for r in rows]


def _read_sqlite(path: Path) -> IndexContent:
    content = IndexContent()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        content.articles = read_articles(conn)
        content.files = dict(conn.execute("SELECT file, sha256 FROM files"))
        for row in conn.execute(f"SELECT {_PASSAGE_COLUMNS}, tokens FROM passages ORDER BY vec_id"):
            *fields, tokens = row
            content.passages.append(Passage(*fields))
            content.tokens.append(tokens.split(" ") if tokens else [])
    except sqlite3.DatabaseError as exc:
        raise IndexStoreError(
            f"The index database {path} is damaged ({exc}). Rebuild the index."
        ) from exc
    finally:
        conn.close()
    return content


# --------------------------------------------------------------------------- writing


def _link_target(index_path: Path) -> Path | None:
    if index_path.is_symlink():
        return (index_path.parent / os.readlink(index_path)).resolve()
    return None


def stage(index_path: Path) -> Path:
    """A new, empty directory beside ``index_path`` to write a version into, then hand to
    :func:`publish` (or remove, on failure)."""
    index_path = Path(os.path.abspath(index_path))
    parent = index_path.parent
    parent.mkdir(parents=True, exist_ok=True)
    if index_path.exists() and not index_path.is_symlink():
        if any(index_path.iterdir()):
            raise IndexStoreError(
                f"{index_path} exists and is not an index made by this tool; "
                "choose another --out or remove it."
            )
        index_path.rmdir()
    staging = parent / f".{index_path.name}.tmp{_stamp()}"
    staging.mkdir()
    return staging


def publish(index_path: Path, staging: Path) -> Path:
    """Make the complete directory ``staging`` the index at ``index_path`` in one step.

    It is fsynced and renamed into a version directory, then the link is swapped with
    ``os.replace``: a process killed at any moment leaves the link on the old version or on
    the new one. The previous version stays for readers still on it; older ones go."""
    index_path = Path(os.path.abspath(index_path))
    parent = index_path.parent
    previous = _link_target(index_path)
    stamp = _stamp()
    version = parent / f".{index_path.name}.v{stamp}"
    _fsync_tree(staging)
    os.rename(staging, version)
    link_tmp = parent / f".{index_path.name}.link{stamp}"
    os.symlink(version.name, link_tmp)
    os.replace(link_tmp, index_path)  # the atomic moment
    _fsync_tree_dir(parent)
    _remove_stale_versions(index_path, keep={version, previous})
    return version


def _stamp() -> str:
    return f"{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(4)}"


def write_index(
    index_path: Path,
    content: IndexContent,
    settings: IndexSettings,
    build: dict[str, str] | None = None,
) -> WrittenIndex:
    """Write ``content`` as a new version of the index at ``index_path``, atomically."""
    staging = stage(index_path)
    try:
        vectors = content.vector_matrix(settings.dimension)
        if len(vectors) != len(content.passages):
            raise ValueError("vectors and passages differ in number")
        _write_sqlite(staging / SQLITE, content)
        vector_index = VectorIndex.build(vectors, settings.faiss_kind)
        vector_index.save(staging)
        keywords = KeywordIndex.build(
            content.tokens, settings.tokenizer, settings.bm25_k1, settings.bm25_b
        )
        keywords.save(staging)
        if content.sentences is not None:
            if content.sentences.passages() > len(content.passages):
                raise ValueError("sentences of passages the index does not hold")
            content.sentences.save(staging)
        manifest = _manifest(staging, content, settings, build or {})
        (staging / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        version = publish(index_path, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return WrittenIndex(version, manifest, vector_index, keywords)


def _manifest(
    staging: Path, content: IndexContent, settings: IndexSettings, build: dict[str, str]
) -> Manifest:
    articles = content.articles.values()
    dates = sorted(a.date for a in articles if a.date)
    return Manifest(
        settings=settings,
        counts=Counts(
            articles=len(content.articles),
            passages=len(content.passages),
            files=len(content.files),
            sources=len({a.source for a in articles if a.source}),
        ),
        date_range=(dates[0], dates[-1]) if dates else None,
        source_files=dict(sorted(content.files.items())),
        components={
            p.relative_to(staging).as_posix(): {"size": p.stat().st_size, "sha256": sha256_file(p)}
            for p in _component_files(staging)
        },
        built_at=now_utc(),
        build=dict(build),
    )


def _fsync_tree_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_versions(index_path: Path, keep: set[Path | None]) -> None:
    """Drop versions no link points at; the previous one stays for readers still on it."""
    keep_resolved = {p.resolve() for p in keep if p is not None}
    for candidate in index_path.parent.glob(f".{index_path.name}.*"):
        if candidate.resolve() in keep_resolved:
            continue
        if candidate.is_symlink():
            candidate.unlink(missing_ok=True)
        elif candidate.is_dir():
            shutil.rmtree(candidate, ignore_errors=True)


# --------------------------------------------------------------------------- reading


def resolve_version(index_path: Path) -> Path:
    """The version directory an index path points at right now."""
    index_path = Path(index_path)
    if not index_path.exists():
        raise IndexStoreError(
            f"No index at {index_path}. Build one with: python -m indexer build seeds --out {index_path}"
        )
    return index_path.resolve()


def read_manifest(version: Path) -> Manifest:
    return Manifest.read(version)


def is_index(index_path: Path) -> bool:
    """Whether an index path points at a version with a readable manifest (a cache that is
    not one gets rebuilt; a source that is not one is read as files)."""
    try:
        read_manifest(resolve_version(index_path))
        return True
    except IndexStoreError:
        return False


def verify_components(version: Path, manifest: Manifest) -> None:
    """Every file the manifest lists is there, whole, with the recorded checksum."""
    for name, expected in manifest.components.items():
        path = version / name
        if not path.exists():
            raise IndexStoreError(
                f"The index file {name} is missing from {version}. Rebuild the index."
            )
        size = path.stat().st_size
        if size != expected["size"]:
            raise IndexStoreError(
                f"The index file {name} has {size} bytes, not the {expected['size']} recorded: "
                "it is truncated or was changed. Rebuild the index."
            )
        if sha256_file(path) != expected["sha256"]:
            raise IndexStoreError(
                f"The index file {name} fails its checksum: it is damaged. Rebuild the index."
            )


def load_content(index_path: Path) -> tuple[Manifest, IndexContent]:
    """Read the whole current index back into memory (for updates)."""
    return load_version_content(resolve_version(index_path))


def load_version_content(version: Path) -> tuple[Manifest, IndexContent]:
    """Read one version directory into memory, verifying every file first."""
    manifest = read_manifest(version)
    verify_components(version, manifest)
    content = _read_sqlite(version / SQLITE)
    vectors = VectorIndex.load_vectors(version)
    if vectors.shape[0] != len(content.passages):
        raise IndexStoreError(
            f"The index has {len(content.passages)} passages but {vectors.shape[0]} vectors. Rebuild."
        )
    content.vectors = vectors
    content.sentences = SentenceIndex.load(version)
    return manifest, content


def load_search_structures(
    version: Path, manifest: Manifest, content: IndexContent
) -> tuple[VectorIndex, KeywordIndex]:
    """The vector and keyword components of a version directory, over its loaded content."""
    s = manifest.settings
    vectors = VectorIndex.load(version, s.faiss_kind, vectors=content.vectors)
    keywords = KeywordIndex.load(version, content.tokens, s.tokenizer, s.bm25_k1, s.bm25_b)
    return vectors, keywords
