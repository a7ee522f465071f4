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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from indexer.files import sha256_file
from indexer.schema import Article, Passage, Span

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE = "index.sqlite"
VECTORS = "vectors.npy"
FAISS = "faiss.index"
BM25_DIR = "bm25"


class IndexStoreError(Exception):
    """The index is missing, damaged or incompatible; the message says which and what to do."""


@dataclass
class IndexContent:
    """Everything an index holds, in memory: what a write starts from."""

    articles: dict[str, Article] = field(default_factory=dict)
    passages: list[Passage] = field(default_factory=list)
    tokens: list[list[str]] = field(default_factory=list)
    vectors: np.ndarray | None = None
    files: dict[str, str] = field(default_factory=dict)  # source file -> sha256

    def vector_matrix(self, dimension: int) -> np.ndarray:
        if self.vectors is None:
            return np.zeros((0, dimension), dtype=np.float32)
        return self.vectors


@dataclass
class IndexSettings:
    """What must match between an index and whoever reads or extends it."""

    model_name: str
    model_checksum: str
    dimension: int
    tokenizer: str
    chunk_target_chars: int
    chunk_max_chars: int
    chunk_overlap_sentences: int
    faiss_kind: str = "flat"
    bm25_k1: float = 1.2
    bm25_b: float = 0.75


# ----------------------------------------------------------------------------- helpers


def _component_files(version: Path) -> list[Path]:
    files = [version / SQLITE, version / VECTORS, version / FAISS]
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


# FAISS parameters, chosen with `python -m eval bench vectors` (BENCHMARKS.md).
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128  # real questions: recall@10 0.986 (0.958 with 64) for ~0.2 ms more
IVF_MIN_VECTORS = 1024  # below this there is too little to train the lists on


def ivf_lists(n: int) -> tuple[int, int]:
    """(nlist, nprobe) of an IVF index over ``n`` vectors."""
    nlist = max(16, int(4 * np.sqrt(n)))
    return nlist, max(8, nlist // 16)


def build_faiss(vectors: np.ndarray, kind: str):
    """An inner-product FAISS index over normalised vectors; ids are row numbers.

    "flat" (exact) is the default: at 100k passages it answers in ~20 ms, below the query
    embedding, with nothing to train."""
    import faiss

    n, dim = vectors.shape if vectors.ndim == 2 else (0, vectors.shape[-1])
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    elif kind == "ivf" and n >= IVF_MIN_VECTORS:
        nlist, nprobe = ivf_lists(n)
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = nprobe
    else:  # exact; also IVF on collections too small to train
        index = faiss.IndexFlatIP(dim)
    if n:
        index.add(vectors)
    return index


def build_bm25(tokens: list[list[str]], k1: float, b: float):
    import bm25s

    retriever = bm25s.BM25(k1=k1, b=b)
    retriever.index(tokens, show_progress=False)
    return retriever


# ---------------------------------------------------------------------- the database

_SCHEMA = """
CREATE TABLE articles (
    article_id TEXT PRIMARY KEY, title TEXT NOT NULL, date TEXT, byline TEXT, source TEXT,
    url TEXT, content_hash TEXT NOT NULL, file TEXT NOT NULL,
    title_span TEXT, paragraphs TEXT NOT NULL
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
            "INSERT INTO articles VALUES (?,?,?,?,?,?,?,?,?,?)",
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


def _read_sqlite(path: Path) -> IndexContent:
    content = IndexContent()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        extra: dict[str, list[str]] = {}
        for article_id, file in conn.execute("SELECT article_id, file FROM article_files"):
            extra.setdefault(article_id, []).append(file)
        for row in conn.execute("SELECT * FROM articles ORDER BY rowid"):
            (aid, title, date, byline, source, url, chash, file, title_span, paragraphs) = row
            ts = json.loads(title_span) if title_span else None
            content.articles[aid] = Article(
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
            )
        content.files = dict(conn.execute("SELECT file, sha256 FROM files"))
        for row in conn.execute(
            'SELECT passage_id, article_id, position, text, file, start, "end", tokens '
            "FROM passages ORDER BY vec_id"
        ):
            pid, aid, pos, text, file, start, end, tokens = row
            content.passages.append(Passage(pid, aid, pos, text, file, start, end))
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


def write_index(index_path: Path, content: IndexContent, settings: IndexSettings) -> Path:
    """Write ``content`` as a new version of the index at ``index_path``, atomically."""
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
    previous = _link_target(index_path)
    stamp = f"{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(4)}"
    version = parent / f".{index_path.name}.v{stamp}"
    staging = parent / f".{index_path.name}.tmp{stamp}"
    staging.mkdir()
    try:
        vectors = np.ascontiguousarray(content.vector_matrix(settings.dimension), dtype=np.float32)
        if len(vectors) != len(content.passages):
            raise ValueError("vectors and passages differ in number")
        _write_sqlite(staging / SQLITE, content)
        np.save(staging / VECTORS, vectors, allow_pickle=False)
        import faiss

        faiss.write_index(build_faiss(vectors, settings.faiss_kind), str(staging / FAISS))
        if content.passages:
            bm25 = build_bm25(content.tokens, settings.bm25_k1, settings.bm25_b)
            bm25.save(str(staging / BM25_DIR), show_progress=False)
        dates = sorted(a.date for a in content.articles.values() if a.date)
        manifest = {
            "format_version": FORMAT_VERSION,
            "settings": asdict(settings),
            "counts": {
                "articles": len(content.articles),
                "passages": len(content.passages),
                "files": len(content.files),
                "sources": len({a.source for a in content.articles.values() if a.source}),
            },
            "date_range": [dates[0], dates[-1]] if dates else None,
            "source_files": dict(sorted(content.files.items())),
            "components": {
                str(p.relative_to(staging)): {"size": p.stat().st_size, "sha256": sha256_file(p)}
                for p in _component_files(staging)
            },
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
        _fsync_tree(staging)
        os.rename(staging, version)
        link_tmp = parent / f".{index_path.name}.link{stamp}"
        os.symlink(version.name, link_tmp)
        os.replace(link_tmp, index_path)  # the atomic moment
        _fsync_tree_dir(parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _remove_stale_versions(index_path, keep={version, previous})
    return version


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


def read_manifest(version: Path) -> dict:
    path = version / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexStoreError(
            f"{path} is missing: this is not a complete index. Rebuild it."
        ) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexStoreError(f"{path} is damaged ({exc}). Rebuild the index.") from exc
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        found = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise IndexStoreError(
            f"The index at {version} has format version {found!r}; this program reads version "
            f"{FORMAT_VERSION}. Rebuild the index with this version of the indexer."
        )
    return manifest


def verify_components(version: Path, manifest: dict) -> None:
    """Every file the manifest lists is there, whole, with the recorded checksum."""
    for name, expected in manifest.get("components", {}).items():
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


def check_compatible(manifest: dict, model_name: str, model_checksum: str, dimension: int) -> None:
    """Refuse an index built with another model: its vectors would be meaningless."""
    s = manifest["settings"]
    if s["model_name"] != model_name or (
        s["model_checksum"] and model_checksum and s["model_checksum"] != model_checksum
    ):
        raise IndexStoreError(
            f"The index was built with model {s['model_name']!r} "
            f"(checksum {s['model_checksum'][:12]}), but the loaded model is {model_name!r} "
            f"(checksum {model_checksum[:12]}). Use --model {s['model_name']} or rebuild the index."
        )
    if s["dimension"] != dimension:
        raise IndexStoreError(
            f"The index holds {s['dimension']}-dimensional vectors but the model gives {dimension}. "
            "Rebuild the index with this model."
        )


def load_content(index_path: Path) -> tuple[dict, IndexContent]:
    """Read the whole current index back into memory (for updates)."""
    return load_version_content(resolve_version(index_path))


def load_version_content(version: Path) -> tuple[dict, IndexContent]:
    """Read one version directory into memory, verifying every file first."""
    manifest = read_manifest(version)
    verify_components(version, manifest)
    content = _read_sqlite(version / SQLITE)
    try:
        vectors = np.load(version / VECTORS, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise IndexStoreError(
            f"The vectors file of {version} is damaged ({exc}). Rebuild."
        ) from exc
    if vectors.shape[0] != len(content.passages):
        raise IndexStoreError(
            f"The index has {len(content.passages)} passages but {vectors.shape[0]} vectors. Rebuild."
        )
    content.vectors = vectors
    return manifest, content


def load_search_structures(version: Path, manifest: dict):
    """The FAISS and BM25 indexes of a version directory (``bm25`` is None when empty)."""
    import bm25s
    import faiss

    try:
        faiss_index = faiss.read_index(str(version / FAISS))
    except RuntimeError as exc:
        raise IndexStoreError(
            f"The FAISS index of {version} cannot be read ({exc}). Rebuild."
        ) from exc
    bm25 = None
    if manifest["counts"]["passages"]:
        try:
            bm25 = bm25s.BM25.load(str(version / BM25_DIR), load_vocab=True, allow_pickle=False)
        except Exception as exc:  # bm25s raises several types for damaged files
            raise IndexStoreError(
                f"The BM25 index of {version} cannot be read ({exc}). Rebuild."
            ) from exc
    return faiss_index, bm25
