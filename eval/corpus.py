"""A news corpus in JSON lines (``.jsonl`` or ``.jsonl.gz``: ``id``, ``text``, ``date``?,
``title``?) as the index an answer set is scored against.

The CRUD questions (``../shared/eval-data/crud_qa_dev.jsonl``) are judged against the whole
5,000-article corpus: wire copies and similar stories are the distractors. Building that
index takes long on a CPU, so it is built once and cached, keyed by the corpus bytes, the
selection of articles, every index setting and the dtype (like the BEIR cache).

``select_articles`` picks a CI-sized part deterministically: the articles the questions
name, plus ``others`` more chosen by the sha1 of their id (the same on every machine).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

from eval.errors import DatasetError
from indexer import store
from indexer.chunk import CHUNKER
from indexer.ingest import article_from_record
from indexer.pipeline import Indexer, UpdateReport
from indexer.schema import Article

CORPUS_SUFFIXES = (".jsonl.gz", ".jsonl")
LINE = "_line"
CACHE_INFO = "cache.json"  # beside a cached index: which corpus, settings and articles


def is_corpus(path: Path) -> bool:
    return Path(path).name.lower().endswith(CORPUS_SUFFIXES)


def corpus_name(path: Path) -> str:
    name = Path(path).name
    for suffix in CORPUS_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_records(path: Path) -> tuple[list[dict], str]:
    """The records of a corpus file, in file order (each with its line number under
    ``LINE``), and the sha256 of its bytes."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"corpus not found: {path}")
    raw = path.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    text = gzip.decompress(raw).decode("utf-8") if path.name.endswith(".gz") else raw.decode()
    records = []
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path.name} line {lineno}: bad JSON ({exc.msg})") from None
        if not isinstance(obj, dict) or "id" not in obj or "text" not in obj:
            raise DatasetError(f"{path.name} line {lineno}: expected an object with id and text")
        records.append(obj | {LINE: lineno})
    if not records:
        raise DatasetError(f"{path.name} is empty: no articles in {path}")
    return records, sha


def select_articles(records: list[dict], wanted: Iterable[str], others: int | None) -> list[dict]:
    """All records (``others`` None), or the ``wanted`` ids plus ``others`` more, the ones
    whose sha1(id) sorts first. Keeps file order."""
    if others is None:
        return records
    wanted = set(wanted)
    rest = sorted(
        (r for r in records if str(r["id"]) not in wanted),
        key=lambda r: hashlib.sha1(str(r["id"]).encode()).hexdigest(),
    )
    keep = wanted | {str(r["id"]) for r in rest[:others]}
    return [r for r in records if str(r["id"]) in keep]


def to_article(record: dict, name: str) -> Article:
    """A record as the indexer reads a ``.jsonl`` line: an untitled one stays untitled (the
    pipeline gives it a derived display title, ``indexer.titles``)."""
    return article_from_record(record, f"{name}.jsonl#L{record[LINE]}")


def settings_key(indexer: Indexer) -> str:
    """Every index setting, the dtype the vectors are computed in, what is put before an
    untitled article's passages (``Indexer.INDEXED_TEXT``) and how passages are cut
    (``chunk.CHUNKER``)."""
    settings = json.dumps(asdict(indexer.index_settings()), sort_keys=True)
    key = f"{settings}|{indexer.embedder.dtype}|{Indexer.INDEXED_TEXT}|{CHUNKER}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def cache_key(corpus_sha: str, ids: list[str], indexer: Indexer) -> str:
    selection = hashlib.sha256("\n".join(ids).encode()).hexdigest()
    key = f"{corpus_sha}|{selection}|{settings_key(indexer)}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _donor(cache_dir: Path, corpus_sha: str, settings: str, ids: set[str]) -> Path | None:
    """A cached index of the same corpus and settings sharing the most articles with ``ids``
    (its vectors are reused: only the articles it lacks are embedded)."""
    best, best_overlap = None, 0
    for info_path in cache_dir.glob(f"*/{CACHE_INFO}"):
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if info.get("corpus_sha256") != corpus_sha or info.get("settings") != settings:
            continue
        overlap = len(ids & set(info.get("ids", [])))
        if overlap > best_overlap and (info_path.parent / "index").exists():
            best, best_overlap = info_path.parent / "index", overlap
    return best


def corpus_index(
    path: Path,
    indexer: Indexer,
    cache_dir: Path,
    wanted: Iterable[str] = (),
    others: int | None = None,
    progress: bool = True,
) -> Path:
    """The index of a corpus file (or of its selected part), built once and cached.

    A cached index of another part of the same corpus with the same settings lends its
    passages and vectors: a part is cut from the whole without embedding anything, and the
    whole grows from a part by embedding only the rest."""
    records, sha = read_records(path)
    chosen = select_articles(records, wanted, others)
    ids = [str(r["id"]) for r in chosen]
    name = corpus_name(path)
    part = "" if others is None else f"-part{len(chosen)}"
    out = cache_dir / f"{name}{part}-{cache_key(sha, ids, indexer)}" / "index"
    if store.is_index(out):
        return out  # else missing or damaged: (re)build it
    settings = settings_key(indexer)
    content = store.IndexContent()
    donor = _donor(cache_dir, sha, settings, set(ids))
    if donor is not None:
        try:
            _, content = store.load_content(donor)
        except store.IndexStoreError:
            content = store.IndexContent()
    keep = set(ids)
    remove = {a for a in content.articles if a not in keep}
    add = [to_article(r, name) for r in chosen if str(r["id"]) not in content.articles]
    indexer.apply(content, add, remove, UpdateReport(), progress=progress)
    store.write_index(out, content, indexer.index_settings(), indexer.build_info())
    info = {"corpus": name, "corpus_sha256": sha, "settings": settings, "ids": ids}
    (out.parent / CACHE_INFO).write_text(json.dumps(info), encoding="utf-8")
    return out
