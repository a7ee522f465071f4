"""Character spans in a passage worth marking: the query's terms and the answer sentence."""

from __future__ import annotations

import re


def merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def term_spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
    """Every occurrence of each term (case-insensitive); single CJK characters are skipped
    because marking every 的-like character would hide the real matches."""
    lowered = text.lower()
    spans: list[tuple[int, int]] = []
    for term in set(terms):
        if len(term) < 2 and not term.isascii():
            continue
        spans += [(m.start(), m.end()) for m in re.finditer(re.escape(term.lower()), lowered)]
    return spans


def highlights(
    text: str, terms: list[str], extra: list[tuple[int, int]] | None = None
) -> list[tuple[int, int]]:
    return merge_spans(term_spans(text, terms) + (extra or []))
