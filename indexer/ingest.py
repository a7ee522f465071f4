"""Pages into articles: titles, dates, bylines, sources, and paragraphs with raw offsets.

A page (``.txt``/``.md``) holds several articles. The text is first cut into *blocks* (runs of
lines between blank lines; a markdown heading or a list item is a block of its own), each block
gets a kind, and the blocks are grouped into articles:

* If the page has markdown headings (``#``/``##``), a level 1-2 heading starts an article, and
  consecutive headings form one heading group (``## 敢闯敢干 唯实争先`` + ``### 铆足劲 保订单``).
* Otherwise a title is a short line that does not end a sentence, and a new article starts at
  one when the layout says so: start of page, after a photo credit/byline/source line or a
  ``相关新闻>>>`` marker, after (or before) two or more blank lines, before a ``本报讯``/``新华社…电``
  dateline, or when two such lines stack up (title + sub-headline). A lone short line inside an
  article is a section heading (``合作工作机制建起来 三年行动计划定出来``), not a new article.
* A ``本报讯`` dateline in the middle of an article's body, or text after a ``据重庆日报`` line,
  starts an *untitled* article (``title == ""``, ``title_span is None``): page 003 has two.

Title handling: the article's title is the first line of its heading group (``title_span``).
Sub-headlines, kickers and author lines that follow it become the first paragraphs, so no text
is lost and every span stays a contiguous piece of the raw file. Photo captions and credits are
paragraphs of the article they sit in. ``相关新闻>>>`` markers and markdown ``#``/list-bullet
characters are layout and belong to no article.

A paragraph broken by a blank line mid-sentence is re-joined: a body block that does not end a
sentence continues into the next body block, unless that one opens with a dateline. Titles,
sub-headlines, section headings, captions, credits and list items are never joined.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from indexer.clean import (
    DATELINE,
    clean,
    compress,
    has_inserted_spaces,
    is_closed,
    is_continuation,
    squash,
)
from indexer.files import files_under
from indexer.schema import Article, Span

_HEADING = re.compile(r"[ \t]{0,3}(#{1,6})[ \t]+(?=\S)")
_BULLET = re.compile(r"[ \t]{0,3}[-*+•][ \t]+(?=\S)")
_NUMBERED = re.compile(r"[ \t]{0,3}(?:\d{1,3}[.、](?!\d)|[（(]\d{1,3}[)）])")
_MARKER = re.compile(r"^(?:相关新闻|相关链接|延伸阅读|相关阅读)\s*[>》→:：]*$")
_PUBLISHED = re.compile(
    r"^[（(]?\s*原载\s*(\d{4})年(\d{1,2})月(\d{1,2})日\s*《([^》]+)》[^()（）]*[)）]?$"
)
_ATTRIBUTED = re.compile(
    r"^[（(]?\s*(?:据|来源[:：]|稿件来源[:：])\s*"
    r"([\u4e00-\u9fff]{2,12}?(?:报|社|网|台|客户端))\s*[)）]?$"
)
_CREDIT_ROLE = re.compile(r"(?:记者|通讯员|摄影|实习生)\s+[\u4e00-\u9fff]{2,4}")
_CREDIT_START = re.compile(
    r"^(?:[\u4e00-\u9fff]{2,4}-)?(?:[\u4e00-\u9fff]{2,8}?报)?(?:特约|见习|首席)?"
    r"(?:记者|通讯员|摄影|实习生)"
)
_CREDIT_END = re.compile(r"(?:摄|摄影报道|报道|文/图|/[\u4e00-\u9fff]{2,6})$")
_AUTHOR = re.compile(r"^[\u4e00-\u9fff]{2,3}$")
_OUTLET = re.compile(r"([\u4e00-\u9fff]{2,8}?(?:日报|晨报|晚报|商报|时报))(?:首席)?(?:记者|通讯员)")
_BENBAO = re.compile(r"^本报讯\s*(?:[（(]\s*([^()（）]{1,60}?)\s*[)）])?\s*")
_AGENCY = re.compile(
    r"^(?:([\u4e00-\u9fff]{1,4}社)|本报)[\u4e00-\u9fff]{0,12}?(\d{1,2})\s*月\s*(\d{1,2})\s*日\s*电"
    r"\s*(?:[（(]\s*([^()（）]{1,60}?)\s*[)）])?\s*"
)
_DATE = r"(?:(\d{4})\s*年\s*)?(\d{1,2})\s*月\s*(\d{1,2})\s*日"
_LEAD_DATE = re.compile(r"^[^,，。、:：;；!！?？]{0,12}?" + _DATE)
_START_DATE = re.compile(r"^" + _DATE)
_FRAGMENT_END = ",，、:：;；(（《“‘-—"
_NOT_STRICT = ",，、:：;；"
_WS = re.compile(r"\s+")

# Kinds of block. Only "body" blocks are ever re-joined.
BODY, TITLE, SUBHEAD, AUTHOR, SECTION = "body", "title", "subhead", "author", "section"
CREDIT, SOURCE, LIST, MARKER = "credit", "source", "list", "marker"


class NoArticles(ValueError):
    """The input was not empty, yet not one article could be read from it (every line
    rejected): an error, not an empty index, so a wrong export format is noticed at once."""


@dataclass
class IngestResult:
    articles: list[Article] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # human-readable warnings
    lines_rejected: int = 0  # .jsonl lines skipped (each has its problem)
    files_rejected: int = 0  # files that could not be read at all


@dataclass
class _Block:
    start: int  # raw offset of the first content character (after any markup)
    end: int  # raw offset just after the last content character
    gap: int  # blank lines before the block
    level: int = 0  # markdown heading level, 0 if none
    markup: bool = False  # markup characters (#, bullet) precede the content in raw
    listed: bool = False  # list item
    text: str = ""  # content without white space, for classification
    norm: str = ""  # content with white space runs collapsed to one space, for metadata
    kind: str = BODY
    dateline: bool = False


@dataclass
class _Draft:
    heading: list[_Block]
    blocks: list[_Block] = field(default_factory=list)


@dataclass
class _Page:
    published: date | None = None  # from "(原载2023年02月09日《重庆日报》1版)"
    outlet: str | None = None  # the paper the page says it comes from
    benbao: str | None = None  # what "本报" is on this page, if any article names it


# ---------------------------------------------------------------- blocks


def _blocks(raw: str, start: int = 0, *, line_paragraphs: bool = False) -> list[_Block]:
    """Cut ``raw[start:]`` into blocks. ``line_paragraphs``: every line is its own block."""
    blocks: list[_Block] = []
    cur: _Block | None = None
    gap = 0
    pos, n = start, len(raw)
    while pos <= n:
        nl = raw.find("\n", pos)
        stop = n if nl == -1 else nl
        line = raw[pos:stop]
        if not line.strip():
            gap += 1
            cur = None
        else:
            heading = _HEADING.match(line)
            bullet = None if heading else _BULLET.match(line)
            marker = heading or bullet
            listed = bool(bullet) or bool(_NUMBERED.match(line))
            if cur is None or marker or listed or cur.level or line_paragraphs:
                begin = pos + (marker.end() if marker else len(line) - len(line.lstrip()))
                cur = _Block(begin, begin, gap, level=len(heading.group(1)) if heading else 0)
                cur.markup, cur.listed = bool(marker), listed
                blocks.append(cur)
                gap = 0
            cur.end = pos + len(line.rstrip())
        if nl == -1:
            break
        pos = nl + 1
    for b in blocks:
        piece = raw[b.start : b.end]
        b.text, b.norm = squash(piece), _WS.sub(" ", piece).strip()
    return blocks


def _is_credit(b: _Block) -> bool:
    """Photo credit or byline line: ``记者 谢智强 摄/视觉重庆``, ``新重庆-重庆日报记者 杨帆 王天翎``."""
    t = b.text
    if len(t) > 40 or is_closed(t) or any(c in t for c in ",，。"):
        return False
    if not _CREDIT_ROLE.search(b.norm):
        return False
    return bool(_CREDIT_START.match(b.norm) or _CREDIT_END.search(b.norm))


def _classify(blocks: list[_Block]) -> None:
    for b in blocks:
        b.dateline = bool(DATELINE.match(b.norm))
        if b.level:
            b.kind = SECTION
        elif _MARKER.match(b.norm):
            b.kind = MARKER
        elif _PUBLISHED.match(b.norm) or _ATTRIBUTED.match(b.norm):
            b.kind = SOURCE
        elif b.listed:
            b.kind = LIST
        elif not b.dateline and _is_credit(b):
            b.kind = CREDIT
        else:
            b.kind = BODY


def _headline_like(b: _Block) -> bool:
    """Could this block be a title or sub-headline: short, and not ending a sentence?"""
    t = b.text
    return (
        b.kind == BODY
        and not b.dateline
        and 2 <= len(t) <= 64
        and "。" not in t
        and not is_closed(t)
        and t[-1] not in _FRAGMENT_END
    )


def _strict_heading(b: _Block) -> bool:
    """Headline-like with no clause punctuation (one 、 allowed): sentence fragments rarely are.

    ``区领导江绪容、吴萍、章榕、黄成万、梁萍参加研`` (a closing line that lost its end) is not.
    """
    t = b.text
    return (
        _headline_like(b)
        and len(t) <= 40
        and t.count("、") <= 1
        and not any(c in t for c in _NOT_STRICT if c != "、")
    )


# ---------------------------------------------------------------- articles


def _open(block: _Block | None) -> bool:
    """Is ``block`` a body block that stops in mid-sentence (so the next line may go on)?"""
    return block is not None and block.kind == BODY and not is_closed(block.text)


def _open_body(draft: _Draft | None) -> bool:
    """Does the current article end with a body block that stops in mid-sentence?"""
    return draft is not None and bool(draft.blocks) and _open(draft.blocks[-1])


def _heading_group(blocks: list[_Block], i: int, cur: _Draft | None, markdown: bool) -> int:
    """End index of the heading group starting at block ``i``, or ``i`` when none starts there."""
    n = len(blocks)
    b = blocks[i]
    if markdown:
        if not b.level or (b.level > 2 and cur is not None and cur.blocks):
            return i
        j = i + 1
        while j < n and blocks[j].level:
            j += 1
        return j
    j = i
    while j < n and j - i < 4 and _headline_like(blocks[j]):
        j += 1
    if j in (i, n):  # a title needs something after it
        return i
    nxt = blocks[j]
    last = cur.blocks[-1] if cur is not None and cur.blocks else None
    in_body = last is not None and last.kind != CREDIT and any(x.kind == BODY for x in cur.blocks)
    if in_body and not _strict_heading(b):  # a title inside running text must look like one
        return i
    if b.gap >= 2 or nxt.gap >= 2 or nxt.dateline:
        return j
    if _open_body(cur):  # otherwise it is the rest of a broken sentence
        return i
    if cur is None or (last is not None and last.kind == CREDIT):
        return j
    if j - i >= 2 and _strict_heading(b):
        return j
    return i


def _segment(blocks: list[_Block], markdown: bool) -> list[_Draft]:
    drafts: list[_Draft] = []
    cur: _Draft | None = None
    i, n = 0, len(blocks)
    while i < n:
        b = blocks[i]
        if b.kind == MARKER:
            cur = None
            i += 1
            continue
        j = _heading_group(blocks, i, cur, markdown)
        if j > i:
            cur = _Draft(blocks[i:j])
            drafts.append(cur)
            if markdown:  # short lines right under the headings: kickers, sub-heads, author
                k = j
                while k + 1 < n and k - j < 3 and _headline_like(blocks[k]):
                    cur.blocks.append(blocks[k])
                    k += 1
                for extra in cur.blocks:
                    extra.kind = AUTHOR if _AUTHOR.match(extra.text) else SUBHEAD
                j = k
            for extra in cur.heading[1:]:
                extra.kind = AUTHOR if _AUTHOR.match(extra.text) and not extra.level else SUBHEAD
            cur.heading[0].kind = TITLE
            i = j
            continue
        has_body = cur is not None and any(x.kind == BODY for x in cur.blocks)
        if b.dateline and has_body and not _open_body(cur):
            cur = None  # a second dateline: an article whose title the page lost
        if b.kind == BODY and not _open_body(cur) and cur is not None and _strict_heading(b):
            b.kind = SECTION
        if cur is None:
            cur = _Draft([])
            drafts.append(cur)
        cur.blocks.append(b)
        if b.kind == SOURCE:
            cur = None  # "据重庆日报" closes the article it follows
        i += 1
    return drafts


def _paragraph_groups(blocks: list[_Block]) -> list[list[_Block]]:
    """Re-join body blocks split by a blank line in mid-sentence (``clean.is_continuation``;
    only body blocks: titles, captions, credits and list items end without punctuation)."""
    groups: list[list[_Block]] = []
    for b in blocks:
        prev = groups[-1][-1] if groups else None
        if (
            prev is not None
            and prev.kind == BODY
            and b.kind == BODY
            and is_continuation(prev.text, b.norm)
        ):
            groups[-1].append(b)
        else:
            groups.append([b])
    return groups


def _span(raw: str, first: _Block, last: _Block, keep_spaces: bool) -> Span:
    c = clean(raw, first.start, last.end, keep_spaces=keep_spaces)
    start, end = c.raw_range(0, len(c.text))
    return Span(c.text, start, end, runs=compress(c.offsets), markup_before=first.markup)


def _ids(title: str, paragraphs: list[Span]) -> tuple[str, str]:
    """``(article_id, content_hash)``: sha1 of the white-space-free title and body."""
    body = "\n".join(squash(p.text) for p in paragraphs)
    digest = hashlib.sha1((squash(title) + "\x1f" + body).encode("utf-8")).hexdigest()
    return digest[:16], digest


# ---------------------------------------------------------------- metadata


def _make_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _resolve_date(groups: tuple[str | None, ...], published: date | None) -> str | None:
    """ISO date from a ``(year, month, day)`` match; the year comes from the page if missing."""
    year, month, day = groups
    if year:
        found = _make_date(int(year), int(month), int(day))  # type: ignore[arg-type]
    elif published is not None:
        m, d = int(month), int(day)  # type: ignore[arg-type]
        y = published.year - ((m, d) > (published.month, published.day))
        found = _make_date(y, m, d)
    else:
        found = None
    return found.isoformat() if found else None


@dataclass
class _Meta:
    byline: str | None = None
    source: str | None = None
    date: str | None = None
    benbao_outlet: str | None = None  # "本报讯(记者 夏元)重庆日报记者2月17日…": 本报 is 重庆日报
    is_benbao: bool = False


def _article_meta(blocks: list[_Block], published: date | None) -> _Meta:
    meta = _Meta()
    lead = next((b for b in blocks if b.kind == BODY), None)
    agency = outlet = None
    date_match: tuple[str | None, ...] | None = None
    if lead is not None:
        if m := _AGENCY.match(lead.norm):
            agency = m.group(1)
            meta.byline = m.group(4)
            meta.is_benbao = agency is None
            date_match = (None, m.group(2), m.group(3))
        elif m := _BENBAO.match(lead.norm):
            meta.is_benbao = True
            meta.byline = m.group(1)
            rest = lead.norm[m.end() :]
            if d := _LEAD_DATE.match(rest):
                date_match = d.groups()
            if o := _OUTLET.search(rest[:24]):
                meta.benbao_outlet = o.group(1)
        elif d := _START_DATE.match(lead.norm):
            date_match = d.groups()
        if date_match is not None:
            meta.date = _resolve_date(date_match, published)
    if meta.date is None and published is not None and date_match is None:
        meta.date = published.isoformat()
    credits = [b.norm for b in blocks if b.kind in (AUTHOR, CREDIT)]
    if meta.byline is None and credits:
        meta.byline = credits[0]
    for text in [meta.byline or "", *credits]:
        if o := _OUTLET.search(text):
            outlet = o.group(1)
            break
    attributed = next(
        (m.group(1) for b in blocks if b.kind == SOURCE and (m := _ATTRIBUTED.match(b.norm))),
        None,
    )
    meta.source = agency or outlet or attributed
    return meta


def _page(blocks: list[_Block]) -> _Page:
    page = _Page()
    for b in blocks:
        if b.kind == SOURCE and (m := _PUBLISHED.match(b.norm)):
            page.published = _make_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            page.outlet = m.group(4).strip()
            break
    return page


# ---------------------------------------------------------------- public API


def ingest_text(raw: str, file: str) -> list[Article]:
    """Articles of one ``.txt``/``.md`` page; offsets index ``raw`` (a leading BOM included)."""
    start = 1 if raw.startswith("\ufeff") else 0
    blocks = _blocks(raw, start)
    _classify(blocks)
    drafts = _segment(blocks, markdown=any(b.level for b in blocks))
    page = _page(blocks)
    keep = not has_inserted_spaces(raw)  # headline spaces are typography, unless all are noise
    built: list[tuple[Article, _Meta]] = []
    for draft in drafts:
        title_span = None
        paragraphs: list[Span] = []
        if draft.heading:
            head = draft.heading[0]
            title_span = _span(raw, head, head, keep)
            paragraphs += [_span(raw, h, h, keep) for h in draft.heading[1:]]
        for group in _paragraph_groups(draft.blocks):
            paragraphs.append(_span(raw, group[0], group[-1], keep and group[0].kind != BODY))
        if not paragraphs and title_span is None:
            continue
        title = title_span.text if title_span else ""
        article_id, digest = _ids(title, paragraphs)
        meta = _article_meta(draft.blocks, page.published)
        article = Article(article_id, title, file, paragraphs, title_span, content_hash=digest)
        article.byline, article.date = meta.byline, meta.date
        built.append((article, meta))
    benbao = page.outlet or next((m.benbao_outlet for _, m in built if m.benbao_outlet), None)
    for article, meta in built:
        article.source = meta.source or page.outlet or (benbao if meta.is_benbao else None)
    return [a for a, _ in built]


def _parse_date(value: str) -> str:
    text = value.strip()
    if m := re.match(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:$|[T\s])", text):
        found = _make_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if found is not None:
            return found.isoformat()
    raise ValueError(f"date {value!r} is not a date (YYYY-MM-DD)")


def article_from_record(record: Any, file: str) -> Article:
    """One article from a record ``{"id", "text", "title"?, "date"?, "source"?, "url"?}``.

    Offsets point into ``record["text"]``; the title is not part of it (``title_span`` is None).
    A record without a title (or with a blank one) is an untitled article (``title == ""``; the
    index gives it a derived display title, ``indexer.titles``).
    Raises ``ValueError`` with a readable reason when the record is malformed.
    """
    if not isinstance(record, dict):
        raise ValueError(f"not a JSON object but {type(record).__name__}")
    ident = record.get("id")
    if isinstance(ident, int) and not isinstance(ident, bool):
        ident = str(ident)
    for key, value in (("id", ident), ("text", record.get("text"))):
        if value is None:
            raise ValueError(f"missing {key!r}")
        if not isinstance(value, str):
            raise ValueError(f"{key!r} must be a string, not {type(value).__name__}")
        if not value.strip():
            raise ValueError(f"empty {key!r}")
    for key in ("title", "date", "source", "url"):
        if record.get(key) is not None and not isinstance(record[key], str):
            raise ValueError(f"{key!r} must be a string, not {type(record[key]).__name__}")
    text: str = record["text"]
    blocks = _blocks(text, line_paragraphs=True)
    _classify(blocks)
    for k, b in enumerate(blocks):
        if b.kind == MARKER:
            b.kind = BODY
        if b.kind == BODY and not (k and _open(blocks[k - 1])) and _strict_heading(b):
            b.kind = SECTION  # a heading line inside the text, as on a page
    paragraphs = [_span(text, g[0], g[-1], False) for g in _paragraph_groups(blocks)]
    title_text = record.get("title") or ""
    title = clean(title_text, keep_spaces=not has_inserted_spaces(title_text)).text.strip()
    _, digest = _ids(title, paragraphs)
    meta = _article_meta(blocks, None)
    raw_date = record.get("date")
    return Article(
        article_id=ident.strip(),  # type: ignore[union-attr]
        title=title,
        file=file,
        paragraphs=paragraphs,
        date=_parse_date(raw_date) if raw_date and raw_date.strip() else meta.date,
        byline=meta.byline,
        source=(record.get("source") or "").strip() or meta.source,
        url=(record.get("url") or "").strip() or None,
        content_hash=digest,
    )


def ingest_jsonl(raw: str, name: str) -> IngestResult:
    """One article per line; bad lines are reported in ``problems`` and skipped."""
    result = IngestResult()
    for number, line in enumerate(raw.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            result.problems.append(f"{name} line {number}: invalid JSON ({exc.msg}) - skipped")
            result.lines_rejected += 1
            continue
        try:
            result.articles.append(article_from_record(record, f"{name}#L{number}"))
        except ValueError as exc:
            result.problems.append(f"{name} line {number}: {exc} - skipped")
            result.lines_rejected += 1
    return result


def ingest_path(path: Path, root: Path | None = None) -> IngestResult:
    """Ingest a file, or a folder recursively (``*.txt``, ``*.md``, ``*.jsonl``, sorted).

    ``Article.file`` is the path relative to ``root``. Without ``root`` it is the file name for
    a single file, and the path relative to the folder when ``path`` is a folder (so files of
    the same name in two sub-folders stay apart). Unreadable files are reported, not raised.
    """
    path = Path(path)
    result = IngestResult()
    if path.is_dir():
        files, base = files_under(path), root if root is not None else path
    elif path.is_file():
        files, base = [path], root
    else:
        result.problems.append(f"{path}: no such file or folder")
        return result
    for file in files:
        try:
            name = file.relative_to(base).as_posix() if base is not None else file.name
        except ValueError:
            name = file.name
        try:
            raw = file.read_bytes().decode("utf-8")  # bytes: no newline translation
        except UnicodeDecodeError as exc:
            result.problems.append(
                f"{name}: not UTF-8 text (bad byte at offset {exc.start}) - skipped"
            )
            result.files_rejected += 1
            continue
        except OSError as exc:
            result.problems.append(f"{name}: cannot read ({exc.strerror or exc}) - skipped")
            result.files_rejected += 1
            continue
        if file.suffix.lower() == ".jsonl":
            part = ingest_jsonl(raw, name)
            result.articles += part.articles
            result.problems += part.problems
            result.lines_rejected += part.lines_rejected
        else:
            result.articles += ingest_text(raw, name)
    return result
