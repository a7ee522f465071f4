"""Hybrid fusion: how the dense and the keyword scores of a query become one ranking.

Each method is a small pure function over the candidates of both signals; the retriever
picks one by name once (``settings.fusion``).

- ``evidence`` (the default): BM25 is strong on Chinese names and numbers and useless when
  the query shares no words with the text (an English question over Chinese news), and a
  question in plain words may match only common words. So the keyword signal is weighted by
  the evidence it has, its ``coverage`` (the share of the idf mass of the query's known tokens
  that the best keyword match contains), after per-query normalisation::

      hybrid = dense_norm + weight * coverage * bm25_norm

  With coverage 0 (no keyword evidence) the ranking is the dense ranking exactly.
- ``linear``: the same without the coverage factor.
- ``rrf``: reciprocal-rank fusion (k = 60) over the signals that found something.

``dense`` must hold an exact dense score for every keyword candidate too (the retriever adds
the ones the dense top list missed); ``dense_top`` is the dense top list alone, whose range
normalises the dense scores. BENCHMARKS.md has the evaluation behind the choice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

RRF_K = 60


class Fusion(Protocol):
    def __call__(
        self,
        dense: dict[int, float],
        dense_top: dict[int, float],
        keyword: dict[int, float],
        coverage: float,
        weight: float,
    ) -> dict[int, float]: ...


def _normalised_sum(dense, dense_top, keyword, weight: float) -> dict[int, float]:
    d_lo = min(dense_top.values(), default=0.0)
    d_hi = max(dense_top.values(), default=1.0)
    b_hi = max(keyword.values(), default=0.0)
    scores = {}
    for row in set(dense_top) | set(keyword):
        d = dense.get(row)
        d_norm = (d - d_lo) / (d_hi - d_lo) if d is not None and d_hi > d_lo else 0.0
        b = keyword.get(row, 0.0)
        scores[row] = d_norm + weight * (b / b_hi if b_hi > 0 else 0.0)
    return scores


def evidence(dense, dense_top, keyword, coverage: float, weight: float) -> dict[int, float]:
    return _normalised_sum(dense, dense_top, keyword, weight * coverage)


def linear(dense, dense_top, keyword, coverage: float, weight: float) -> dict[int, float]:
    return _normalised_sum(dense, dense_top, keyword, weight)


def rrf(dense, dense_top, keyword, coverage: float, weight: float) -> dict[int, float]:
    scores: dict[int, float] = {}
    for signal in (dense_top, keyword):
        ranked = sorted(signal, key=lambda r: -signal[r])
        for rank, row in enumerate(ranked, 1):
            scores[row] = scores.get(row, 0.0) + 1.0 / (RRF_K + rank)
    return scores


FUSIONS: dict[str, Callable[..., dict[int, float]]] = {
    "evidence": evidence,
    "linear": linear,
    "rrf": rrf,
}


def fusion_named(name: str) -> Fusion:
    try:
        return FUSIONS[name]
    except KeyError:
        raise ValueError(f"unknown fusion {name!r}; choose one of {', '.join(FUSIONS)}") from None
