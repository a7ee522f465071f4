"""Character spans in a passage worth marking: the query's terms and the answer sentence.

Terms are found in the passage's folded script (``indexer.script``): a simplified query token
marks the traditional characters it stands for. Folding keeps every offset, so the spans are
those of the original text.
"""

from __future__ import annotations

import re

from indexer import script


def merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def term_spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
    """Every occurrence of each term (case-insensitive, in either script); single CJK
    characters are skipped because marking every 的-like character would hide the real
    matches."""
    lowered = _folded_lower(text)
    spans: list[tuple[int, int]] = []
    for term in set(terms):
        if len(term) < 2 and not term.isascii():
            continue
        needle = re.escape(_folded_lower(term))
        spans += [(m.start(), m.end()) for m in re.finditer(needle, lowered)]
    return spans


def _folded_lower(text: str) -> str:
    """``text`` folded and lower-cased, position for position (a character whose lower case
    is longer, like İ, keeps its own case so that no offset moves)."""
    folded = script.fold(text)
    lowered = folded.lower()
    if len(lowered) == len(folded):
        return lowered
    return "".join(low if len(low := ch.lower()) == 1 else ch for ch in folded)


def highlights(
    text: str, terms: list[str], extra: list[tuple[int, int]] | None = None
) -> list[tuple[int, int]]:
    return merge_spans(term_spans(text, terms) + (extra or []))
