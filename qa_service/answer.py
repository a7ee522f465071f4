"""Extractive answers: the sentence or two from the top passages that best answer a question.

Each candidate sentence is scored by how much of the question's keyword weight and character
bigrams it contains (what pins down names and numbers); when the question shares few words with
the passages (English or paraphrased questions), by how close its embedding is to the question.
The answer cites the passages its sentences came from with ``[n]`` marks. Confidence comes from
the retrieval evidence of the best passage; below ``min_confidence`` there is no answer rather
than a confident wrong sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from indexer import script
from indexer.chunk import sentence_bounds
from indexer.embed import Embedder
from qa_service.retrieval import Hit, QueryAnalysis

ANSWER_PASSAGES = 2  # the top passages sentences are drawn from
MAX_SENTENCES = 8  # 16 found no more answers on the seed set (BENCHMARKS.md)


@dataclass
class AnswerSentence:
    text: str
    passage_index: int  # index into the response's passages (0-based)
    start: int  # span within that passage's text
    end: int
    score: float


@dataclass
class Answer:
    text: str
    citations: list[int]  # 1-based passage numbers, as in the [n] marks
    confidence: float
    sentences: list[AnswerSentence]


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Spans of the sentences in ``text``: the indexer's sentences, and every line break ends
    one too (a passage joins its paragraphs with ``\n``; a heading line has no full stop).
    Scraps under four characters are dropped."""
    spans = []
    offset = 0
    for line in text.split("\n"):
        spans += [(offset + s, offset + e) for s, e in sentence_bounds(line) if e - s >= 4]
        offset += len(line) + 1
    return spans


def _bigrams(text: str) -> set[str]:
    """Character bigrams, in folded script (a simplified question, a traditional passage)."""
    chars = [ch for ch in script.fold(text).lower() if ch.isalnum()]
    return {a + b for a, b in zip(chars, chars[1:], strict=False)}


def confidence(dense_margin: float | None, coverage: float) -> float:
    """Map the evidence for the top passage to [0, 1].

    Raw cosine similarities of multilingual-e5 are not comparable across languages (an
    English question scores 0.75 against the Chinese passage that answers it, a Chinese
    question 0.75 against nothing in particular). What separates "found it" from "nothing
    here" is how far the best passage stands above the question's background similarity to
    the collection (``dense_margin``): on the seed gold set about 0.045+ for questions the
    index answers, 0.025-0.045 for unrelated ones. Keyword coverage adds evidence.
    """
    margin_part = 0.0 if dense_margin is None else (dense_margin - 0.03) / 0.04
    value = 0.8 * min(1.0, max(0.0, margin_part)) + 0.4 * coverage
    return float(min(1.0, max(0.0, value)))


class AnswerExtractor:
    def __init__(
        self,
        embedder: Embedder,
        min_confidence: float = 0.26,
        cache_size: int = 20000,
        lexical_enough: float = 0.5,
    ) -> None:
        self.embedder = embedder
        self.min_confidence = min_confidence
        self.cache_size = cache_size
        self._vectors: dict[str, np.ndarray] = {}
        # Keyword coverage above which sentences are scored by shared words alone: embedding
        # candidate sentences costs more than the rest of a request (see BENCHMARKS.md).
        self.lexical_enough = lexical_enough

    def extract(
        self,
        query_text: str,
        query_vector: np.ndarray,
        analysis: QueryAnalysis,
        idf: dict[str, float],
        hits: list[Hit],
        texts: list[str],
    ) -> Answer | None:
        if not hits:
            return None
        margin = None if hits[0].dense is None else hits[0].dense - analysis.background
        conf = confidence(margin, analysis.coverage)
        if conf < self.min_confidence:
            return None
        candidates: list[AnswerSentence] = []
        for i, text in enumerate(texts[:ANSWER_PASSAGES]):
            for s, e in split_sentences(text):
                candidates.append(AnswerSentence(text[s:e], i, s, e, 0.0))
        candidates = candidates[:MAX_SENTENCES]
        if not candidates:
            return None
        weights = {t: idf.get(t, 0.0) for t in set(analysis.tokens)}
        total = sum(weights.values())
        folded_weights = [(script.fold(t), w) for t, w in weights.items()]
        bigrams = _bigrams(query_text)
        for c in candidates:
            lowered = script.fold(c.text).lower()  # tokens may be folded (indexer.script)
            lexical = sum(w for t, w in folded_weights if t in lowered) / total if total else 0.0
            overlap = len(bigrams & _bigrams(c.text)) / len(bigrams) if bigrams else 0.0
            c.score = 0.6 * lexical + 0.4 * overlap - 0.02 * c.passage_index
        if analysis.coverage < self.lexical_enough:
            # Few shared words (English or paraphrased questions): let meaning decide.
            vectors = self._sentence_vectors([c.text for c in candidates])
            for c, sim in zip(candidates, (vectors @ query_vector).tolist(), strict=True):
                c.score = sim + 0.15 * c.score
        ranked = sorted(candidates, key=lambda c: -c.score)
        chosen = [ranked[0]]
        if (
            len(ranked) > 1
            and ranked[1].score >= ranked[0].score - 0.01
            and len(ranked[0].text) < 60
        ):
            chosen.append(ranked[1])
        chosen.sort(key=lambda c: (c.passage_index, c.start))
        text = "".join(f"{c.text}[{c.passage_index + 1}]" for c in chosen)
        citations = sorted({c.passage_index + 1 for c in chosen})
        return Answer(text, citations, round(conf, 3), chosen)

    def _sentence_vectors(self, sentences: list[str]) -> np.ndarray:
        """Sentence embeddings, cached: the same passages come back for many questions."""
        cache = self._vectors
        missing = [s for s in dict.fromkeys(sentences) if s not in cache]
        if missing:
            for s, v in zip(missing, self.embedder.encode_document(missing), strict=True):
                if len(cache) >= self.cache_size:
                    cache.pop(next(iter(cache)))
                cache[s] = v
        return np.stack([cache[s] for s in sentences])
