"""A synthetic archive for tests of sharding and exactness that need no model: clustered unit
vectors, Zipf-distributed tokens, several dates and sources, and exact duplicates (same
vector, same tokens) so that ties happen; plus a fake embedder and tokenizer that an
``Engine`` accepts (they claim the identity the synthetic settings record)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from indexer import store
from indexer.schema import Article, Passage, Span
from tests.helpers import synthetic

DIM = synthetic.DIM
VOCAB = [f"词{k}" for k in range(400)]
SOURCES = ["重庆日报", "人民日报", "新华社", None]


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def archive(n_articles: int = 60, seed: int = 0) -> store.IndexContent:
    rng = np.random.default_rng(seed)
    centres = _unit(rng.normal(size=(8, DIM)))
    zipf = 1.0 / np.arange(1, len(VOCAB) + 1)
    zipf /= zipf.sum()
    c = store.IndexContent()
    vectors = []
    for a in range(n_articles):
        aid = f"s{seed}a{a:04d}"
        n_passages = int(rng.integers(1, 6))
        texts, toks, vecs = [], [], []
        for _ in range(n_passages):
            if vectors and rng.random() < 0.08:  # an exact duplicate of an earlier passage
                j = int(rng.integers(len(vectors)))
                texts.append(c.passages[j].text)
                toks.append(list(c.tokens[j]))
                vecs.append(vectors[j])
                continue
            tokens = list(rng.choice(VOCAB, size=int(rng.integers(4, 25)), p=zipf))
            texts.append("".join(tokens) + "。")
            toks.append(tokens)
            centre = centres[int(rng.integers(len(centres)))]
            vecs.append(_unit(centre + 0.6 * rng.normal(size=DIM) / np.sqrt(DIM) * 8))
        body = "\n".join(texts)
        month = int(rng.integers(1, 13))
        date = None if rng.random() < 0.1 else f"2023-{month:02d}-{int(rng.integers(1, 28)):02d}"
        c.articles[aid] = Article(
            article_id=aid,
            title=f"标题{a}",
            file=f"news{seed}.jsonl#L{a + 1}",
            paragraphs=[Span(body, 0, len(body))],
            date=date,
            source=SOURCES[int(rng.integers(len(SOURCES)))],
            content_hash=hashlib.sha1(f"{aid}{body}".encode()).hexdigest(),
        )
        offset = 0
        for p, (text, tokens, vec) in enumerate(zip(texts, toks, vecs, strict=True)):
            c.passages.append(
                Passage(
                    f"{aid}-{p:04d}", aid, p, text, c.articles[aid].file, offset, offset + len(text)
                )
            )
            offset += len(text) + 1
            c.tokens.append(tokens)
            vectors.append(vec)
    c.vectors = np.stack(vectors).astype(np.float32)
    c.files = {f"news{seed}.jsonl": f"{seed:064d}"}
    return c


def settings(**overrides) -> store.IndexSettings:
    return synthetic.settings(**overrides)


@dataclass
class FakeIdentity:
    name: str = "multilingual-e5-small"
    checksum: str = "abc123"
    dimension: int = DIM


@dataclass
class FakeEmbedder:
    """Vectors from a hash of the text (deterministic), or the ones a test set for a text."""

    identity: FakeIdentity = field(default_factory=FakeIdentity)
    known: dict[str, np.ndarray] = field(default_factory=dict)
    dtype: str = "float32"
    dimension: int = DIM

    def _one(self, text: str) -> np.ndarray:
        if text in self.known:
            return self.known[text]
        seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
        return _unit(np.random.default_rng(seed).normal(size=DIM))

    def encode_query(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._one(t) for t in texts])

    def encode_document(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self.encode_query(texts)

    def build_info(self) -> dict[str, str]:
        return {"device": "cpu", "dtype": self.dtype}


class FakeTokenizer:
    fingerprint = "jieba-test"

    def tokenize(self, text: str) -> list[str]:
        return [t for t in text.split() if t]

    def tokenize_many(self, texts: list[str]) -> list[list[str]]:
        return [self.tokenize(t) for t in texts]


def engine(index_path, embedder: FakeEmbedder, **settings_overrides):
    """An ``Engine`` over the index at ``index_path`` (plain or sharded) with the fakes."""
    from indexer.settings import Settings
    from qa_service.answer import AnswerExtractor
    from qa_service.engine import engine_for
    from qa_service.index import load

    settings = Settings(**settings_overrides)
    return engine_for(
        load(index_path), settings, embedder, FakeTokenizer(), AnswerExtractor(embedder)
    )
