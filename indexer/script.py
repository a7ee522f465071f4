"""Script folding: traditional and simplified Chinese characters match each other.

Keyword search compares characters, so a simplified question (资讯, 台湾) would find nothing in
a traditional article (資訊, 臺灣). Folding maps any text to simplified characters before it is
segmented: the one tokenizer (``indexer.tokenize``) folds the indexed text and the query alike,
and highlighting (``qa_service.highlight``) folds a passage to find a folded query token in it.
Text is stored, displayed and cited in its original characters; only tokens are folded.

The conversion is OpenCC's: Hong Kong variants, then Taiwan variants, then traditional to
simplified (``hk2s`` then ``tw2s``); the two steps together leave the fewest differences
between a simplified text and its Taiwan, Hong Kong or OpenCC-standard traditional version
(see BENCHMARKS.md, "Traditional and simplified Chinese"). It is a character conversion with
OpenCC's phrase tables for the ambiguous characters, not a vocabulary translation (軟體 stays
软体, it does not become 软件).

Folding never changes the length of a text, so a position in the folded text is the same
position in the original: where OpenCC would map a phrase to one of another length, that
stretch is folded character by character instead.
"""

from __future__ import annotations

from functools import lru_cache

import opencc

# The conversions, in order; part of the tokenizer's fingerprint with OpenCC's version.
STEPS = ("hk2s", "tw2s")


def fold_id() -> str:
    """What an index records about folding: the conversions and the tables' version."""
    return f"opencc-{opencc.__version__}-{'+'.join(STEPS)}"


@lru_cache(maxsize=1)
def _converters() -> tuple[opencc.OpenCC, ...]:
    return tuple(opencc.OpenCC(step) for step in STEPS)


def _convert(text: str) -> str:
    for converter in _converters():
        text = converter.convert(text)
    return text


def _fold_chars(text: str) -> str:
    """Character by character: each character folded alone, kept when that changes length."""
    out = []
    for ch in text:
        folded = _convert(ch)
        out.append(folded if len(folded) == 1 else ch)
    return "".join(out)


def fold(text: str) -> str:
    """``text`` in simplified characters, with the same length (and so the same offsets)."""
    if text.isascii():
        return text
    folded = _convert(text)
    if len(folded) == len(text):
        return folded
    # A phrase changed length somewhere: fold line by line, and the lines that still
    # change length character by character.
    lines = text.splitlines(keepends=True)
    return "".join(
        f if len(f := _convert(line)) == len(line) else _fold_chars(line) for line in lines
    )
