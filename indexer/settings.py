"""The one place for configuration.

Every setting can be overridden by an environment variable named ``NEWSQA_<FIELD>``
(for example ``NEWSQA_MODELS_DIR=/srv/models``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from indexer.choices import Device, FaissKind, FusionMethod, ModelDtype, TokenizerMode

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSQA_", extra="ignore")

    # Where things live.
    data_dir: Path = PROJECT_ROOT / "data"
    models_dir: Path = Path.home() / ".cache" / "newsqa" / "models"
    index_dir: Path = PROJECT_ROOT / "data" / "index"
    seeds_dir: Path = PROJECT_ROOT / "seeds"

    # Embedding model.
    model: str = "multilingual-e5-small"
    # "auto": a CUDA GPU when torch sees one, else the CPU; or "cpu", "cuda", "cuda:N".
    device: Device = "auto"
    # "auto": on a CPU bfloat16 where it computes it natively, else float32; on a GPU
    # bfloat16 where the card has it, else float16 (indexer.embed).
    model_dtype: ModelDtype = "auto"
    # Passages per forward pass; unset: 32 on a CPU, 512 on a GPU (indexer.embed).
    embed_batch_size: int | None = None
    torch_threads: int = 0  # 0: let torch decide

    # Chunking (characters). Chosen with `python -m eval compare`, see BENCHMARKS.md.
    chunk_target_chars: int = 200
    chunk_max_chars: int = 350
    chunk_overlap_sentences: int = 1

    # BM25: jieba mode ("search", "precise" or "full", see BENCHMARKS.md) and parameters.
    tokenizer_mode: TokenizerMode = "search"
    bm25_k1: float = 1.2
    bm25_b: float = 0.75
    user_dict: Path | None = None
    # Fold traditional characters to simplified in BM25 tokens and in what the model embeds
    # (index and query alike), so a question in either script finds text in either
    # (indexer.script, BENCHMARKS.md). Text is shown in its own characters.
    script_fold: bool = True

    # Hybrid fusion: "evidence" (BM25 weighted by how much of the query it matched),
    # "linear" (fixed weight) or "rrf" (reciprocal rank). See BENCHMARKS.md for the choice.
    fusion: FusionMethod = "evidence"
    fusion_weight: float = 1.0

    # FAISS: "flat" (exact), "hnsw" or "ivf".
    faiss_kind: FaissKind = "flat"

    # Service.
    host: str = "127.0.0.1"
    port: int = 8000
    admin_token: str | None = None
    max_question_chars: int = 2000
    max_text_chars: int = 20000
    max_top_k: int = 100
    max_body_bytes: int = 2_000_000
    request_timeout_s: float = 30.0


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
