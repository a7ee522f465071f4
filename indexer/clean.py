"""Layout cleaning that only ever removes white space, and keeps a map back to raw offsets.

The news pages carry layout artefacts: spaces and line breaks inserted inside Chinese words and
sentences (``四 川省``), and paragraphs broken by a blank line in mid-sentence (``具体\\n\\n建设
内容为``). Cleaning never changes or adds a character other than white space, so for any cleaned
text ``t`` taken from ``raw[start:end]`` the two are equal once white space is removed from both.
That is what lets every record be cited back to the exact characters of its source file.

Rules for a run of white space between two kept characters ``a`` and ``b``:

* strict (body text): the run is dropped, except that a single space is kept when both sides are
  Latin/digit tokens (``Intel Core``, ``AOS, IBM``, ``13 5G``). Half-width punctuation counts as
  Latin only when it touches a Latin letter or digit on its far side, because these pages use
  ``,`` ``(`` ``:`` as stand-ins for the full-width Chinese marks (``建设, 1934年`` -> ``建设,1934年``).
* ``keep_spaces`` (headline-like lines on pages without inserted spaces): every run becomes one
  space. In titles such as ``敢闯敢干 唯实争先`` the space is typography, not an artefact.
"""

from __future__ import annotations

import re
import string
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass

from indexer.schema import Span

#: Characters that end a sentence.
TERMINATORS = "。！？!?…；;"
#: Closing quotes/brackets that may follow a terminator and still belong to the sentence.
CLOSERS = "”’\"'」』)）》】〕"

_ASCII_PUNCT = frozenset(string.punctuation)
_INSERTED_SPACE = re.compile(r"(?<=[\u3400-\u9fff])[ \t\u3000]+(?=[\u3400-\u9fff])")
_CJK_CHAR = re.compile(r"[\u3400-\u9fff]")
# A paragraph that opens with a news dateline always starts something new.
DATELINE = re.compile(
    r"^\s*(?:本报讯|本报[\u4e00-\u9fff]{0,6}\d{1,2}月\d{1,2}日电"
    r"|[\u4e00-\u9fff]{1,4}社[\u4e00-\u9fff]{0,12}?\d{1,2}月\d{1,2}日电)"
)


@dataclass(frozen=True)
class Cleaned:
    """Cleaned text plus, for each of its characters, the offset of that character in raw."""

    text: str
    offsets: tuple[int, ...]

    def raw_range(self, i: int, j: int) -> tuple[int, int]:
        """Raw ``[start, end)`` covering cleaned characters ``[i, j)`` (``j > i``)."""
        return self.offsets[i], self.offsets[j - 1] + 1

    def span(self) -> Span:
        """The whole cleaned text as a Span that remembers its offset map."""
        if not self.text:
            raise ValueError("cannot make a span of empty text")
        start, end = self.raw_range(0, len(self.text))
        return Span(self.text, start, end, runs=compress(self.offsets))


def squash(text: str) -> str:
    """``text`` with all white space removed: the form in which a citation and its source
    characters are equal (see the module docstring)."""
    return "".join(text.split())


def _latin(ch: str) -> bool:
    return ch.isalnum() and unicodedata.east_asian_width(ch) not in ("W", "F")


def _latin_side(ch: str, beyond: str) -> bool:
    """Is ``ch`` (with ``beyond`` the next character away from the gap) part of a Latin token?"""
    if _latin(ch):
        return True
    return ch in _ASCII_PUNCT and _latin(beyond)


def clean(
    raw: str, start: int = 0, end: int | None = None, *, keep_spaces: bool = False
) -> Cleaned:
    """Clean ``raw[start:end]``: drop leading/trailing white space and layout white space inside.

    Returns the cleaned text and the raw offset of every cleaned character (see module doc).
    """
    end = len(raw) if end is None else end
    out: list[str] = []
    offs: list[int] = []
    i = start
    while i < end:
        ch = raw[i]
        if not ch.isspace():
            out.append(ch)
            offs.append(i)
            i += 1
            continue
        j = i
        while j < end and raw[j].isspace():
            j += 1
        if out and j < end:
            keep = keep_spaces or (
                _latin_side(out[-1], out[-2] if len(out) > 1 else "")
                and _latin_side(raw[j], raw[j + 1] if j + 1 < end else "")
            )
            if keep:
                out.append(" ")
                offs.append(i)
        i = j
    return Cleaned("".join(out), tuple(offs))


def is_closed(text: str) -> bool:
    """Does ``text`` end a sentence (terminator, optionally followed by closing quotes)?

    A Latin full stop counts here too (``…in 2023.``): at the end of a paragraph it is one.
    """
    t = text.rstrip()
    while t and t[-1] in CLOSERS:
        t = t[:-1].rstrip()
    return bool(t) and (t[-1] in TERMINATORS or t[-1] == ".")


def is_continuation(previous: str, following: str) -> bool:
    """Was ``following`` split off ``previous`` by a blank line in mid-sentence?

    The text-only half of the re-join rule: the previous paragraph does not end a sentence and the
    next one does not open with a dateline. The caller must also rule out titles, sub-headlines,
    captions and bylines (see ``indexer.ingest``), which legitimately end without punctuation.
    """
    return bool(previous.strip()) and not is_closed(previous) and not DATELINE.match(following)


def has_inserted_spaces(raw: str) -> bool:
    """Does this page have spaces inserted inside Chinese text (a layout artefact)?

    Clean pages have the odd deliberate space (``《中共中央 国务院…》``); a page laid out with
    inserted spaces has one every couple of dozen characters.
    """
    cjk = len(_CJK_CHAR.findall(raw))
    return cjk > 0 and len(_INSERTED_SPACE.findall(raw)) * 100 > cjk


def compress(offsets: tuple[int, ...] | list[int]) -> tuple[tuple[int, int], ...]:
    """Run-length form of an offset map: ``(cleaned_index, raw_offset)`` where each run starts."""
    runs: list[tuple[int, int]] = []
    for i, off in enumerate(offsets):
        if not runs or off != offsets[i - 1] + 1:
            runs.append((i, off))
    return tuple(runs)


def raw_offset(span: Span, i: int) -> int:
    """Raw offset of character ``i`` of ``span.text``."""
    if not 0 <= i < len(span.text):
        raise IndexError(i)
    runs = span.runs
    if not runs:
        if span.end - span.start != len(span.text):
            raise ValueError("span has no offset map and its text is not a verbatim copy of raw")
        return span.start + i
    k = bisect_right(runs, (i, float("inf"))) - 1
    first, off = runs[k]
    return off + (i - first)


def raw_range(span: Span, i: int, j: int) -> tuple[int, int]:
    """Raw ``[start, end)`` of ``span.text[i:j]`` (``j > i``): first char to end of last char."""
    return raw_offset(span, i), raw_offset(span, j - 1) + 1
