"""The keyword component: BM25 (bm25s) over jieba tokens, with idf and query coverage.

The stored tokens (SQLite, one row per passage) are the truth; ``bm25/`` is derived from them
and rebuilt on every write. Besides ranking, the component says how much of a query the best
keyword match covers (``coverage``: the share of the idf mass of the query's known tokens
that passage contains). Hybrid fusion weighs the keyword signal by it.

A token the collection never saw is left out of coverage: no passage can match it, so it
says nothing about how far to trust the keyword ranking among passages. An English question
over Chinese news (``How many ship operation certificates (船舶营运证) …``) then trusts
its one known name as a Chinese question would; counting the unseen English words as
unmatched drowned it (crud_qa_dev: top 5 0.944 -> 0.967, BENCHMARKS.md, issue 13).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BM25_DIR = "bm25"


def build_bm25(tokens: list[list[str]], k1: float, b: float):
    import bm25s

    retriever = bm25s.BM25(k1=k1, b=b)
    retriever.index(tokens, show_progress=False)
    return retriever


def bm25_idf(n_docs: int, df: int) -> float:
    """BM25's idf of a token in ``df`` of ``n_docs`` passages (Lucene's formula, as bm25s).
    The one place it is computed: a sharded index computes it from global counts, and must
    get the very same float as a plain index of the same passages."""
    return math.log(1 + (n_docs - df + 0.5) / (df + 0.5))


def idf_of(tokens: list[list[str]]) -> dict[str, float]:
    """BM25's idf per token."""
    n = len(tokens)
    df: dict[str, int] = {}
    for doc in tokens:
        for t in set(doc):
            df[t] = df.get(t, 0) + 1
    return {t: bm25_idf(n, d) for t, d in df.items()}


@dataclass(frozen=True)
class KeywordMatch:
    """BM25's top rows for a query, and how much of the query the best of them covers."""

    scores: dict[int, float] = field(default_factory=dict)
    coverage: float = 0.0
    matched: frozenset[str] = frozenset()


@dataclass(frozen=True)
class KeywordIndex:
    tokens: list[list[str]]  # per passage row
    bm25: object | None  # None for an empty index
    fingerprint: str = ""  # the tokenizer that made the tokens (indexer.tokenize)
    k1: float = 1.2
    b: float = 0.75
    idf: dict[str, float] = field(default_factory=dict)

    @classmethod
    def build(cls, tokens: list[list[str]], fingerprint: str = "", k1=1.2, b=0.75):
        bm25 = build_bm25(tokens, k1, b) if tokens else None
        return cls(tokens, bm25, fingerprint, k1, b, idf_of(tokens))

    def save(self, folder: Path) -> None:
        if self.bm25 is not None:
            self.bm25.save(str(Path(folder) / BM25_DIR), show_progress=False)

    @classmethod
    def load(cls, folder: Path, tokens: list[list[str]], fingerprint="", k1=1.2, b=0.75):
        import bm25s

        from indexer.manifest import IndexStoreError

        bm25 = None
        if tokens:
            try:
                bm25 = bm25s.BM25.load(
                    str(Path(folder) / BM25_DIR), load_vocab=True, allow_pickle=False
                )
            except Exception as exc:  # bm25s raises several types for damaged files
                raise IndexStoreError(
                    f"The BM25 index of {folder} cannot be read ({exc}). Rebuild."
                ) from exc
        return cls(tokens, bm25, fingerprint, k1, b, idf_of(tokens))

    def search(
        self, query_tokens: list[str], k: int, allowed: np.ndarray | None = None
    ) -> KeywordMatch:
        """Top-k BM25 scores (> 0) among allowed rows, with the coverage of the best one."""
        if self.bm25 is None or not query_tokens or k <= 0:
            return KeywordMatch()
        known = [t for t in query_tokens if t in self.idf]
        if not known:
            return KeywordMatch()
        scores = np.asarray(self.bm25.get_scores(known), dtype=np.float32)
        if allowed is not None:
            scores = np.where(allowed, scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        result = {int(i): float(scores[i]) for i in top if scores[i] > 0}
        if not result:
            return KeywordMatch()
        best = max(result, key=result.get)
        coverage, matched = self.coverage(query_tokens, best)
        return KeywordMatch(result, coverage, matched)

    def coverage(self, query_tokens: list[str], row: int) -> tuple[float, frozenset[str]]:
        """The share of the idf mass of the query's known tokens that passage ``row``
        contains, and those tokens."""
        query = {t for t in query_tokens if t in self.idf}
        total = sum(self.idf[t] for t in query)
        matched = frozenset(query & set(self.tokens[row]))
        return (sum(self.idf[t] for t in matched) / total if total else 0.0), matched
