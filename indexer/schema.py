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
    """A piece of cleaned text and where it came from in the raw file.

    ``runs`` is the offset map of ``text`` in run-length form: ``(index_in_text, raw_offset)``
    where each stretch of consecutive raw characters begins (cleaning removed white space
    between stretches). It lets a chunker cite any sub-range of ``text`` back to raw offsets
    (``indexer.clean.raw_range``). Empty means ``text`` is a verbatim copy of ``raw[start:end]``.
    ``markup_before`` says that non-white-space markup (a markdown ``#`` or list bullet) sits
    in raw between the previous paragraph and this one, so no passage may run across it.
    """

    text: str
    start: int
    end: int
    runs: tuple[tuple[int, int], ...] = field(default=(), compare=False, repr=False)
    markup_before: bool = field(default=False, compare=False, repr=False)


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
    # ``title`` was made from the first sentence (the source had none; ``indexer.titles``)
    title_derived: bool = False

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
