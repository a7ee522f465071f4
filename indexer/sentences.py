"""The sentence component: a vector for every sentence of every passage, made at index time.

An answer is a sentence of the top passages (``qa_service.answer``). When the question shares
few words with them (an English question over Chinese news, a paraphrase), how close each
sentence's meaning is to the question's decides. Embedding the candidate sentences while
answering cost more than the rest of a request (BENCHMARKS.md), so they are embedded once,
when their passage is, and stored beside the passage vectors::

    sentence_spans.npy    int32 (n, 3): passage row, start, end (within the passage text)
    sentence_vectors.npy  float16 (n, dim), normalised; row i belongs to span i

Rows are grouped by passage, in passage order, so a passage's sentences are one slice. Half
precision halves the size; a cosine similarity loses about 1e-3 in it, far below the
differences between sentences that matter. The manifest lists both files with checksums,
like every component (``indexer.store``); ``.npy`` is read without pickle.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from indexer.chunk import sentence_bounds

SPANS = "sentence_spans.npy"
VECTORS = "sentence_vectors.npy"
FILES = (SPANS, VECTORS)
MIN_CHARS = 4  # shorter scraps are not sentences worth answering with


def passage_sentences(text: str) -> list[tuple[int, int]]:
    """Spans of the sentences of a passage text: the indexer's sentences, and every line
    break ends one too (a passage joins its paragraphs with ``\\n``; a heading line has no
    full stop). Scraps under ``MIN_CHARS`` characters are dropped."""
    spans = []
    offset = 0
    for line in text.split("\n"):
        spans += [(offset + s, offset + e) for s, e in sentence_bounds(line) if e - s >= MIN_CHARS]
        offset += len(line) + 1
    return spans


@dataclass(frozen=True)
class SentenceIndex:
    spans: np.ndarray  # int32 (n, 3): passage row, start, end
    vectors: np.ndarray  # float16 (n, dim)

    @classmethod
    def empty(cls, dimension: int) -> SentenceIndex:
        return cls(np.zeros((0, 3), np.int32), np.zeros((0, dimension), np.float16))

    @classmethod
    def build(
        cls,
        texts: Sequence[str],
        encode: Callable[[list[str]], np.ndarray],
        dimension: int,
        first_row: int = 0,
    ) -> SentenceIndex:
        """The sentences of these passage texts (rows ``first_row``...), each distinct
        sentence embedded once (neighbouring passages share a sentence)."""
        spans = [
            (first_row + i, s, e)
            for i, text in enumerate(texts)
            for s, e in passage_sentences(text)
        ]
        if not spans:
            return cls.empty(dimension)
        sentences = [texts[r - first_row][s:e] for r, s, e in spans]
        distinct = list(dict.fromkeys(sentences))
        where = {s: i for i, s in enumerate(distinct)}
        vectors = np.asarray(encode(distinct), dtype=np.float32)
        rows = np.fromiter((where[s] for s in sentences), dtype=np.int64, count=len(sentences))
        return cls(np.asarray(spans, dtype=np.int32), vectors[rows].astype(np.float16))

    def __len__(self) -> int:
        return len(self.spans)

    def keep(self, rows: Sequence[int]) -> SentenceIndex:
        """The sentences of these passage rows (in this order), renumbered 0, 1, ..."""
        parts, new_rows = [], []
        for new, old in enumerate(rows):
            lo, hi = self.bounds(old)
            parts.append(np.arange(lo, hi))
            new_rows.append(np.full(hi - lo, new, dtype=np.int32))
        if not parts:
            return SentenceIndex.empty(self.vectors.shape[1])
        take = np.concatenate(parts)
        spans = self.spans[take].copy()
        spans[:, 0] = np.concatenate(new_rows)
        return SentenceIndex(spans, self.vectors[take])

    def concat(self, other: SentenceIndex) -> SentenceIndex:
        """These sentences, then ``other``'s (whose rows must follow this one's passages)."""
        return SentenceIndex(
            np.concatenate([self.spans, other.spans]),
            np.concatenate([self.vectors, other.vectors]),
        )

    @cached_property
    def _passage_rows(self) -> np.ndarray:
        return np.ascontiguousarray(self.spans[:, 0])

    def bounds(self, row: int) -> tuple[int, int]:
        """The slice of sentence rows that belongs to passage ``row``."""
        rows = self._passage_rows
        return int(np.searchsorted(rows, row, "left")), int(np.searchsorted(rows, row, "right"))

    def of_passage(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """``(spans (k, 2) start/end, vectors (k, dim) float32)`` of passage ``row``."""
        lo, hi = self.bounds(row)
        return self.spans[lo:hi, 1:], self.vectors[lo:hi].astype(np.float32)

    def passages(self) -> int:
        """How many passages the rows cover (the highest passage row + 1)."""
        return int(self.spans[-1, 0]) + 1 if len(self.spans) else 0

    def save(self, folder: Path) -> None:
        np.save(Path(folder) / SPANS, np.ascontiguousarray(self.spans), allow_pickle=False)
        np.save(Path(folder) / VECTORS, np.ascontiguousarray(self.vectors), allow_pickle=False)

    @classmethod
    def load(cls, folder: Path) -> SentenceIndex | None:
        """The component of a version directory; None for an index written before it."""
        from indexer.manifest import IndexStoreError

        folder = Path(folder)
        if not (folder / SPANS).exists() and not (folder / VECTORS).exists():
            return None
        try:
            spans = np.load(folder / SPANS, allow_pickle=False)
            vectors = np.load(folder / VECTORS, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise IndexStoreError(
                f"The sentence vectors of {folder} are damaged ({exc}). Rebuild."
            ) from exc
        if spans.ndim != 2 or spans.shape[1] != 3 or len(spans) != len(vectors):
            raise IndexStoreError(
                f"The sentence files of {folder} disagree ({spans.shape} spans, "
                f"{vectors.shape} vectors). Rebuild."
            )
        return cls(spans, vectors)
