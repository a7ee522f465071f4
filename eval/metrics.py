"""Retrieval metrics: the one place they are defined, for judged documents (qrels) and for
answer-string sets alike.

The document-level definitions follow trec_eval (and so pytrec_eval), which the tests check
to 1e-9:

* a document is relevant when its qrels grade is >= 1 (trec_eval's default relevance level);
* ``Recall@k``  = relevant documents in the top k / relevant documents judged (``recall_k``);
* ``Hit@k``     = 1 if any relevant document is in the top k (``success_k``);
* ``MRR@10``    = 1 / rank of the first relevant document if it is in the top 10, else 0
  (``recip_rank`` on a run cut at 10);
* ``nDCG@k``    = DCG@k / ideal DCG@k with gain = grade and discount log2(rank + 1)
  (``ndcg_cut_k``; negative grades give no gain).

A run given as ``{doc_id: score}`` is ranked the way trec_eval ranks a run file: score
descending, ties by doc id descending (byte order of the UTF-8 ids, which is code point
order). A run given as a list is taken in the order given.

Averaging differs from trec_eval in two deliberate ways: a query in the qrels that the run
does not answer counts as 0 (trec_eval's ``-c``), and a query whose qrels hold no relevant
document is skipped and listed in ``MetricReport.skipped`` (trec_eval would score it 0 and
count it, which only dilutes the mean).

Answer-string sets (``.jsonl`` questions with gold answers, no qrels) score a ranked list of
passage texts: an item is relevant when it contains a gold answer (``answer_hit``), and
``Hit@k`` and ``MRR@10`` are the same functions of the first relevant rank as above
(``rank_metrics``). ``AnswerHit`` is 1 when the generated answer contains a gold answer.
A question with no gold answer is unanswerable (the corpus does not say): the right response
is no answer. ``Unanswered`` is the share of answerable questions left without an answer,
``Abstained`` the share of unanswerable ones left without one (``answer_set_means``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from indexer.clean import squash

Ranked = Sequence[tuple[str, float]]
Run = Mapping[str, Ranked | Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]

DEFAULT_KS: tuple[int, ...] = (1, 3, 5, 10)
MRR_K = 10
RELEVANCE_LEVEL = 1
ANSWER_HIT = "AnswerHit"
UNANSWERED = "Unanswered"  # answerable questions given no answer (lower is better)
ABSTAINED = "Abstained"  # unanswerable questions given no answer (higher is better)


@dataclass
class MetricReport:
    """Means over the scored queries, and each scored query's values."""

    mean: dict[str, float]
    per_query: dict[str, dict[str, float]]
    skipped: list[str] = field(default_factory=list)
    """Queries in the qrels with no relevant document: not scored, not in the means."""
    missing: list[str] = field(default_factory=list)
    """Scored queries the run has no documents for: they count as 0."""

    @property
    def num_queries(self) -> int:
        return len(self.per_query)


def metric_names(ks: Iterable[int] = DEFAULT_KS, mrr_k: int = MRR_K) -> list[str]:
    """The keys `evaluate` fills, in display order."""
    ks = _check_ks(ks)
    return (
        [f"Recall@{k}" for k in ks]
        + [f"Hit@{k}" for k in ks]
        + [f"MRR@{mrr_k}"]
        + [f"nDCG@{k}" for k in ks]
    )


def trec_order(scores: Mapping[str, float]) -> list[tuple[str, float]]:
    """Rank ``{doc_id: score}`` as trec_eval does: score descending, then doc id descending."""
    for doc_id, score in scores.items():
        if math.isnan(score):
            raise ValueError(f"score of {doc_id!r} is NaN")
    return sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)


def collapse_to_docs(ranked: Ranked) -> list[tuple[str, float]]:
    """Keep each document's first (best-ranked) entry of a ranked passage list.

    Give it ``(doc_id, score)`` per passage in rank order; the result is a document ranking
    where a document sits at the rank of its best passage.
    """
    seen: set[str] = set()
    out: list[tuple[str, float]] = []
    for doc_id, score in ranked:
        if doc_id not in seen:
            seen.add(doc_id)
            out.append((doc_id, score))
    return out


def _check_ks(ks: Iterable[int]) -> list[int]:
    ks = list(ks)
    if not ks:
        raise ValueError("ks is empty")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"cutoff k must be a positive integer, got {k!r}")
    return sorted(set(ks))


def _doc_ids(qid: str, docs: Ranked | Mapping[str, float]) -> list[str]:
    if isinstance(docs, Mapping):
        return [doc_id for doc_id, _ in trec_order(docs)]
    ids = [doc_id for doc_id, _ in docs]
    if len(set(ids)) != len(ids):
        dup = next(d for i, d in enumerate(ids) if d in ids[:i])
        raise ValueError(
            f"run for query {qid!r} lists document {dup!r} twice; "
            "collapse passages to documents first (collapse_to_docs)"
        )
    return ids


def _dcg(gains: Iterable[float]) -> float:
    total = 0.0
    for i, gain in enumerate(gains):
        if gain > 0:
            total += gain / math.log2(i + 2)
    return total


def _score_query(
    ranked: list[str], rels: Mapping[str, int], ks: list[int], mrr_k: int
) -> dict[str, float]:
    num_rel = sum(1 for r in rels.values() if r >= RELEVANCE_LEVEL)
    grades = [rels.get(doc_id, 0) for doc_id in ranked]
    is_rel = [g >= RELEVANCE_LEVEL for g in grades]
    ideal = sorted((r for r in rels.values() if r >= RELEVANCE_LEVEL), reverse=True)

    values = {f"Recall@{k}": sum(is_rel[:k]) / num_rel for k in ks}
    first = next((i + 1 for i, rel in enumerate(is_rel) if rel), None)
    values |= rank_metrics(first, ks, mrr_k)
    for k in ks:
        values[f"nDCG@{k}"] = _dcg(grades[:k]) / _dcg(ideal[:k])
    return values


def rank_metrics(rank: int | None, ks: Iterable[int], mrr_k: int = MRR_K) -> dict[str, float]:
    """``Hit@k`` for each k and ``MRR@mrr_k`` of a query whose first relevant item sits at
    ``rank`` (from 1; None when nothing relevant was retrieved)."""
    values = {f"Hit@{k}": float(rank is not None and rank <= k) for k in ks}
    values[f"MRR@{mrr_k}"] = 1.0 / rank if rank is not None and rank <= mrr_k else 0.0
    return values


def mean_of(per_query: Iterable[Mapping[str, float]], names: Iterable[str]) -> dict[str, float]:
    """The mean of each metric in ``names`` over the queries' values."""
    rows = list(per_query)
    if not rows:
        raise ValueError("mean of no queries")
    return {name: math.fsum(v[name] for v in rows) / len(rows) for name in names}


def evaluate(
    run: Run, qrels: Qrels, ks: Iterable[int] = DEFAULT_KS, mrr_k: int = MRR_K
) -> MetricReport:
    """Score `run` against `qrels` at each cutoff in `ks` (see the module doc for definitions).

    Queries in the run but not in the qrels are ignored.
    """
    ks = _check_ks(ks)
    if isinstance(mrr_k, bool) or not isinstance(mrr_k, int) or mrr_k < 1:
        raise ValueError(f"mrr_k must be a positive integer, got {mrr_k!r}")
    names = metric_names(ks, mrr_k)
    per_query: dict[str, dict[str, float]] = {}
    skipped: list[str] = []
    missing: list[str] = []
    for qid, rels in qrels.items():
        if not any(r >= RELEVANCE_LEVEL for r in rels.values()):
            skipped.append(qid)
            continue
        docs = run.get(qid)
        ranked = _doc_ids(qid, docs) if docs is not None else []
        if not ranked:
            missing.append(qid)
        scores = _score_query(ranked, rels, ks, mrr_k)
        per_query[qid] = {name: scores[name] for name in names}
    if not per_query:
        raise ValueError("nothing to evaluate: no query in the qrels has a relevant document")
    mean = mean_of(per_query.values(), names)
    return MetricReport(mean=mean, per_query=per_query, skipped=skipped, missing=missing)


# --------------------------------------------------------------------------- answer strings


def _comparable(text: str) -> str:
    return squash(text).casefold()


def answer_hit(text: str, answers: Iterable[str]) -> bool:
    """True if `text` contains any answer, ignoring all white space and Latin letter case.

    White space is dropped on both sides because extracted Chinese news text often carries
    layout spaces and line breaks inside words. An answer that is only white space never hits.
    """
    squashed = _comparable(text)
    return any((a := _comparable(answer)) and a in squashed for answer in answers)


def first_answer_rank(texts: Iterable[str], answers: Sequence[str]) -> int | None:
    """Rank (from 1) of the first text that contains a gold answer, None when none does."""
    return next((i for i, text in enumerate(texts, 1) if answer_hit(text, answers)), None)


def answer_metric_names(ks: Iterable[int] = DEFAULT_KS, mrr_k: int = MRR_K) -> list[str]:
    """The keys `score_answers` fills, in display order."""
    return [f"Hit@{k}" for k in _check_ks(ks)] + [f"MRR@{mrr_k}", ANSWER_HIT]


def score_answers(
    rank: int | None, answer: str, gold: Sequence[str], ks: Iterable[int], mrr_k: int = MRR_K
) -> dict[str, float]:
    """One question of an answer-string set: ``Hit@k`` and ``MRR@mrr_k`` of the passages whose
    first answer-bearing one sits at ``rank`` (``first_answer_rank``), and ``AnswerHit`` of
    the generated ``answer``."""
    ks = _check_ks(ks)
    return rank_metrics(rank, ks, mrr_k) | {
        ANSWER_HIT: float(answer_hit(answer, gold)),
        UNANSWERED: float(not answer.strip()),
    }


def score_unanswerable(answer: str) -> dict[str, float]:
    """One unanswerable question: ``Abstained`` is 1 when no answer was given."""
    return {ABSTAINED: float(not answer.strip())}


def answer_set_means(
    rows: Sequence[Mapping[str, float]], ks: Iterable[int], mrr_k: int = MRR_K
) -> dict[str, float]:
    """The means of an answer set: passage and answer metrics and ``Unanswered`` over the
    answerable questions (rows from ``score_answers``), ``Abstained`` over the unanswerable
    ones (rows from ``score_unanswerable``); a set without one of the two has no such keys."""
    unanswerable = [r for r in rows if ABSTAINED in r]
    answerable = [r for r in rows if ABSTAINED not in r]
    means: dict[str, float] = {}
    if answerable:
        means |= mean_of(answerable, [*answer_metric_names(ks, mrr_k), UNANSWERED])
    if unanswerable:
        means |= mean_of(unanswerable, [ABSTAINED])
    return means


def percentile(values: Iterable[float], p: float) -> float:
    """The p-th percentile (0..100) with linear interpolation, as ``numpy.percentile``."""
    data = sorted(float(v) for v in values)
    if not data:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100, got {p}")
    index = (len(data) - 1) * (p / 100)
    lo = math.floor(index)
    hi = min(lo + 1, len(data) - 1)
    t = index - lo
    a, b = data[lo], data[hi]
    # numpy's lerp: interpolate from the nearer end, which keeps the result within [a, b]
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t
