"""Articles into passages: sentence-aware, sized in characters, each cited to raw offsets.

Sentences end at 。！？!?…；; or a Latin full stop before white space (a run of them), together with any closing quotes or brackets that
follow (``…了。”``), and at paragraph ends. A sentence longer than ``maximum`` is cut at clause
marks (，、:：) and, failing those, hard; nothing else is ever cut mid-sentence.

Sentences are packed greedily into passages of about ``target`` characters, never more than
``maximum`` (counting the ``\\n`` between paragraphs). A passage that is still under half the target
may grow up to the maximum rather than stay a scrap. Each passage after the first starts with the
last ``overlap`` sentences of the one before (never the whole of it, and no more than half the
target: repeating a 300-character sentence would mostly duplicate text), so a fact that straddles
a boundary is found whole in one of them.

Passages may run across paragraph boundaries: the pages have many one-line paragraphs
(sub-headlines, ``区领导刘永参加调研。``, photo credits) that make useless passages alone and read
fine with their neighbours. They never run across articles, nor across markup that sits between
two paragraphs in the raw file (``Span.markup_before``), because a passage's ``file``/``start``/
``end`` must cover exactly its own characters plus white space.

Script code left in an article's text by a scraper (``$(function(){ … var u = …; … });`` before
the story) is left out of the passages: a run of sentences with no Chinese character, braces
among them and code signs in at least half of them (``_script_runs``). Such a passage is near every English
question in meaning (it is the nearest passage to two of crud_qa_dev's twenty English
questions on the 5,000-article corpus) and answers none. A passage never spans a left-out run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from indexer.clean import CLOSERS, TERMINATORS, raw_range
from indexer.schema import Article, Passage, Span
from indexer.settings import get_settings

_CLAUSE = "，,、:："

# What passages are cut from, as caches of built indexes know it (eval.corpus.settings_key).
CHUNKER = "sentences, script code left out"

_CHINESE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CODE_SIGN = re.compile(r"[{}=;<>$|&]|\w\(")
_CODE_TAIL = "{}();"


@dataclass(frozen=True)
class _Unit:
    """A sentence (or a piece of an over-long one): ``paragraphs[para].text[start:end]``."""

    para: int
    start: int
    end: int
    seq: int = 0  # place among all the article's units: a gap is a left-out run


def sentence_bounds(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``text``, white space trimmed."""
    bounds: list[tuple[int, int]] = []
    begin, i, n = 0, 0, len(text)
    while i < n:
        if not _terminates(text, i):
            i += 1
            continue
        j = i + 1
        while j < n and _terminates(text, j):
            j += 1
        while j < n and _closes(text, begin, j):
            j += 1
        bounds.append((begin, j))
        begin = i = j
    if begin < n:
        bounds.append((begin, n))
    trimmed = []
    for s, e in bounds:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            trimmed.append((s, e))
    return trimmed


def _terminates(text: str, i: int) -> bool:
    """A sentence terminator; a Latin ``.`` only before white space or the end (not ``1.25``)."""
    ch = text[i]
    if ch == ".":
        return i + 1 == len(text) or text[i + 1].isspace()
    return ch in TERMINATORS


def _closes(text: str, begin: int, j: int) -> bool:
    """Does ``text[j]`` close something opened in the sentence ``text[begin:j]``?

    Curly quotes and full-width brackets are unambiguous; ASCII ``"``/``'``/``)`` (which these
    pages use for Chinese quotes) only close when the sentence has an unmatched opener.
    """
    ch = text[j]
    if ch not in CLOSERS:
        return False
    sentence = text[begin:j]
    if ch in "\"'":
        return sentence.count(ch) % 2 == 1
    if ch == ")":
        return sentence.count("(") > sentence.count(")")
    return True


def _split_long(
    start: int, end: int, text: str, target: int, maximum: int
) -> list[tuple[int, int]]:
    """Cut an over-long sentence into pieces of at most ``maximum`` characters.

    Each piece ends at the last clause mark that keeps it within ``target`` (or, failing that,
    within ``maximum``); with no clause mark in reach it is cut hard at ``target``.
    """
    pieces: list[tuple[int, int]] = []
    s = start
    while end - s > maximum:
        window = text[s : s + maximum]
        cut = max((k + 1 for k, ch in enumerate(window[:target]) if ch in _CLAUSE), default=0)
        if not cut:
            cut = max((k + 1 for k, ch in enumerate(window) if ch in _CLAUSE), default=target)
        pieces.append((s, s + cut))
        s += cut
    pieces.append((s, end))
    return pieces


def _units(paragraphs: list[Span], target: int, maximum: int) -> list[_Unit]:
    units = []
    for k, p in enumerate(paragraphs):
        for s, e in sentence_bounds(p.text):
            for a, b in _split_long(s, e, p.text, target, maximum):
                units.append(_Unit(k, a, b, len(units)))
    if not any("{" in p.text for p in paragraphs):
        return units  # no script without braces (the common case: nothing to look for)
    left_out = _script_runs([paragraphs[u.para].text[u.start : u.end] for u in units])
    if not left_out or len(left_out) == len(units):
        return units  # an article that is all code keeps it rather than vanish
    kept = []
    for u in units:
        if u.seq in left_out:
            continue
        if u.seq - 1 in left_out:  # the story resumes: ``});古树…`` starts at 古
            text = paragraphs[u.para].text
            start = u.start
            while start < u.end - 1 and (text[start] in _CODE_TAIL or text[start].isspace()):
                start += 1
            u = _Unit(u.para, start, u.end, u.seq)
        kept.append(u)
    return kept


def _script_runs(sentences: list[str]) -> set[int]:
    """The sentences (by index) that are script code: runs of consecutive sentences without a
    Chinese character, with braces ``{`` and ``}`` in the run and a code sign
    (``{ } = ; < > $ | &`` or a call ``f(``) in at least half of its sentences. English
    prose rarely has braces."""
    code: set[int] = set()
    run: list[int] = []
    for i, text in enumerate([*sentences, None]):  # None ends the last run
        if text is not None and not _CHINESE.search(text):
            run.append(i)
            continue
        resumes = ""
        if text is not None:  # ``});古树…``: the story resumes after the code's last brace
            resumes = text[: len(text) - len(text.lstrip(_CODE_TAIL + " "))]
        joined = "".join(sentences[j] for j in run) + resumes
        signs = sum(1 for j in run if _CODE_SIGN.search(sentences[j]))
        if "{" in joined and "}" in joined and 2 * signs >= len(run):
            code.update(run)
        run = []
    return code


def _length(units: list[_Unit]) -> int:
    """Length of the passage text these units make (see ``_text``)."""
    total, prev = 0, None
    for u in units:
        if prev is None:
            total += u.end - u.start
        elif u.para == prev.para:
            total += u.end - prev.end
        else:
            total += 1 + u.end - u.start
        prev = u
    return total


def _barrier(paragraphs: list[Span], a: _Unit, b: _Unit) -> bool:
    """Must a passage end between units ``a`` and ``b`` (markup between their paragraphs, or
    script code left out between them)?"""
    if b.seq != a.seq + 1:
        return True
    return any(paragraphs[k].markup_before for k in range(a.para + 1, b.para + 1))


def _pack(units: list[_Unit], paragraphs: list[Span], target: int, maximum: int, overlap: int):
    groups: list[list[_Unit]] = []
    cur: list[_Unit] = []
    for u in units:
        if cur and not _barrier(paragraphs, cur[-1], u):
            size = _length([*cur, u])
            if size <= maximum and (size <= target or _length(cur) < target // 2):
                cur.append(u)
                continue
        if cur:
            groups.append(cur)
            carry = cur[len(cur) - min(overlap, len(cur) - 1) :] if overlap else []
            if carry and _barrier(paragraphs, carry[-1], u):
                carry = []
            while carry and (_length(carry) > target // 2 or _length([*carry, u]) > maximum):
                carry = carry[1:]
            cur = carry
        cur = [*cur, u]
    if cur:
        groups.append(cur)
    return groups


def _passage(article: Article, position: int, units: list[_Unit]) -> Passage:
    paragraphs = article.paragraphs
    pieces: list[list[int]] = []  # [para, start, end]
    for u in units:
        if pieces and pieces[-1][0] == u.para:
            pieces[-1][2] = u.end
        else:
            pieces.append([u.para, u.start, u.end])
    text = "\n".join(paragraphs[k].text[s:e] for k, s, e in pieces)
    first, last = units[0], units[-1]
    start = raw_range(paragraphs[first.para], first.start, first.end)[0]
    end = raw_range(paragraphs[last.para], last.start, last.end)[1]
    return Passage(
        passage_id=f"{article.article_id}-{position:04d}",
        article_id=article.article_id,
        position=position,
        text=text,
        file=article.file,
        start=start,
        end=end,
    )


def chunk_article(
    article: Article,
    target: int | None = None,
    maximum: int | None = None,
    overlap: int | None = None,
) -> list[Passage]:
    """Passages of one article (see module doc); defaults from ``get_settings()``."""
    settings = get_settings()
    target = settings.chunk_target_chars if target is None else target
    maximum = settings.chunk_max_chars if maximum is None else maximum
    overlap = settings.chunk_overlap_sentences if overlap is None else overlap
    if not 0 < target <= maximum or overlap < 0:
        raise ValueError(
            f"need 0 < target <= maximum and overlap >= 0, got {target}/{maximum}/{overlap}"
        )
    units = _units(article.paragraphs, target, maximum)
    groups = _pack(units, article.paragraphs, target, maximum, overlap)
    return [_passage(article, k, g) for k, g in enumerate(groups)]
