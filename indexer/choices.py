"""The closed sets of names the project accepts, each defined once as a ``Literal``.

Settings fields, request schemas, function signatures and command-line ``choices=`` all take
them from here (the tuples are ``typing.get_args`` of the types), so adding a mode is one edit.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import StringConstraints

#: How a query is matched: both retrievers fused, embeddings only, or BM25 only.
SearchMode = Literal["hybrid", "dense", "bm25"]
#: How hybrid search fuses the dense and BM25 lists (see BENCHMARKS.md for the choice).
FusionMethod = Literal["evidence", "linear", "rrf"]
#: FAISS index: exact, HNSW graph or inverted lists.
FaissKind = Literal["flat", "hnsw", "ivf"]
#: jieba segmentation mode for BM25.
TokenizerMode = Literal["search", "precise", "full"]
#: The dtype the embedding model computes in; "auto" resolves per device (``indexer.embed``):
#: on a CPU bfloat16 where it is native, else float32; on a GPU bfloat16 where the card has it,
#: else float16.
ModelDtype = Literal["auto", "float32", "bfloat16", "float16"]
#: Where the model computes: "auto" (a CUDA GPU when torch sees one, else the CPU), "cpu",
#: "cuda" (the current GPU) or "cuda:N". Not a Literal because of N: the pattern is checked.
DEVICE_PATTERN = r"^(auto|cpu|cuda(:[0-9]+)?)$"
Device = Annotated[str, StringConstraints(pattern=DEVICE_PATTERN)]
#: What ``/similar`` returns: passages, or articles ranked by their best passage.
SimilarLevel = Literal["passage", "article"]
#: What ``/search`` and ``/ask`` count matching articles by (``qa_service.facets``).
FacetField = Literal["month", "source"]

SEARCH_MODES: tuple[SearchMode, ...] = get_args(SearchMode)
FUSION_METHODS: tuple[FusionMethod, ...] = get_args(FusionMethod)
FAISS_KINDS: tuple[FaissKind, ...] = get_args(FaissKind)
TOKENIZER_MODES: tuple[TokenizerMode, ...] = get_args(TokenizerMode)
MODEL_DTYPES: tuple[ModelDtype, ...] = get_args(ModelDtype)
#: The dtypes a model actually computes in ("auto" resolved).
COMPUTE_DTYPES: tuple[ModelDtype, ...] = tuple(d for d in MODEL_DTYPES if d != "auto")
SIMILAR_LEVELS: tuple[SimilarLevel, ...] = get_args(SimilarLevel)
FACET_FIELDS: tuple[FacetField, ...] = get_args(FacetField)
