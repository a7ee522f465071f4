"""Recency as an option: newer articles move up a ranking, by a half-life in days.

Off unless a request sets ``recency_half_life_days`` (``h``). Then each candidate's score
becomes a relevance in [0, 1]: how far it stands above what "no match" scores (0 for BM25 and
fused scores; the query's background similarity for dense scores, whose raw cosines all sit
near 0.8), as a share of the best candidate's. Raw dense, BM25 and fused scores live on
different scales; this way the boost means the same in every mode. Then

    boosted = relevance * (1 + 2 ** (-age / h))

where ``age`` is the article's age in days behind the newest article date in the index. An
article of the newest day counts double, one ``h`` days older 1.5 times, an old one barely
more than its relevance. An undated article keeps its relevance unchanged: it is neither
boosted nor dropped. The boost reorders the candidates the signals found (before the top-k
cut); it never brings in an article the query did not find.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from qa_service.index import LoadedIndex


@lru_cache(maxsize=16384)
def _day(number: int) -> int:
    """A ``YYYYMMDD`` date number as a day count (``date.toordinal``)."""
    return date(number // 10000, number // 100 % 100, number % 100).toordinal()


def newest_day(index: LoadedIndex) -> int | None:
    """The newest article date in the index, as a day count (None: no article has a date)."""
    newest = int(index.dates.max()) if len(index.dates) else 0
    return _day(newest) if newest else None


def factor(date_number: int, newest: int, half_life_days: float) -> float:
    """The boost of an article dated ``date_number`` (``YYYYMMDD``; 0: undated -> 1.0)."""
    if not date_number:
        return 1.0
    age = max(0, newest - _day(date_number))
    return 1.0 + 2.0 ** (-age / half_life_days)


def boost(
    scores: dict[int, float], index: LoadedIndex, half_life_days: float, floor: float = 0.0
) -> dict[int, float]:
    """Candidate scores (passage row -> score) with the recency boost applied; ``floor`` is
    the score of no match (module docstring)."""
    newest = newest_day(index)
    if not scores or newest is None:
        return scores
    span = max(scores.values()) - floor
    return {
        row: (max(0.0, s - floor) / span if span > 0 else 1.0)
        * factor(int(index.dates[row]), newest, half_life_days)
        for row, s in scores.items()
    }
