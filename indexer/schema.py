"""The records that flow through the indexer: one place for their shape.

Offsets: ``start``/``end`` are character offsets (Python ``str`` indices, not bytes)
into the raw text of ``file``. The raw characters ``raw[start:end]`` with white space
removed equal the record's ``text`` with white space removed. For a ``.jsonl`` source,
``file`` is ``name.jsonl#L<line>`` and offsets point into that line's decoded ``text``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    """A piece of cleaned text and where it came from in the raw file."""

    text: str
    start: int
    end: int


@dataclass
class Article:
    article_id: str
    title: str
    file: str  # file name relative to the source root (or name.jsonl#L<n>)
    paragraphs: list[Span]  # body paragraphs (cleaned), title excluded
    title_span: Span | None = None
    date: str | None = None  # ISO YYYY-MM-DD only when the year is known
    byline: str | None = None
    source: str | None = None  # newspaper / outlet
    url: str | None = None
    content_hash: str = ""
    extra_files: list[str] = field(default_factory=list)  # duplicates seen elsewhere

    @property
    def text(self) -> str:
        return "\n".join(p.text for p in self.paragraphs)


@dataclass
class Passage:
    passage_id: str
    article_id: str
    position: int  # 0-based index of the passage within its article
    text: str
    file: str
    start: int
    end: int
