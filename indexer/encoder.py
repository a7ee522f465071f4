"""What turns the indexed texts of new passages into vectors and BM25 tokens.

The :class:`~indexer.pipeline.Indexer` decides which articles are new and cuts them into
passages; an :class:`Encoder` only encodes. :class:`LocalEncoder` does it in this process with
the model on its device; ``indexer.cluster.RayEncoder`` does it in a pool of Ray actors. Both
give the same vectors (normalised float32) and the same tokens, in the order of the texts.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from indexer.embed import Embedder, ModelIdentity
from indexer.tokenize import ChineseTokenizer


class Encoder(Protocol):
    #: The model an index built with this encoder records (name, checksum, dimension).
    identity: ModelIdentity
    #: The BM25 tokenizer's fingerprint (``indexer.tokenize.fingerprint``).
    tokenizer_fingerprint: str

    def encode(self, texts: list[str], progress: bool) -> tuple[np.ndarray, list[list[str]]]:
        """Vectors (one normalised float32 row per text) and BM25 tokens, in text order."""
        ...

    def build_info(self) -> dict[str, str]:
        """How the vectors were computed (device, dtype, ...), for the manifest."""
        ...


class LocalEncoder:
    """The model and tokenizer of this process."""

    def __init__(self, embedder: Embedder, tokenizer: ChineseTokenizer) -> None:
        self.embedder = embedder
        self.tokenizer = tokenizer
        self.identity = embedder.identity
        self.tokenizer_fingerprint = tokenizer.fingerprint

    def encode(self, texts: list[str], progress: bool) -> tuple[np.ndarray, list[list[str]]]:
        vectors = self.embedder.encode_document(texts, progress=progress)
        return vectors, self.tokenizer.tokenize_many(texts)

    def build_info(self) -> dict[str, str]:
        return self.embedder.build_info()
