"""Synthetic index content for tests about the store itself (not about retrieval quality):
random unit vectors stand in for embeddings, which is all the store sees."""

from __future__ import annotations

import numpy as np

from indexer import store
from indexer.schema import Article, Passage, Span

DIM = 384


def settings(**overrides) -> store.IndexSettings:
    base = dict(
        model_name="multilingual-e5-small",
        model_checksum="abc123",
        dimension=DIM,
        tokenizer="jieba-test",
        chunk_target_chars=200,
        chunk_max_chars=350,
        chunk_overlap_sentences=1,
    )
    base.update(overrides)
    return store.IndexSettings(**base)


def content(n_articles: int, passages_per_article: int = 3, seed: int = 0) -> store.IndexContent:
    rng = np.random.default_rng(seed)
    c = store.IndexContent()
    for a in range(n_articles):
        aid = f"art{seed}-{a:05d}"
        text = f"第{a}篇文章的内容。" * passages_per_article
        c.articles[aid] = Article(
            article_id=aid,
            title=f"标题{a}",
            file=f"f{seed}.txt",
            paragraphs=[Span(text, 0, len(text))],
            date="2023-02-08",
            source="重庆日报",
            content_hash=aid,
        )
        for p in range(passages_per_article):
            c.passages.append(
                Passage(f"{aid}-{p:04d}", aid, p, f"第{a}篇第{p}段", f"f{seed}.txt", p, p + 1)
            )
            c.tokens.append([f"第{a}篇", "内容"])
    vectors = rng.normal(size=(len(c.passages), DIM)).astype(np.float32)
    c.vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    c.files = {f"f{seed}.txt": f"{seed:064d}"}
    return c
