"""A sharded index: a generation manifest and N shards, each a complete index of today's format.

Layout. The index path (say ``data/index``) is a link to a generation directory beside it,
written and swapped exactly as a plain index's version directory (``store.stage`` and
``store.publish``), so a crash leaves the old generation or the new one, never a mix::

    data/index -> .index.v<stamp>/
        generation.json           number, settings, sharding rule, source files, the shards
        shard-000 -> .shard-000.v<stamp>/    a plain index: manifest.json, index.sqlite, ...
        shard-001 -> ...

An article's shard is a stable hash of its id (:func:`shard_of`), so the same archive always
splits the same way, whatever order the files were read in. Everything that decides *what*
is indexed runs on the whole archive before it is split: duplicates collapse across all
shards, and the vectors are those a plain build computes. A change writes a new generation in
which only the shards whose articles changed are written again; the others are hard links to
the previous generation's files (same version name, same bytes).

:func:`at` opens either kind of index for an update, so ``pipeline.update`` has one flow.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from indexer import store
from indexer.files import sha256_file
from indexer.manifest import MANIFEST, Counts, IndexSettings, IndexStoreError, Manifest, now_utc

GENERATION = "generation.json"
GENERATION_FORMAT = 1
SHARDING = "blake2b-64(article_id) mod shards"


def shard_of(article_id: str, shards: int) -> int:
    """The shard of an article: a hash of its id that does not change between runs or
    machines (Python's ``hash`` of a str does)."""
    digest = hashlib.blake2b(article_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def shard_name(i: int) -> str:
    return f"shard-{i:03d}"


def is_sharded(index_path: Path) -> bool:
    """Is the index at ``index_path`` a generation of shards (not a plain index)?"""
    return (Path(index_path) / GENERATION).is_file()


# --------------------------------------------------------------------------- the manifest


@dataclass(frozen=True)
class ShardEntry:
    name: str  # the link in the generation directory (shard-000)
    version: str  # the version directory it points at
    manifest_sha256: str  # of the shard's manifest.json: what was written is what is read
    counts: Counts
    date_range: tuple[str, str] | None = None


@dataclass(frozen=True)
class Generation:
    """What ``generation.json`` records: the shards and what they share."""

    number: int
    settings: IndexSettings
    shards: tuple[ShardEntry, ...]
    source_files: dict[str, str] = field(default_factory=dict)  # file -> sha256, all shards
    built_at: str = ""
    build: dict[str, str] = field(default_factory=dict)
    sharding: str = SHARDING
    format_version: int = GENERATION_FORMAT

    @property
    def counts(self) -> Counts:
        c = [s.counts for s in self.shards]
        return Counts(
            articles=sum(x.articles for x in c),
            passages=sum(x.passages for x in c),
            files=len(self.source_files),
            sources=max((x.sources for x in c), default=0),  # a lower bound: shards overlap
        )

    @property
    def date_range(self) -> tuple[str, str] | None:
        ranges = [s.date_range for s in self.shards if s.date_range]
        if not ranges:
            return None
        return min(r[0] for r in ranges), max(r[1] for r in ranges)

    def manifest(self) -> Manifest:
        """The generation as one index's manifest (settings, counts, files): what readers and
        writers check compatibility against."""
        return Manifest(
            settings=self.settings,
            counts=self.counts,
            date_range=self.date_range,
            source_files=dict(self.source_files),
            built_at=self.built_at,
            build=dict(self.build),
        )

    def to_json(self) -> str:
        data = asdict(self)
        data["shards"] = [
            {**asdict(s), "date_range": list(s.date_range) if s.date_range else None}
            for s in self.shards
        ]
        return json.dumps(data, ensure_ascii=False, indent=2)

    @classmethod
    def read(cls, generation_dir: Path) -> Generation:
        path = Path(generation_dir) / GENERATION
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format_version") != GENERATION_FORMAT:
                raise IndexStoreError(
                    f"{path} has format version {data.get('format_version')!r}; this program "
                    f"reads version {GENERATION_FORMAT}. Rebuild the index."
                )
            return cls(
                number=int(data["number"]),
                settings=IndexSettings(**data["settings"]),
                shards=tuple(
                    ShardEntry(
                        name=s["name"],
                        version=s["version"],
                        manifest_sha256=s["manifest_sha256"],
                        counts=Counts(**s["counts"]),
                        date_range=tuple(s["date_range"]) if s.get("date_range") else None,
                    )
                    for s in data["shards"]
                ),
                source_files=dict(data.get("source_files", {})),
                built_at=str(data.get("built_at", "")),
                build=dict(data.get("build", {})),
                sharding=str(data.get("sharding", SHARDING)),
                format_version=data["format_version"],
            )
        except FileNotFoundError as exc:
            raise IndexStoreError(f"{path} is missing: not a sharded index. Rebuild it.") from exc
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise IndexStoreError(f"{path} is damaged ({exc!r}). Rebuild the index.") from exc


@dataclass(frozen=True)
class OpenGeneration:
    """A generation as found on disk: its directory and manifest, shards checked."""

    path: Path  # the generation directory (the index path resolved)
    generation: Generation

    def shard_path(self, i: int) -> Path:
        """Shard ``i`` as a plain index path (a link to its version directory)."""
        return self.path / self.generation.shards[i].name

    def shard_version(self, i: int) -> Path:
        return self.path / self.generation.shards[i].version

    @property
    def shard_count(self) -> int:
        return len(self.generation.shards)


def read_generation(index_path: Path) -> OpenGeneration:
    """The generation the index path points at now, each shard's manifest checked against the
    checksum the generation recorded (files of two generations are never mixed)."""
    path = store.resolve_version(index_path)
    generation = Generation.read(path)
    for entry in generation.shards:
        manifest = path / entry.version / MANIFEST
        if not manifest.is_file() or sha256_file(manifest) != entry.manifest_sha256:
            raise IndexStoreError(
                f"Shard {entry.name} of {index_path} is missing or is not the one its "
                "generation recorded. Rebuild the index."
            )
    return OpenGeneration(path, generation)


# ---------------------------------------------------------------------- split and join


def _referenced_files(content: store.IndexContent) -> set[str]:
    from indexer.pipeline import _file_of  # the one rule for "which file is this article's"

    return {_file_of(f) for a in content.articles.values() for f in (a.file, *a.extra_files)}


def partition(content: store.IndexContent, shards: int) -> list[store.IndexContent]:
    """Split an index's content by :func:`shard_of`, keeping each shard's rows in the order
    they had. A shard's ``files`` are the source files its articles came from; the whole
    list is the generation's."""
    owner = {aid: shard_of(aid, shards) for aid in content.articles}
    parts = [store.IndexContent() for _ in range(shards)]
    for aid, article in content.articles.items():
        parts[owner[aid]].articles[aid] = article
    rows: list[list[int]] = [[] for _ in range(shards)]
    for row, p in enumerate(content.passages):
        rows[owner[p.article_id]].append(row)
    vectors = content.vectors
    for part, mine in zip(parts, rows, strict=True):
        part.passages = [content.passages[r] for r in mine]
        part.tokens = [content.tokens[r] for r in mine]
        if vectors is not None:
            part.vectors = np.ascontiguousarray(vectors[mine], dtype=np.float32)
        used = _referenced_files(part)
        part.files = {f: h for f, h in content.files.items() if f in used}
        sentences = getattr(content, "sentences", None)  # stored sentence vectors, if any
        if sentences is not None:
            part.sentences = sentences.keep(mine)
    return parts


def merge(parts: list[store.IndexContent], files: dict[str, str]) -> store.IndexContent:
    """One content of all shards (the inverse of :func:`partition`, up to row order)."""
    whole = store.IndexContent(files=dict(files))
    vectors = []
    for part in parts:
        whole.articles.update(part.articles)
        whole.passages += part.passages
        whole.tokens += part.tokens
        if part.vectors is not None:
            vectors.append(part.vectors)
    if vectors:
        whole.vectors = np.concatenate(vectors).astype(np.float32, copy=False)
    sentences = [getattr(part, "sentences", None) for part in parts]
    if parts and all(s is not None for s in sentences):
        whole.sentences = _joined(sentences, [len(part.passages) for part in parts])
    return whole


def _joined(sentences: list, passages: list[int]):
    """The shards' sentence components as one, their passage rows following on."""
    spans, offset = [], 0
    for s, n in zip(sentences, passages, strict=True):
        shifted = np.array(s.spans, copy=True)
        shifted[:, 0] += offset
        spans.append(shifted)
        offset += n
    return type(sentences[0])(np.concatenate(spans), np.concatenate([s.vectors for s in sentences]))


def fingerprint(content: store.IndexContent) -> str:
    """What decides whether a shard must be written again: its articles as stored, its
    passages and its files (vectors and tokens follow from the articles)."""
    h = hashlib.sha256()
    for aid in sorted(content.articles):
        h.update(repr(content.articles[aid]).encode("utf-8"))
    h.update(repr([p.passage_id for p in content.passages]).encode("utf-8"))
    h.update(repr(sorted(content.files.items())).encode("utf-8"))
    return h.hexdigest()


# ------------------------------------------------------------------------------ writing


@dataclass(frozen=True)
class WrittenGeneration:
    """A generation just written. ``written``/``contents``: the shards written this time, with
    the search structures built for them (a service serves them without reading them back);
    the other shards are the previous generation's, unchanged."""

    version: Path  # the generation directory
    generation: Generation
    written: dict[int, store.WrittenIndex] = field(default_factory=dict)
    contents: dict[int, store.IndexContent] = field(default_factory=dict)

    @property
    def manifest(self) -> Manifest:
        return self.generation.manifest()


def write_generation(
    index_path: Path,
    parts: list[store.IndexContent],
    files: dict[str, str],
    settings: IndexSettings,
    build: dict[str, str] | None = None,
    previous: OpenGeneration | None = None,
    unchanged: frozenset[int] = frozenset(),
) -> WrittenGeneration:
    """Write a new generation of ``parts`` (one content per shard) and switch to it at once.

    Shards in ``unchanged`` are hard links to ``previous``'s files."""
    staging = store.stage(index_path)
    try:
        entries, written = [], {}
        for i, part in enumerate(parts):
            name = shard_name(i)
            if i in unchanged and previous is not None:
                old = previous.generation.shards[i]
                shutil.copytree(
                    previous.shard_version(i), staging / old.version, copy_function=os.link
                )
                os.symlink(old.version, staging / name)
                entries.append(old)
                continue
            w = store.write_index(staging / name, part, settings, build)
            written[i] = w
            entries.append(
                ShardEntry(
                    name=name,
                    version=w.version.name,
                    manifest_sha256=sha256_file(w.version / MANIFEST),
                    counts=w.manifest.counts,
                    date_range=w.manifest.date_range,
                )
            )
        generation = Generation(
            number=(previous.generation.number + 1) if previous else 1,
            settings=settings,
            shards=tuple(entries),
            source_files=dict(sorted(files.items())),
            built_at=now_utc(),
            build=dict(build or {}),
        )
        (staging / GENERATION).write_text(generation.to_json(), encoding="utf-8")
        version = store.publish(index_path, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    # The written shards' version paths pointed into the staging directory: re-anchor them.
    written = {
        i: store.WrittenIndex(version / w.version.name, w.manifest, w.vectors, w.keywords)
        for i, w in written.items()
    }
    return WrittenGeneration(version, generation, written, {i: parts[i] for i in written})


def write(
    index_path: Path,
    content: store.IndexContent,
    shards: int,
    settings: IndexSettings,
    build: dict[str, str] | None = None,
) -> WrittenGeneration:
    """A new sharded index of ``content`` at ``index_path`` (a build)."""
    if shards < 1:
        raise ValueError("an index has at least one shard")
    return write_generation(index_path, partition(content, shards), content.files, settings, build)


# ------------------------------------------------------------------ updates, either kind


class PlainTarget:
    """A plain index as ``pipeline.update`` reads and writes it."""

    def __init__(self, index_path: Path) -> None:
        self.path = Path(index_path)
        self.version = store.resolve_version(index_path)
        self.manifest = store.read_manifest(self.version)

    def load(self) -> store.IndexContent:
        return store.load_version_content(self.version)[1]

    def write(self, content, settings: IndexSettings, build) -> store.WrittenIndex:
        return store.write_index(self.path, content, settings, build)


class ShardedTarget:
    """A sharded index as ``pipeline.update`` reads and writes it: all shards read into one
    content (so that duplicates are found across them), written back as a generation in which
    only the shards whose content changed are new."""

    def __init__(self, index_path: Path) -> None:
        self.path = Path(index_path)
        self.current = read_generation(index_path)
        self.manifest = self.current.generation.manifest()
        self._before: list[str] = []

    def load(self) -> store.IndexContent:
        parts = [
            store.load_version_content(self.current.shard_version(i))[1]
            for i in range(self.current.shard_count)
        ]
        self._before = [fingerprint(p) for p in parts]
        return merge(parts, self.current.generation.source_files)

    def write(self, content, settings: IndexSettings, build) -> WrittenGeneration:
        parts = partition(content, self.current.shard_count)
        unchanged = frozenset(
            i for i, part in enumerate(parts) if self._before[i : i + 1] == [fingerprint(part)]
        )
        return write_generation(
            self.path, parts, content.files, settings, build, self.current, unchanged
        )


def at(index_path: Path) -> PlainTarget | ShardedTarget:
    """The index at ``index_path``, plain or sharded, opened for an update."""
    return ShardedTarget(index_path) if is_sharded(index_path) else PlainTarget(index_path)
