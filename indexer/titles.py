"""Display titles for untitled articles: their first sentence, marked as derived.

A page may lose an article's headline (a ``本报讯`` report in the middle of a page), and a
``.jsonl`` export may have no ``title`` at all (``{"id", "date", "text"}``). Such an article
still needs something to show in a result list, so the index gives it a title made from its
first sentence, with ``Article.title_derived`` set. A derived title says nothing the text
does not already say, so it is never indexed as if it were a headline (``Indexer.indexed_text``)
and the API marks it (``title_derived: true``) so a client can show it differently.

The derived title is the first sentence of the first paragraph, without a leading news
dateline (``本报讯(记者 齐宏)4月28日,``, ``新华社北京2月8日电(记者 …)``, ``…8月18日讯``), a
leading ``原标题:`` or its closing full stop. A sentence longer than :data:`MAX_CHARS` is cut
at the last clause mark within the limit (or hard, failing one) and ends with ``…``.
"""

from __future__ import annotations

import re

from indexer.chunk import sentence_bounds
from indexer.schema import Article, Span

MAX_CHARS = 30
_MIN_CUT = 8  # a clause cut shorter than this says too little: cut hard at MAX_CHARS instead
_CLAUSE = "，,、:：;；"
ELLIPSIS = "…"  # ends a derived title cut short
_END = "。！？!?…；;.，,、:："
_PREFIX = re.compile(
    r"^\s*(?:"
    r"本报讯\s*(?:[（(][^()（）]{0,40}[)）])?(?:\s*\d{1,2}\s*月\s*\d{1,2}\s*日\s*[,，])?"
    r"|[^,，。!！?？]{0,24}?\d{1,2}\s*月\s*\d{1,2}\s*日\s*[电讯]\s*(?:[（(][^()（）]{0,40}[)）])?"
    r"|原标题\s*[:：]"
    r")\s*"
)


def derived_title(paragraphs: list[Span]) -> str:
    """The display title of an article with these paragraphs and no title ("" if no text)."""
    text = next((p.text.strip() for p in paragraphs if p.text.strip()), "")
    text = _PREFIX.sub("", text, count=1) or text
    bounds = sentence_bounds(text)
    if not bounds:
        return ""
    start, end = bounds[0]
    sentence = text[start:end].rstrip(_END + " ")
    sentence = " ".join(sentence.split())
    if len(sentence) <= MAX_CHARS:
        return sentence
    head = sentence[:MAX_CHARS]
    cut = max((i for i, ch in enumerate(head) if ch in _CLAUSE), default=0)
    return (head[:cut] if cut >= _MIN_CUT else head).rstrip(_END + " ") + ELLIPSIS


def name_untitled(article: Article) -> Article:
    """Give an untitled article its derived title (in place; a titled one is left alone)."""
    if not article.title.strip() and not article.title_derived:
        title = derived_title(article.paragraphs)
        if title:
            article.title, article.title_derived = title, True
    return article
