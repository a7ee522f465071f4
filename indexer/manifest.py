"""What an index records about itself (``manifest.json``), and the one compatibility check.

Every reader and writer of an index (build, add, remove, the service's load, eval) compares
the settings it would use with the ones the index was built with through
:meth:`Manifest.check_compatible`. Reading needs the same model and tokenizer (query vectors
and query tokens must be comparable with the stored ones); writing needs the chunking too,
or old and new passages would be cut differently. A mismatch is refused before anything is
embedded or written, with a message that names the setting, both values and the way out.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal

FORMAT_VERSION = 1
MANIFEST = "manifest.json"

Purpose = Literal["read", "write"]


class IndexStoreError(Exception):
    """The index is missing, damaged or incompatible; the message says which and what to do."""


class IncompatibleIndex(IndexStoreError):
    """The index was built with settings that the current ones would contradict."""


@dataclass(frozen=True)
class IndexSettings:
    """The settings an index is built with.

    The fields up to ``chunk_overlap_sentences`` must match between an index and whoever
    reads or extends it; the search-structure parameters after them are properties of the
    index (a write keeps them: FAISS and BM25 are rebuilt from the stored vectors and tokens).
    """

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

    def with_structures_of(self, other: IndexSettings) -> IndexSettings:
        """These settings, with the search-structure parameters of ``other``."""
        return IndexSettings(
            **{
                **asdict(self),
                "faiss_kind": other.faiss_kind,
                "bm25_k1": other.bm25_k1,
                "bm25_b": other.bm25_b,
            }
        )


# (field, how a user sets it, whether reading needs it to match)
_CHECKED: tuple[tuple[str, str, bool], ...] = (
    ("model_name", "--model / NEWSQA_MODEL", True),
    ("model_checksum", "the installed model files (python -m indexer models install)", True),
    ("dimension", "--model / NEWSQA_MODEL", True),
    ("tokenizer", "NEWSQA_TOKENIZER_MODE / NEWSQA_USER_DICT / NEWSQA_SCRIPT_FOLD", True),
    ("chunk_target_chars", "NEWSQA_CHUNK_TARGET_CHARS", False),
    ("chunk_max_chars", "NEWSQA_CHUNK_MAX_CHARS", False),
    ("chunk_overlap_sentences", "NEWSQA_CHUNK_OVERLAP_SENTENCES", False),
)


@dataclass(frozen=True)
class Counts:
    articles: int = 0
    passages: int = 0
    files: int = 0
    sources: int = 0


@dataclass(frozen=True)
class Manifest:
    settings: IndexSettings
    counts: Counts = Counts()
    date_range: tuple[str, str] | None = None
    source_files: dict[str, str] = field(default_factory=dict)  # file -> sha256
    components: dict[str, dict] = field(default_factory=dict)  # file -> {size, sha256}
    built_at: str = ""
    build: dict[str, str] = field(default_factory=dict)  # how it was built: device, dtype
    format_version: int = FORMAT_VERSION

    # ------------------------------------------------------------------- checks

    def check_compatible(self, expected: IndexSettings, purpose: Purpose = "read") -> None:
        """Raise :class:`IncompatibleIndex` when ``expected`` contradicts this index."""
        for name, how, needed_to_read in _CHECKED:
            if purpose == "read" and not needed_to_read:
                continue
            have, want = getattr(self.settings, name), getattr(expected, name)
            if name in ("model_checksum", "dimension") and not (have and want):
                continue  # a model folder that does not record it: the name decides
            if have != want:
                action = "read" if purpose == "read" else "extend"
                raise IncompatibleIndex(
                    f"The index was built with {name} = {_show(have)}, but this run would "
                    f"{action} it with {name} = {_show(want)} (set by {how}). "
                    f"Use the index's setting, or rebuild the index with the new one: "
                    f"python -m indexer build SOURCES --out INDEX."
                )

    # ------------------------------------------------------------------ (de)serialise

    def to_json(self) -> str:
        data = asdict(self)
        data["date_range"] = list(self.date_range) if self.date_range else None
        return json.dumps(data, ensure_ascii=False, indent=2)

    @classmethod
    def from_dict(cls, data: object, where: Path | str = "manifest.json") -> Manifest:
        if not isinstance(data, dict):
            raise IndexStoreError(f"{where} is not a JSON object. Rebuild the index.")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise IndexStoreError(
                f"The index at {Path(where).parent} has format version {version!r}; this program "
                f"reads version {FORMAT_VERSION}. Rebuild the index with this version of the "
                "indexer."
            )
        try:
            known = {f.name for f in fields(IndexSettings)}
            settings = IndexSettings(**{k: v for k, v in data["settings"].items() if k in known})
            date_range = data.get("date_range")
            return cls(
                settings=settings,
                counts=Counts(**data.get("counts", {})),
                date_range=tuple(date_range) if date_range else None,
                source_files=dict(data.get("source_files", {})),
                components=dict(data.get("components", {})),
                built_at=str(data.get("built_at", "")),
                build=dict(data.get("build", {})),
                format_version=version,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise IndexStoreError(f"{where} is damaged ({exc!r}). Rebuild the index.") from exc

    @classmethod
    def read(cls, version_dir: Path) -> Manifest:
        path = Path(version_dir) / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise IndexStoreError(
                f"{path} is missing: this is not a complete index. Rebuild it."
            ) from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise IndexStoreError(f"{path} is damaged ({exc}). Rebuild the index.") from exc
        return cls.from_dict(data, path)


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:24] + "…" + text[-8:]


def expected_settings(settings, model: str | None = None) -> IndexSettings:
    """The index settings this configuration would build with, read from the installed model's
    description and the tokenizer's fingerprint, without loading either."""
    from indexer import models, tokenize

    info = models.describe(models.resolve(model or settings.model, settings.models_dir))
    return IndexSettings(
        model_name=info.name,
        model_checksum=info.checksum,
        dimension=int(info.dimension or 0),
        tokenizer=tokenize.fingerprint(
            settings.tokenizer_mode, settings.user_dict, settings.script_fold
        ),
        chunk_target_chars=settings.chunk_target_chars,
        chunk_max_chars=settings.chunk_max_chars,
        chunk_overlap_sentences=settings.chunk_overlap_sentences,
        faiss_kind=settings.faiss_kind,
        bm25_k1=settings.bm25_k1,
        bm25_b=settings.bm25_b,
    )
