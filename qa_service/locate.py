"""Where a passage sits in its article's cleaned text (``Article.text``).

A passage records where it came from in the raw file (``start``/``end``), and each paragraph
keeps its map from cleaned characters to raw offsets. The chunker cuts passages at sentence
bounds and joins paragraphs with ``\\n`` exactly as ``Article.text`` does, so mapping the
passage's first and last raw characters back through that map gives the range of
``Article.text`` that equals the passage text. Offsets count code points (Python ``str``
indices), as every other offset of the API does.
"""

from __future__ import annotations

from bisect import bisect_left

from indexer.clean import raw_offset
from indexer.schema import Article, Passage


def article_range(article: Article, passage: Passage) -> tuple[int, int] | None:
    """``[start, end)`` of ``passage`` in ``article.text``; ``None`` when its raw offsets do
    not fall on the article's characters (an index built from other text)."""
    if passage.end <= passage.start:
        return None
    start = _text_offset(article, passage.start)
    last = _text_offset(article, passage.end - 1)
    if start is None or last is None or last < start:
        return None
    return start, last + 1


def _text_offset(article: Article, raw: int) -> int | None:
    """Index in ``article.text`` of the character read from raw offset ``raw``."""
    base = 0
    for para in article.paragraphs:
        if para.start <= raw < para.end:
            chars = range(len(para.text))
            i = bisect_left(chars, raw, key=lambda k, p=para: raw_offset(p, k))
            if i < len(para.text) and raw_offset(para, i) == raw:
                return base + i
            return None  # white space that cleaning dropped: no character of the text
        base += len(para.text) + 1  # the "\n" that joins paragraphs
    return None
