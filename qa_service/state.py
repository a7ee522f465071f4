"""What one running service holds: settings, the model, the current engine, metrics.

Admin writes are serialised by a lock; each one writes a new index version to disk (so it
survives a restart) and then swaps in a new :class:`Engine` with a single reference
assignment, so readers see either the old index or the new one, never a mix.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from indexer import store, tokenize
from indexer.embed import Embedder
from indexer.ingest import article_from_record
from indexer.pipeline import Indexer, update
from indexer.settings import Settings
from indexer.tokenize import ChineseTokenizer
from qa_service import glossary, schemas
from qa_service import index as loaded_index
from qa_service.answer import AnswerExtractor
from qa_service.engine import Engine, engine_for
from qa_service.index import LoadedIndex
from qa_service.metrics import Metrics

log = logging.getLogger("qa_service")

API_FILE = "api"  # the "file" of articles added over HTTP: offsets point into their text


class ServiceState:
    def __init__(
        self,
        settings: Settings,
        index_path: Path,
        embedder: Embedder | None = None,
        opener=None,
    ) -> None:
        self.settings = settings
        self.index_path = Path(index_path)
        self.embedder = embedder
        # How an index is opened, read or just written (``load``, ``from_written``): in this
        # process (``qa_service.index``), or on Ray Serve (``qa_service.serve_ray``).
        self.opener = opener or loaded_index
        self.tokenizer: ChineseTokenizer | None = None
        self.extractor: AnswerExtractor | None = None
        self.engine: Engine | None = None
        self.load_error: str | None = None
        self.metrics = Metrics()
        self._write_lock = threading.Lock()

    # ------------------------------------------------------------------ loading

    def start(self) -> None:
        """Load the model and the index once (idempotent)."""
        if self.engine is not None:
            return
        if self.embedder is None:
            self.embedder = Embedder(settings=self.settings)
        if self.tokenizer is None:
            self.tokenizer = tokenize.from_settings(self.settings)
        if self.extractor is None:
            self.extractor = AnswerExtractor(self.embedder)
        self.embedder.encode_query(["预热"])  # first call pays torch's one-off costs
        glossary.load()  # the dictionary too (about a second), not the first English question
        self.reload()

    def reload(self) -> None:
        """Open the index as it is on disk now (and check it against the settings)."""
        try:
            index = self.opener.load(self.index_path)
        except store.IndexStoreError as exc:
            self.load_error = str(exc)
            raise
        self._serve(index)

    def _serve(self, index: LoadedIndex) -> None:
        try:
            engine = engine_for(index, self.settings, self.embedder, self.tokenizer, self.extractor)
        except store.IndexStoreError as exc:
            self.load_error = str(exc)
            raise
        self.engine = engine  # the swap: one reference assignment
        self.load_error = None

    # ------------------------------------------------------------------- writes

    def _write(self, add, remove: set[str]) -> schemas.WriteResult:
        with self._write_lock:
            indexer = Indexer(self.settings, embedder=self.embedder, tokenizer=self.tokenizer)
            report = update(self.index_path, add=add, remove=remove, indexer=indexer)
            if report.written is not None:
                self._serve(
                    self.opener.from_written(self.index_path, report.written, report.content)
                )
            return schemas.WriteResult(
                added=report.articles_added,
                removed=report.articles_removed,
                unchanged=report.articles_unchanged,
                articles=report.articles,
                passages=report.passages,
                article_ids=[a.article_id for a in add],
            )

    def add_articles(self, items: list[schemas.ArticleIn]) -> schemas.WriteResult:
        articles = []
        for item in items:
            record = item.model_dump(mode="json", exclude_none=True)
            articles.append(article_from_record(record, f"{API_FILE}#{item.id}"))
        return self._write(articles, set())

    def remove_article(self, article_id: str) -> schemas.WriteResult:
        engine = self.engine
        if engine is None or article_id not in engine.index.articles:
            raise KeyError(f"no article with id {article_id!r}")
        return self._write([], {article_id})

    # -------------------------------------------------------------------- stats

    def stats(self, engine: Engine) -> dict:
        index = engine.index
        m = index.manifest
        sources = [s for s in index.source_names if s]  # sorted, "" (no source) left out
        shards = index.topology()  # a sharded index: its shards and their replicas
        return {
            "articles": len(index.articles),
            "passages": len(index.passages),
            "sources": sources,
            "files": len(index.content.files),
            "date_range": list(m.date_range) if m.date_range else None,
            "model": m.settings.model_name,
            "dimension": m.settings.dimension,
            "faiss": m.settings.faiss_kind,
            "built_at": m.built_at,
            "version": index.version,
        } | ({"shards": shards} if shards is not None else {})
