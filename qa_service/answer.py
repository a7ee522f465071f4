"""Extractive answers: the sentence of the top passages that states the asked-for fact.

Candidates are every sentence of the best ``ANSWER_PASSAGES`` passages, and of the best
passage's own article's other passages down to rank ``ARTICLE_DEPTH`` (``candidate_hits``).
Each is scored by

* the question's words it contains, each weighted by its idf in the index times its rarity
  among the candidates (a word all of them share cannot pick one). The words beside the
  question word (the slot: 就业岗位 in 能提供多少个就业岗位, 主持 in 由谁主持) count most (and
  a little, the characters of one it lacks whole: 法人 in 法定代表人); the
  others count only when the sentence's own article does not already state them in its title
  or lead, because every sentence of the article is about that topic (the lead sentence that
  repeats 剑涛智慧产业基地 is not the answer for that reason);
* whether it holds a fact of the kind the question asks for (``qa_service.question``: a
  number with its unit for 多少, a person for 谁, ...) that the question does not already
  state, and whether that fact stands next to a slot word (for an English question, whose
  words are no slot words in Chinese text, next to any of its words or their translations);
* how close its meaning is to the question's, from the sentence vectors stored at index
  time (``indexer.sentences``; nothing is embedded while answering);
* the rank of its passage, and its length (a long sentence holds many words by chance);
* a penalty when it holds none of the question's own subject words while another candidate
  holds most of them: it is about another item (a list's header line that has the slot
  words 牵头单位 but names another 综合体).

The weights (``Weights``) were chosen on crud_qa_dev and seed_qa together and checked on
CMRC 2018's answer spans (BENCHMARKS.md, issue 13), for the default model; another model reads
meaning in its own similarity scale (``weights_for``).

The answer cites the passages its sentences came from with ``[n]`` marks. Confidence
(``confidence``) comes from how far the best article stands out and how much of the
question the answer's article states; below ``min_confidence`` there is no answer rather
than a confident wrong sentence.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

import numpy as np

from indexer import script
from indexer.embed import Embedder
from indexer.sentences import passage_sentences
from qa_service import calibration, glossary
from qa_service import question as asked
from qa_service.calibration import Calibration
from qa_service.index import LoadedIndex
from qa_service.retrieval import Hit, QueryAnalysis

ANSWER_PASSAGES = 3  # the top passages sentences are drawn from
# ... and the best passage's own article's passages down to this rank (crud_qa_dev: 5, 7, 8
# and 10 tried, 7-10 tie; BENCHMARKS.md, issue 13). /ask retrieves at least this many.
ARTICLE_DEPTH = 8
SLOT_WINDOW = 4  # characters either side of the question word that name the slot
NEAR_CHARS = 6  # a fact this close to a slot word (same clause) answers it
# Skipped between a question word and its slot: 由谁主持, 是多少, 多少个岗位, 有几家.
_PARTICLES = set("是由为有在的了将把被共约达到个家名位项种次条件只元")
_CLAUSE_END = re.compile(r"[。；;！？!?]")
ON_SUBJECT = 0.5  # a sentence holding this share of the question's subject words
LONG_FROM = 60  # characters: longer sentences pay Weights.long per 100 more


@dataclass(frozen=True)
class Weights:
    """How the evidence of a candidate sentence adds up (BENCHMARKS.md, issue 13)."""

    slot: float = 1.5  # share of the slot words' weight it contains
    # of the slot words it lacks whole, the share of their characters it holds (法人 in
    # 法定代表人); chosen on CMRC 2018 (0.1-1.0 tried), reported on seed and CRUD
    slot_chars: float = 0.25
    rest: float = 0.25  # share of the other words' weight, leaving out its article's topic
    fact: float = 0.6  # holds a fact of the asked-for kind the question does not state
    near: float = 1.5  # that fact stands next to a slot word
    # per unit of cosine similarity below the best candidate's, in the default model's scale
    # (another model's ``qa_service.calibration`` row scales it)
    meaning: float = 3.0
    rank: float = 0.06  # per passage rank
    long: float = 0.3  # per 100 characters beyond LONG_FROM
    # holds none of the question's subject words where another sentence holds most
    # (``ON_SUBJECT``); chosen on CMRC 2018 (0.5, 1, 2 tried), reported on seed and CRUD
    off_subject: float = 1.0
    # An English question has no slot words in the passages' language: a new fact next to
    # any of its words (its Chinese translations among them) that the sentence's article
    # does not have in its title. Chosen on crud_qa_dev's CI part (0.1, 0.2, 0.3, 0.5, 0.8
    # tried), reported on the seed pages and the full 5k (BENCHMARKS.md, issue 13).
    near_english: float = 0.2


def weights_for(weights: Weights, model_name: str) -> Weights:
    """``weights`` with sentence meaning read in this model's similarity scale (its
    ``qa_service.calibration`` row's ``meaning_scale``)."""
    scale = calibration.for_model(model_name).meaning_scale
    return weights if scale == 1.0 else replace(weights, meaning=weights.meaning * scale)


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


@dataclass
class Candidate:
    """A sentence of a top passage and its evidence."""

    text: str
    folded: str  # script-folded, lower case: where the question's tokens are looked for
    passage_index: int
    start: int
    end: int
    vector: np.ndarray | None = None  # the sentence's, stored at index time
    facts: list[tuple[int, int]] = field(default_factory=list)  # of the asked-for kind
    topic: str = ""  # its article's title and lead, folded: what all its sentences are about
    title: str = ""  # its article's own title, folded ("" when derived from the text)
    slot: float = 0.0
    slot_chars: float = 0.0
    rest: float = 0.0
    fact: float = 0.0
    near: float = 0.0
    near_words: float = 0.0  # English questions: a new fact next to any question word
    meaning: float = 0.0
    score: float = 0.0


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Spans of the sentences of a passage text (``indexer.sentences``)."""
    return passage_sentences(text)


def confidence(
    lead: float | None,
    margin: float | None,
    support: float,
    cal: Calibration | None = None,
    english: bool = False,
) -> float:
    """How sure the answer is, in [0, 1]; 0.5 where the stronger of two kinds of evidence
    that the archive states the asked-for fact reaches its threshold (``cal``, the index's
    model's thresholds; ``qa_service.calibration``).

    * ``lead``: how far the best article stands above the next ones in dense similarity
      (``qa_service.retrieval.article_lead``), against ``min_lead``. It works across
      languages and for paraphrases. It counts only when the best passage stands at least
      ``min_margin`` above the question's background similarity to the collection: in a
      small archive one story always stands out a little from a few unrelated ones.
    * ``support``: the share of the question's words (idf-weighted) that the answer's own
      article contains, against ``min_support``. A question about something the archive
      never reported names things no article holds together. An English question's words
      are read through the dictionary (``article_support``), so only part of them can
      match at all: it has its own threshold, ``min_english_support``.

    Unanswerable questions score low on both, in a real archive too, where the raw
    similarity of the best passage is always high.
    """
    cal = cal or calibration.for_model(calibration.DEFAULT_MODEL)
    close = lead is not None and margin is not None and margin >= cal.min_margin
    dense = max(0.0, lead) / cal.min_lead if close else 0.0
    min_support = cal.min_english_support if english else cal.min_support
    return float(min(1.0, 0.5 * max(dense, support / min_support)))


def article_support(
    tokens: tuple[str, ...], idf: dict[str, float], article_text: str, english: bool = False
) -> float:
    """The idf-weighted share of the question's tokens found in an article's text (folded,
    lower case); a token the index never saw weighs as much as its rarest one.

    For an English question (``english``) each English word the index does not know counts
    as found when one of its Chinese translations is (``qa_service.glossary``; within a
    sense the archive's commoner words first: *Beijing* 北京 before 京剧), weighing as
    much as the rarest of them; question words (what, how, …) do not count, and a word the
    dictionary cannot translate weighs as an unseen token."""
    unseen = max(idf.values(), default=1.0)
    total = found = 0.0
    for token in dict.fromkeys(tokens):
        forms = [token]
        weight = idf.get(token, unseen)
        if english and token not in idf and glossary.is_english_word(token):
            if token in glossary.STOPWORDS:
                continue
            chinese = glossary.translations(token, idf, prefer=lambda w: -idf[w])
            if chinese:
                forms, weight = chinese, max(idf[w] for w in chinese)
        total += weight
        found += weight if any(f in article_text for f in forms) else 0.0
    return found / total if total else 0.0


def article_text(article) -> str:
    """An article's title and text, folded and lower-cased."""
    body = "\n".join(p.text for p in article.paragraphs)
    return script.fold(f"{article.title}\n{body}").lower()


def candidate_hits(index: LoadedIndex, hits: list[Hit], shown: int | None = None) -> list[int]:
    """The positions in ``hits`` whose sentences are candidates: the first
    ``ANSWER_PASSAGES`` (of the first ``shown``, the passages the response lists), and
    further down to ``ARTICLE_DEPTH`` the passages of the first one's own article (the
    response lists the answer's passage first: ``answer_first``).

    A story's lead paragraph often repeats the question's words while the fact is
    paragraphs below (清凉小站每周一、三、五下午开放, sixth of seven passages of one story);
    passages of other stories that far down brought wrong answers (round 2: top 10 of any
    article, answers 0.756 -> 0.722 on crud_qa_dev)."""
    if not hits:
        return []
    first = index.passages[hits[0].row].article_id
    top = min(ANSWER_PASSAGES, len(hits) if shown is None else shown)
    return [
        i
        for i, h in enumerate(hits[:ARTICLE_DEPTH])
        if i < top or index.passages[h.row].article_id == first
    ]


def candidates_of(
    index: LoadedIndex, rows: list[int], positions: list[int] | None = None
) -> list[Candidate]:
    """Every sentence of these passages, each once (neighbouring passages share one), with
    its stored vector where the index has sentence vectors. A candidate's ``passage_index``
    is its passage's place in ``rows``, or the matching entry of ``positions``."""
    seen: set[str] = set()
    out = []
    about: dict[str, tuple[str, str]] = {}  # article id -> (topic, own title), folded once
    for i, row in zip(positions or range(len(rows)), rows, strict=True):
        text = index.passages[row].text
        article_id = index.passages[row].article_id
        if article_id not in about:
            article = index.articles[article_id]
            own = "" if article.title_derived else script.fold(article.title).lower()
            about[article_id] = (article_topic(article), own)
        topic, title = about[article_id]
        spans, vectors = sentences_of(index, row)
        pairs = zip(spans, vectors if vectors is not None else [None] * len(spans), strict=True)
        for (s, e), vector in pairs:
            sentence = text[s:e]
            key = "".join(sentence.split())
            if key in seen:
                continue
            seen.add(key)
            out.append(
                Candidate(
                    sentence,
                    script.fold(sentence).lower(),
                    i,
                    s,
                    e,
                    vector,
                    topic=topic,
                    title=title,
                )
            )
    return out


def sentences_of(index: LoadedIndex, row: int) -> tuple[list[tuple[int, int]], np.ndarray | None]:
    """The sentence spans of passage ``row`` and their vectors, as stored at index time; an
    index without sentence vectors splits the text (no vectors)."""
    stored = getattr(index, "passage_sentences", None)
    found = stored(row) if stored is not None else None
    if found is None:
        return split_sentences(index.passages[row].text), None
    spans, vectors = found
    return [(int(s), int(e)) for s, e in spans], vectors


def article_topic(article) -> str:
    """What an article is about, as every sentence of it is: its title and its first
    sentence (a lead), folded and lower-cased."""
    first = article.paragraphs[0].text if article.paragraphs else ""
    bounds = passage_sentences(first)
    lead = first[bounds[0][0] : bounds[0][1]] if bounds else first
    return script.fold(f"{article.title}\n{lead}").lower()


def slot_tokens(question: str, tokens: tuple[str, ...]) -> list[str]:
    """The question's tokens right beside its question word, particles and measure words
    skipped: the relation the asked-for fact stands in (由谁主持 -> 主持, 常务副区长是谁 ->
    常务副区长, 多少个就业岗位 -> 就业岗位). The other tokens only say what the story is about."""
    folded = script.fold(question).lower()
    windows: list[tuple[int, int]] = []
    for s, e in asked.cue_spans(question):
        left = s
        while left > 0 and s - left < 2 and folded[left - 1] in _PARTICLES:
            left -= 1
        right = e
        while right < len(folded) and right - e < 2 and folded[right] in _PARTICLES:
            right += 1
        windows += [(max(0, left - SLOT_WINDOW), left), (right, right + SLOT_WINDOW)]
    slots = []
    for t in dict.fromkeys(tokens):
        if len(t) < 2:
            continue
        for m in re.finditer(re.escape(t), folded):
            if any(m.start() < hi and lo < m.end() for lo, hi in windows):
                slots.append(t)
                break
    return slots


def _slot_chars(slots: list[str], folded: str) -> float:
    """Of each slot word the sentence lacks whole, the share of its characters it holds,
    averaged over the slot words: a paraphrase or a short form shares characters with the
    word (法人 and 法定代表人, 志愿队 and 志愿服务队) where it shares no token."""
    if not slots:
        return 0.0
    parts = [0.0 if t in folded else sum(ch in folded for ch in t) / len(t) for t in slots]
    return sum(parts) / len(slots)


def _near(c: Candidate, facts: list[tuple[int, int]], slots: list[str]) -> float:
    """1.0 when a fact of the asked-for kind stands within ``NEAR_CHARS`` of a slot word, in
    the same clause."""
    for t in slots:
        for m in re.finditer(re.escape(t), c.folded):
            for s, e in facts:
                lo, hi = min(e, m.start()), max(s, m.end())
                if hi - lo <= NEAR_CHARS and not _CLAUSE_END.search(c.text[lo:hi]):
                    return 1.0
    return 0.0


def token_weights(tokens: tuple[str, ...], idf: dict[str, float], cands: list[Candidate]):
    """Each question token's weight: its idf in the index times its rarity among the
    candidates (a word all of them share cannot pick one)."""
    unseen = max(idf.values(), default=1.0)
    n = len(cands)
    weights = {}
    for t in dict.fromkeys(tokens):
        df = sum(t in c.folded for c in cands)
        weights[t] = idf.get(t, unseen) * math.log(1 + n / (1 + df))
    return weights


def _share(weights: dict[str, float], total: float, text: str) -> float:
    return sum(w for t, w in weights.items() if t in text) / total if total else 0.0


def score_candidates(
    question: str,
    analysis: QueryAnalysis,
    idf: dict[str, float],
    cands: list[Candidate],
    sims: np.ndarray | None,
    weights: Weights,
) -> None:
    """Fill each candidate's evidence and score (in place)."""
    kind = asked.asked_for(question)
    units = asked.asked_units(question) if kind == "number" else None
    slots = slot_tokens(question, analysis.tokens)
    tw = token_weights(analysis.tokens, idf, cands)
    slot_w = {t: w for t, w in tw.items() if t in slots}
    context_w = {t: w for t, w in tw.items() if t not in slots}
    slot_total = sum(slot_w.values())
    best_sim = float(sims.max()) if sims is not None and len(sims) else 0.0
    english = asked.is_english(question)
    words = [t for t in dict.fromkeys(analysis.tokens) if len(t) >= 2]
    for i, c in enumerate(cands):
        # A slot word its article is about (内托 in 内托的国籍是哪个国家, in a page about him)
        # stands beside every fact of the article: only the others can pick a sentence.
        own = {t: w for t, w in slot_w.items() if t not in c.title}
        c.slot = _share(own, slot_total, c.folded)
        c.slot_chars = _slot_chars(list(own), c.folded)
        rest = {t: w for t, w in context_w.items() if t not in c.topic}
        c.rest = _share(rest, sum(rest.values()), c.folded)
        c.facts = asked.facts(kind, c.text, units)
        c.fact = asked.holds_new_fact(c.facts, c.text, question)
        c.near = _near(c, c.facts, list(own))
        if english:
            new = asked.new_facts(c.facts, c.text, question)
            c.near_words = _near(c, new, [t for t in words if t not in c.title])
        c.meaning = float(sims[i]) - best_sim if sims is not None else 0.0
        c.score = (
            weights.slot * c.slot
            + weights.slot_chars * c.slot_chars
            + weights.rest * c.rest
            + weights.fact * c.fact
            + weights.near * c.near
            + weights.near_english * c.near_words
            + weights.meaning * c.meaning
            - weights.rank * c.passage_index
            - weights.long * max(0, len(c.text) - LONG_FROM) / 100
        )
    # Where some sentence holds most of the question's own subject words (the rest, beyond
    # its article's topic), one holding none of them is about another subject: a list's
    # header (…综合体(牵头单位,下同:赛力斯…)) has the slot words but names another item.
    if cands and max(c.rest for c in cands) >= ON_SUBJECT:
        for c in cands:
            if c.rest == 0.0:
                c.score -= weights.off_subject


@dataclass(frozen=True)
class Evidence:
    """What an answer's confidence is computed from (``confidence``)."""

    ranked: list[Candidate]  # the candidate sentences, best first
    lead: float | None  # the best article's dense lead over the next ones
    margin: float | None  # the best passage's dense score above the background
    support: float  # the share of the question's words the answer's article holds
    english: bool = False  # an English question: support read through the dictionary


class AnswerExtractor:
    def __init__(
        self,
        embedder: Embedder | None = None,
        min_confidence: float = 0.5,
        weights: Weights | None = None,
    ) -> None:
        self.embedder = embedder  # unused: sentence vectors come from the index
        self.min_confidence = min_confidence
        self.weights = weights or Weights()

    def candidates(
        self,
        question: str,
        query_vector: np.ndarray,
        analysis: QueryAnalysis,
        index: LoadedIndex,
        hits: list[Hit],
        shown: int | None = None,
    ) -> list[Candidate]:
        """The scored candidate sentences, best first (``candidate_hits``)."""
        positions = candidate_hits(index, hits, shown)
        cands = candidates_of(index, [hits[i].row for i in positions], positions)
        if not cands:
            return []
        sims = None
        if all(c.vector is not None for c in cands):
            sims = np.stack([c.vector for c in cands]) @ query_vector
        weights = weights_for(self.weights, index.manifest.settings.model_name)
        score_candidates(question, analysis, index.idf, cands, sims, weights)
        return sorted(cands, key=lambda c: -c.score)

    def evidence(
        self,
        question: str,
        query_vector: np.ndarray,
        analysis: QueryAnalysis,
        index: LoadedIndex,
        hits: list[Hit],
        shown: int | None = None,
    ) -> Evidence | None:
        """The ranked candidate sentences and what the confidence is computed from; None
        when there is no sentence to answer with."""
        ranked = (
            self.candidates(question, query_vector, analysis, index, hits, shown) if hits else []
        )
        if not ranked:
            return None
        article = index.articles[index.passages[hits[ranked[0].passage_index].row].article_id]
        english = asked.is_english(question)
        support = article_support(analysis.tokens, index.idf, article_text(article), english)
        margin = None if hits[0].dense is None else hits[0].dense - analysis.background
        return Evidence(ranked, analysis.lead, margin, support, english)

    def extract(
        self,
        question: str,
        query_vector: np.ndarray,
        analysis: QueryAnalysis,
        index: LoadedIndex,
        hits: list[Hit],
        shown: int | None = None,
    ) -> Answer | None:
        """The answer from ``hits`` (retrieval's order), of which the response lists the
        first ``shown`` (all when None); None below ``min_confidence``."""
        found = self.evidence(question, query_vector, analysis, index, hits, shown)
        if found is None:
            return None
        cal = calibration.for_model(index.manifest.settings.model_name)
        conf = confidence(found.lead, found.margin, found.support, cal, found.english)
        if conf < self.min_confidence:
            return None
        best = found.ranked[0]
        row = hits[best.passage_index].row
        start = antecedent_start(index, row, best)
        text = index.passages[row].text[start : best.end]
        chosen = [AnswerSentence(text, best.passage_index, start, best.end, best.score)]
        return _compose(chosen, round(conf, 3))


# A sentence that opens by pointing back (该公司是首家入驻…的企业, 他表示…), perhaps after a
# source phrase (据介绍，该公司…), names its subject in the sentence before: the answer keeps
# that one too.
_POINTS_BACK = re.compile(
    r"^[“\"]?(?:(?:据介绍|据了解|据悉|据报道|据统计|另外|此外|同时|目前)[，,]?)?"
    r"(?:该|其|他|她|它|这家|这位|这所|这个|这座|这支|这些|此人)"
)


def antecedent_start(index: LoadedIndex, row: int, best: Candidate) -> int:
    """Where the answer starts in passage ``row``: the sentence's own start, or the start of
    the sentence before it in the same passage when it opens by pointing back."""
    if not _POINTS_BACK.match(best.text):
        return best.start
    spans, _ = sentences_of(index, row)
    before = [s for s, e in spans if e <= best.start]
    return max(before) if before else best.start


def _compose(chosen: list[AnswerSentence], conf: float) -> Answer:
    text = "".join(f"{c.text}[{c.passage_index + 1}]" for c in chosen)
    citations = sorted({c.passage_index + 1 for c in chosen})
    return Answer(text, citations, conf, chosen)


def answer_first(index: LoadedIndex, hits: list[Hit], answer: Answer | None):
    """The passages in the order ``/ask`` shows them, and the answer cited in that order.

    Retrieval picks the article; the sentences pick the passage within it. When the answer
    comes from a later passage of the best passage's own article (the lead passage repeats
    the story's words, the fact is two paragraphs down), that passage is shown first and
    the others keep their order. An answer from another article moves nothing: the ranking
    across articles is retrieval's. Chosen on crud_qa_dev, reported on the seed pages and
    CMRC (BENCHMARKS.md, issue 13)."""
    if answer is None or not answer.sentences:
        return hits, answer
    j = answer.sentences[0].passage_index
    if j == 0 or _article(index, hits[j]) != _article(index, hits[0]):
        return hits, answer
    order = [j, *(i for i in range(len(hits)) if i != j)]
    moved = {old: new for new, old in enumerate(order)}
    sentences = [replace(s, passage_index=moved[s.passage_index]) for s in answer.sentences]
    return [hits[i] for i in order], _compose(sentences, answer.confidence)


def _article(index: LoadedIndex, hit: Hit) -> str:
    return index.passages[hit.row].article_id
