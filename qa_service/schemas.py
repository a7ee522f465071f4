"""Request and response models of the HTTP API (see DESIGN.md): one place for their shape."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from indexer.settings import get_settings

_settings = get_settings()
MAX_TOP_K = _settings.max_top_k
MAX_QUESTION = _settings.max_question_chars
MAX_TEXT = _settings.max_text_chars

Mode = Literal["hybrid", "dense", "bm25"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _non_blank(value: str, what: str, limit: int) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"{what} must not be empty")
    if len(value) > limit:
        raise ValueError(f"{what} is {len(value)} characters long; the limit is {limit}")
    return value


class FiltersIn(Strict):
    date_from: dt.date | None = Field(None, description="earliest article date, YYYY-MM-DD")
    date_to: dt.date | None = Field(None, description="latest article date, YYYY-MM-DD")
    source: str | None = Field(None, max_length=200, description="newspaper, e.g. 重庆日报")
    article_ids: list[str] | None = Field(None, max_length=1000)


class AskRequest(Strict):
    question: str = Field(..., description="a question in Chinese or English")
    top_k: int = Field(5, ge=1, le=MAX_TOP_K)
    mode: Mode = "hybrid"
    filters: FiltersIn | None = None

    @field_validator("question")
    @classmethod
    def _question(cls, v: str) -> str:
        return _non_blank(v, "question", MAX_QUESTION)


class SearchRequest(Strict):
    query: str
    top_k: int = Field(10, ge=1, le=MAX_TOP_K)
    mode: Mode = "hybrid"
    filters: FiltersIn | None = None

    @field_validator("query")
    @classmethod
    def _query(cls, v: str) -> str:
        return _non_blank(v, "query", MAX_QUESTION)


class SimilarRequest(Strict):
    text: str | None = None
    passage_id: str | None = Field(None, max_length=200)
    article_id: str | None = Field(None, max_length=200)
    top_k: int = Field(10, ge=1, le=MAX_TOP_K)
    level: Literal["passage", "article"] = "passage"

    @field_validator("text")
    @classmethod
    def _text(cls, v: str | None) -> str | None:
        return None if v is None else _non_blank(v, "text", MAX_TEXT)

    @model_validator(mode="after")
    def _exactly_one(self) -> SimilarRequest:
        given = [n for n in ("text", "passage_id", "article_id") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of text, passage_id or article_id")
        return self


class Scores(BaseModel):
    dense: float | None = None
    bm25: float | None = None


class PassageOut(BaseModel):
    passage_id: str
    article_id: str
    position: int
    title: str
    date: str | None
    source: str | None
    file: str = Field(..., description="source file the passage was read from")
    start: int = Field(..., description="character offset of the passage in the raw file")
    end: int
    text: str
    score: float
    scores: Scores
    highlights: list[tuple[int, int]] = Field(
        default_factory=list, description="[start, end) character spans within text"
    )


class AnswerOut(BaseModel):
    text: str = Field(..., description="answer sentences with [n] marks citing passages (1-based)")
    citations: list[int]
    confidence: float


class AskResponse(BaseModel):
    question: str
    answer: AnswerOut | None
    message: str | None = Field(None, description="why there is no answer, when there is none")
    passages: list[PassageOut]
    timings: dict[str, float]
    request_id: str


class SearchResponse(BaseModel):
    query: str
    results: list[PassageOut]
    timings: dict[str, float]
    request_id: str


class ArticleHitOut(BaseModel):
    article_id: str
    title: str
    date: str | None
    source: str | None
    file: str
    score: float
    best_passage_id: str


class SimilarResponse(BaseModel):
    level: Literal["passage", "article"]
    results: list[PassageOut] | list[ArticleHitOut]
    request_id: str


class ParagraphOut(BaseModel):
    text: str
    start: int
    end: int


class ArticleOut(BaseModel):
    article_id: str
    title: str
    date: str | None
    byline: str | None
    source: str | None
    url: str | None
    file: str
    files: list[str] = Field(..., description="every file the article was found in")
    text: str
    paragraphs: list[ParagraphOut]
    passages: list[PassageOut]


class ArticleIn(Strict):
    """An article to add through the admin API (the .jsonl line format)."""

    id: str = Field(..., min_length=1, max_length=200, pattern=r"^[\w.\-:]+$")
    title: str = Field(..., min_length=1, max_length=500)
    text: str = Field(..., min_length=1, max_length=MAX_TEXT * 5)
    date: dt.date | None = None
    source: str | None = Field(None, max_length=200)
    url: str | None = Field(None, max_length=2000)

    @field_validator("title", "text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v


class ArticlesIn(Strict):
    articles: list[ArticleIn] = Field(..., min_length=1, max_length=1000)


class WriteResult(BaseModel):
    added: int
    removed: int
    unchanged: int
    articles: int
    passages: int
    article_ids: list[str]


class EmbeddingsRequest(BaseModel):
    input: str | list[str]
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    input_type: Literal["query", "document"] = "query"
    user: str | None = None

    @field_validator("input")
    @classmethod
    def _input(cls, v: str | list[str]) -> str | list[str]:
        items = [v] if isinstance(v, str) else v
        if not items:
            raise ValueError("input must not be empty")
        if len(items) > 256:
            raise ValueError("at most 256 inputs per request")
        for item in items:
            _non_blank(item, "each input", MAX_TEXT)
        return v
