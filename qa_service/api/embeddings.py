"""OpenAI-compatible embeddings: POST /v1/embeddings with this service's model."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from qa_service import schemas
from qa_service.api.deps import EmbeddingsBody, StateDep, get_engine

router = APIRouter(tags=["embeddings"])


# get_engine: a 503 until the service is ready, as every other endpoint (the model alone would do)
@router.post(
    "/v1/embeddings",
    response_model=schemas.EmbeddingsResponse,
    dependencies=[Depends(get_engine)],
)
def embeddings(body: EmbeddingsBody, state: StateDep) -> schemas.EmbeddingsResponse:
    embedder = state.embedder
    name = embedder.identity.name
    if body.model and body.model not in (name, "default"):
        raise HTTPException(
            404, f"model {body.model!r} is not served here; this index uses {name!r}"
        )
    encode = embedder.encode_query if body.input_type == "query" else embedder.encode_document
    vectors = encode(body.texts)
    tokens = sum(len(embedder.model.tokenizer(t)["input_ids"]) for t in body.texts)
    return schemas.EmbeddingsResponse(
        data=[
            schemas.EmbeddingOut.from_vector(i, v, body.encoding_format)
            for i, v in enumerate(vectors)
        ],
        model=name,
        usage=schemas.Usage(prompt_tokens=tokens, total_tokens=tokens),
    )
