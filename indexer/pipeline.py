"""Build and update an index: sources -> articles -> passages -> vectors + tokens -> store.

Updates work on the whole content in memory and write a new version atomically (see
``store``). Articles are keyed by a hash of their text, so an unchanged article is never
embedded twice, and the same article found in two files is stored once with both files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexer import shards as sharding
from indexer import store, tokenize
from indexer.chunk import chunk_article
from indexer.embed import Embedder
from indexer.encoder import Encoder, LocalEncoder
from indexer.files import SourceFile, iter_sources, sha256_file  # noqa: F401 (re-exported)
from indexer.ingest import NoArticles
from indexer.manifest import expected_settings
from indexer.reader import FileRead, LocalReader, Reader, chunking_of
from indexer.schema import Article, Passage
from indexer.sentences import SentenceIndex
from indexer.settings import Settings, get_settings
from indexer.titles import ELLIPSIS, name_untitled

#: How many rejection reasons a "no article" error quotes.
REASONS_SHOWN = 5


@dataclass
class UpdateReport:
    """What a build or an update did; ``written`` and ``content`` are the new index in memory
    (None when nothing changed), for a caller that serves it next."""

    articles_added: int = 0
    articles_removed: int = 0
    articles_unchanged: int = 0
    files_skipped: int = 0
    passages_embedded: int = 0
    articles: int = 0  # in the index afterwards
    passages: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    files_read: int = 0  # source files read (not skipped as unchanged)
    articles_read: int = 0  # articles found in them
    lines_rejected: int = 0  # .jsonl lines skipped, each with its problem
    files_rejected: int = 0  # files that could not be read
    changed: bool = False
    written: store.WrittenIndex | None = field(default=None, repr=False)
    content: store.IndexContent | None = field(default=None, repr=False)

    def summary(self) -> str:
        rate = self.passages_embedded / self.seconds if self.seconds else 0.0
        lines = [
            f"articles: {self.articles} in index "
            f"(+{self.articles_added} added, -{self.articles_removed} removed, "
            f"{self.articles_unchanged} unchanged, {self.files_skipped} files unchanged)",
            f"passages: {self.passages} in index, {self.passages_embedded} embedded",
            f"time: {self.seconds:.1f} s ({rate:.1f} passages/s)",
        ]
        if not self.changed:
            lines.append("nothing changed: the index was left as it was")
        lines += [f"warning: {p}" for p in self.problems]
        return "\n".join(lines)

    def check_read_something(self) -> None:
        """Raise :class:`NoArticles` when files were read, something in them was rejected,
        and not one article came out (an empty file is not an error; a file of bad lines is)."""
        if not self.files_read or self.articles_read or not self.problems:
            return
        rejected = [
            f"{n} {what}{'s' if n != 1 else ''}"
            for n, what in ((self.lines_rejected, "line"), (self.files_rejected, "file"))
            if n
        ]
        reasons = "\n".join(f"  {p}" for p in self.problems[:REASONS_SHOWN])
        more = len(self.problems) - REASONS_SHOWN
        if more > 0:
            reasons += f"\n  ... and {more} more"
        raise NoArticles(
            f"no article could be read from the input: "
            f"{' and '.join(rejected) or f'{len(self.problems)} problems'} rejected. "
            f"The first reasons:\n{reasons}"
        )


class Indexer:
    """Applies changes to an :class:`IndexContent`: decides which files changed and which
    articles are new (the bookkeeping, here only); a :class:`~indexer.reader.Reader` reads the
    changed files and an :class:`~indexer.encoder.Encoder` encodes the new passages.

    By default both work in this process, with this process's model and tokenizer (also
    reachable as ``embedder`` and ``tokenizer``); ``indexer.cluster`` plugs in a reader and an
    encoder that run on a Ray cluster."""

    def __init__(
        self,
        settings: Settings | None = None,
        model: str | None = None,
        embedder: Embedder | None = None,
        tokenizer: tokenize.ChineseTokenizer | None = None,
        *,
        encoder: Encoder | None = None,
        reader: Reader | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.embedder, self.tokenizer = embedder, tokenizer
        if encoder is None:
            self.embedder = embedder or Embedder(model, self.settings)
            self.tokenizer = tokenizer or tokenize.from_settings(self.settings)
            encoder = LocalEncoder(self.embedder, self.tokenizer)
        self.encoder: Encoder = encoder
        self.reader: Reader = reader or LocalReader()

    def index_settings(self) -> store.IndexSettings:
        s = self.settings
        ident = self.encoder.identity
        return store.IndexSettings(
            model_name=ident.name,
            model_checksum=ident.checksum,
            dimension=ident.dimension,
            tokenizer=self.encoder.tokenizer_fingerprint,
            chunk_target_chars=s.chunk_target_chars,
            chunk_max_chars=s.chunk_max_chars,
            chunk_overlap_sentences=s.chunk_overlap_sentences,
            faiss_kind=s.faiss_kind,
            bm25_k1=s.bm25_k1,
            bm25_b=s.bm25_b,
        )

    def build_info(self) -> dict[str, str]:
        """How the vectors were computed (device, dtype, ...), recorded in the manifest."""
        return self.encoder.build_info()

    # ------------------------------------------------------------------ passages

    def passages_for(
        self, articles: list[Article], chunked: dict[int, list[Passage]] | None = None
    ) -> list[Passage]:
        """The articles' passages; ``chunked`` holds those already cut where the articles were
        read, keyed by ``id(article)`` (the others are cut here)."""
        chunking = chunking_of(self.settings)
        out: list[Passage] = []
        for article in articles:
            done = chunked.get(id(article)) if chunked else None
            out += done if done is not None else chunk_article(article, *chunking)
        return out

    # Names what ``indexed_text`` puts before a passage; caches of built indexes key on it.
    INDEXED_TEXT = "title, else opening sentence after the first passage"

    @staticmethod
    def indexed_text(passage: Passage, article: Article) -> str:
        """The text embedded and keyword-indexed: every passage carries its article's context.

        A titled article's passages start with its title. An untitled one has no headline to
        give (its derived title, ``indexer.titles``, is not indexed as one), so the passages
        after its first, which start mid-story, start with its opening sentence instead,
        clipped as the derived title is: what the story is about (BENCHMARKS.md, issue 13:
        on the CRUD news questions the answer-bearing passage comes first more often).
        """
        if article.title and not article.title_derived:
            return f"{article.title}\n{passage.text}"
        if article.title and passage.position > 0:
            return f"{article.title.removesuffix(ELLIPSIS)}\n{passage.text}"
        return passage.text

    def encode(self, passages: list[Passage], articles: dict[str, Article], progress: bool):
        """Vectors and BM25 tokens of these passages' indexed texts, by the encoder."""
        texts = [self.indexed_text(p, articles[p.article_id]) for p in passages]
        return self.encoder.encode(texts, progress)

    # ------------------------------------------------------------------- changes

    def apply(
        self,
        content: store.IndexContent,
        add: list[Article],
        remove: set[str],
        report: UpdateReport,
        progress: bool = False,
        chunked: dict[int, list[Passage]] | None = None,
    ) -> None:
        """Remove article ids, then add articles; only new content is chunked and embedded
        (``chunked``: passages already cut, see :meth:`passages_for`)."""
        fresh = self.new_articles(content, add, remove, report)
        dim = self.encoder.identity.dimension
        keep = [i for i, p in enumerate(content.passages) if p.article_id in content.articles]
        old_vectors = content.vector_matrix(dim)
        sentences = self._kept_sentences(content, keep, progress)
        passages = [content.passages[i] for i in keep]
        tokens = [content.tokens[i] for i in keep]
        vectors = [old_vectors[keep]] if keep else [np.zeros((0, dim), dtype=np.float32)]
        if fresh:
            new_passages = self.passages_for(list(fresh.values()), chunked)
            new_vectors, new_tokens = self.encode(new_passages, fresh, progress)
            passages += new_passages
            tokens += new_tokens
            vectors.append(new_vectors)
            sentences = sentences.concat(
                self.sentences_of([p.text for p in new_passages], len(keep), progress)
            )
            content.articles.update(fresh)
            report.articles_added += len(fresh)
            report.passages_embedded += len(new_passages)
            report.changed = True
        content.passages = passages
        content.tokens = tokens
        content.vectors = np.concatenate(vectors).astype(np.float32, copy=False)
        content.sentences = sentences

    def sentences_of(self, texts: list[str], first_row: int, progress: bool) -> SentenceIndex:
        """Sentence vectors of these passage texts, by the encoder (``indexer.sentences``)."""
        return SentenceIndex.build(
            texts,
            lambda distinct: self.encoder.encode(distinct, progress)[0],
            self.encoder.identity.dimension,
            first_row,
        )

    def _kept_sentences(self, content, keep: list[int], progress: bool) -> SentenceIndex:
        """The sentences of the kept passages; an index written before sentence vectors gets
        them for all its passages now."""
        if content.sentences is None:
            return self.sentences_of([content.passages[i].text for i in keep], 0, progress)
        return content.sentences.keep(keep)

    def new_articles(
        self,
        content: store.IndexContent,
        add: list[Article],
        remove: set[str],
        report: UpdateReport,
    ) -> dict[str, Article]:
        """Remove article ids from ``content``, and say which of ``add`` are new: the articles
        to chunk and encode, by id. Nothing is encoded here.

        An article whose id is known but whose text changed replaces the old one (which is
        removed here). An article whose text is already indexed under another id is a
        duplicate: the stored one gains this file instead of a second copy.
        """
        for article_id in remove:
            if content.articles.pop(article_id, None) is not None:
                report.articles_removed += 1
                report.changed = True
        by_hash = {a.content_hash: a for a in content.articles.values()}
        fresh: dict[str, Article] = {}
        for article in add:
            same_id = content.articles.get(article.article_id) or fresh.get(article.article_id)
            if same_id is not None and same_id.content_hash != article.content_hash:
                if content.articles.pop(article.article_id, None) is not None:
                    report.articles_removed += 1
                fresh.pop(article.article_id, None)
                by_hash.pop(same_id.content_hash, None)
                same_id = None
            existing = same_id or by_hash.get(article.content_hash)
            if existing is not None:
                if article.file != existing.file and article.file not in existing.extra_files:
                    existing.extra_files.append(article.file)
                    report.changed = True
                if existing.article_id in content.articles:
                    report.articles_unchanged += 1
                continue
            fresh[article.article_id] = name_untitled(article)
            by_hash[article.content_hash] = article
        return fresh

    def update_from_files(
        self,
        content: store.IndexContent,
        sources: list[SourceFile],
        report: UpdateReport,
        progress: bool = True,
    ) -> None:
        """Bring the index in line with these files; unchanged files are skipped entirely
        (by their sha256), and only the articles that are new are encoded. Raises
        :class:`NoArticles` when the files read yield no article, only rejected lines."""
        changed: list[tuple[SourceFile, str]] = []
        for source in sources:
            digest = sha256_file(source.path)
            if content.files.get(source.key) == digest:
                report.files_skipped += 1
            else:
                changed.append((source, digest))
        to_add: list[Article] = []
        to_remove: set[str] = set()
        chunked: dict[int, list[Passage]] = {}
        for read in self.reader.read(changed, progress):
            self._take_file(content, read, report, to_remove)
            to_add += read.result.articles
            if read.passages is not None:
                for article, passages in zip(read.result.articles, read.passages, strict=True):
                    chunked[id(article)] = passages
        report.check_read_something()  # before any encoding: a wrong format fails at once
        self.apply(content, to_add, to_remove, report, progress, chunked)

    def _take_file(
        self, content: store.IndexContent, read: FileRead, report: UpdateReport, to_remove: set
    ) -> None:
        """The bookkeeping of one changed file: its problems, its sha256, and the stored
        articles it no longer holds (forgotten there, or removed when no other file has them)."""
        source, result = read.source, read.result
        report.problems += result.problems
        report.files_read += 1
        report.articles_read += len(result.articles)
        report.lines_rejected += result.lines_rejected
        report.files_rejected += result.files_rejected
        new_ids = {a.article_id for a in result.articles}
        for article in list(content.articles.values()):
            files = [article.file, *article.extra_files]
            mine = [f for f in files if _file_of(f) == source.key]
            if not mine or article.article_id in new_ids:
                continue
            rest = [f for f in files if _file_of(f) != source.key]
            if rest:  # still found elsewhere: only forget this file
                article.file, article.extra_files = rest[0], rest[1:]
                report.changed = True
            else:
                to_remove.add(article.article_id)
        content.files[source.key] = read.digest
        report.changed = True

    def remove_articles(self, content: store.IndexContent, ids: set[str], report: UpdateReport):
        missing = sorted(i for i in ids if i not in content.articles)
        if missing:
            raise KeyError(f"No article with id {', '.join(missing)} in the index.")
        for article_id in ids:
            article = content.articles[article_id]
            for f in [article.file, *article.extra_files]:
                content.files.pop(_file_of(f), None)  # a re-add of that file restores it
        self.apply(content, [], ids, report)


def _file_of(name: str) -> str:
    """``news.jsonl#L3`` belongs to the file ``news.jsonl``."""
    return name.split("#L", 1)[0]


def build(
    index_path: Path,
    sources: list[SourceFile],
    *,
    settings: Settings | None = None,
    indexer: Indexer | None = None,
    model: str | None = None,
    progress: bool = True,
    shards: int | None = None,
) -> UpdateReport:
    """A new index of these files at ``index_path`` (replacing what was there, atomically);
    with ``shards``, a generation of that many shards (``indexer.shards``).

    Raises :class:`NoArticles`, writing nothing, when the files hold only rejected lines."""
    start = time.perf_counter()
    indexer = indexer or Indexer(settings, model=model)
    content = store.IndexContent()
    report = UpdateReport()
    indexer.update_from_files(content, sources, report, progress)
    report.changed = True
    made_with, how = indexer.index_settings(), indexer.build_info()
    if shards:
        written = sharding.write(index_path, content, shards, made_with, how)
    else:
        written = store.write_index(index_path, content, made_with, how)
    return _finish(report, start, content, written)


def update(
    index_path: Path,
    *,
    sources: list[SourceFile] = (),
    add: list[Article] = (),
    remove: set[str] | list[str] = (),
    settings: Settings | None = None,
    indexer: Indexer | None = None,
    model: str | None = None,
    progress: bool = False,
) -> UpdateReport:
    """Bring files in, add articles, remove articles by id: one new version, or none.

    The index's settings are checked against these first (:meth:`Manifest.check_compatible`),
    before the model is loaded or anything is read: a write that would mix tokenizers, models
    or chunking raises :class:`IncompatibleIndex` and leaves the index untouched. An unknown
    id in ``remove`` raises ``KeyError``; files that hold only rejected lines raise
    :class:`NoArticles`. The index keeps its FAISS kind and BM25 parameters.
    """
    start = time.perf_counter()
    existing = sharding.at(index_path)  # a plain index or a sharded one
    manifest = existing.manifest
    if indexer is None:
        settings = settings or get_settings()
        manifest.check_compatible(expected_settings(settings, model), "write")
        indexer = Indexer(settings, model=model)
    manifest.check_compatible(indexer.index_settings(), "write")
    content = existing.load()
    report = UpdateReport()
    if remove:
        indexer.remove_articles(content, set(remove), report)
    if sources:
        indexer.update_from_files(content, list(sources), report, progress)
    if add:
        indexer.apply(content, list(add), set(), report, progress)
    written = None
    if report.changed:
        target = indexer.index_settings().with_structures_of(manifest.settings)
        written = existing.write(content, target, indexer.build_info())
    return _finish(report, start, content, written)


def _finish(report, start, content, written) -> UpdateReport:
    report.articles = len(content.articles)
    report.passages = len(content.passages)
    report.seconds = time.perf_counter() - start
    if written is not None:
        report.written, report.content = written, content
    return report
