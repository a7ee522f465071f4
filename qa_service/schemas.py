"""Request and response models of the HTTP API: one place for their shape.

Size limits (``top_k``, text lengths) are the service's settings, so they are not fixed here:
each request model lists what exceeds a :class:`Limits`, and ``qa_service.api.deps`` checks
that against the running app's settings. The OpenAPI schema shows the default limits.

Response models are built by their ``from_*`` constructors from what the engine returns.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from indexer.choices import FACET_FIELDS, FacetField, SearchMode
from indexer.settings import Settings
from qa_service.locate import article_range

if TYPE_CHECKING:
    from indexer.schema import Article
    from qa_service.answer import Answer
    from qa_service.engine import ArticleHit, AskResult, PassageResult
    from qa_service.facets import FacetValue
    from qa_service.index import LoadedIndex
    from qa_service.retrieval import Filters

Mode = SearchMode
Level = Literal["passage", "article"]
#: Where a request breaks a limit (the field's path in the body) and how.
Problem = tuple[tuple[str | int, ...], str]

MAX_EMBEDDING_INPUTS = 256


# ---------------------------------------------------------------------- limits


@dataclass(frozen=True)
class Limits:
    top_k: int
    question_chars: int
    text_chars: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(settings.max_top_k, settings.max_question_chars, settings.max_text_chars)

    @property
    def article_chars(self) -> int:
        """An article added over the API may be a few passages' worth of text."""
        return self.text_chars * 5


def _default(name: str) -> int:
    return Settings.model_fields[name].default


#: The limits of a service with default settings: what the OpenAPI schema shows.
DEFAULT_LIMITS = Limits(
    _default("max_top_k"), _default("max_question_chars"), _default("max_text_chars")
)

TopK = Annotated[
    int,
    Field(
        ge=1,
        description="how many results; at most the service's max_top_k",
        json_schema_extra={"maximum": DEFAULT_LIMITS.top_k},
    ),
]


def _documented_max_length(chars: int) -> dict:
    return {"json_schema_extra": {"maxLength": chars}}


def _too_long(value: str | None, what: str, limit: int, loc: tuple) -> list[Problem]:
    if value is None or len(value) <= limit:
        return []
    return [(loc, f"{what} is {len(value)} characters long; the limit is {limit}")]


def _top_k_problems(top_k: int, limits: Limits) -> list[Problem]:
    if top_k <= limits.top_k:
        return []
    return [(("top_k",), f"must be at most {limits.top_k} (this service's max_top_k)")]


def _page_problems(offset: int, top_k: int, limits: Limits) -> list[Problem]:
    """A page may reach no deeper into the ranking than ``max_top_k`` results."""
    if not offset or top_k > limits.top_k or offset + top_k <= limits.top_k:
        return []
    return [
        (
            ("offset",),
            f"offset + top_k is {offset + top_k}; it must be at most {limits.top_k} "
            "(this service's max_top_k)",
        )
    ]


Facets = Annotated[
    list[FacetField],
    Field(
        max_length=len(FACET_FIELDS),
        description='count matching articles by these fields: ["month", "source"] '
        "(see the README for which articles match)",
    ),
]
RecencyHalfLife = Annotated[
    float | None,
    Field(
        gt=0,
        le=36500,
        description="boost recent articles: an article this many days older than the newest "
        "one counts 1.5x, the newest 2x, undated ones 1x (off by default)",
    ),
]


def _stripped(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"{what} must not be empty")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LimitedRequest(Strict):
    """A request body whose sizes are bounded by the service's settings."""

    def limit_problems(self, limits: Limits) -> list[Problem]:
        """What in this request exceeds ``limits`` (empty when it is within them)."""
        return []


# -------------------------------------------------------------------- requests


class FiltersIn(Strict):
    date_from: dt.date | None = Field(None, description="earliest article date, YYYY-MM-DD")
    date_to: dt.date | None = Field(None, description="latest article date, YYYY-MM-DD")
    source: str | None = Field(None, max_length=200, description="newspaper, e.g. 重庆日报")
    article_ids: list[str] | None = Field(None, max_length=1000)

    def to_filters(self) -> Filters:
        """What the retriever takes (dates as ISO strings)."""
        from qa_service.retrieval import Filters  # here: schemas stays free of the model code

        return Filters(
            date_from=self.date_from.isoformat() if self.date_from else None,
            date_to=self.date_to.isoformat() if self.date_to else None,
            source=self.source,
            article_ids=self.article_ids,
        )


class AskRequest(LimitedRequest):
    question: str = Field(
        ...,
        description="a question in Chinese or English",
        **_documented_max_length(DEFAULT_LIMITS.question_chars),
    )
    top_k: TopK = 5
    mode: Mode = "hybrid"
    filters: FiltersIn | None = None
    facets: Facets = []
    recency_half_life_days: RecencyHalfLife = None

    @field_validator("question")
    @classmethod
    def _question(cls, v: str) -> str:
        return _stripped(v, "question")

    def limit_problems(self, limits: Limits) -> list[Problem]:
        return [
            *_too_long(self.question, "question", limits.question_chars, ("question",)),
            *_top_k_problems(self.top_k, limits),
        ]


class SearchRequest(LimitedRequest):
    query: str = Field(..., **_documented_max_length(DEFAULT_LIMITS.question_chars))
    top_k: TopK = 10
    offset: int = Field(
        0,
        ge=0,
        description="skip this many results (paging): offset 5 with top_k 5 is places 5-9 of "
        "top_k 10; offset + top_k is at most the service's max_top_k",
    )
    mode: Mode = "hybrid"
    filters: FiltersIn | None = None
    facets: Facets = []
    recency_half_life_days: RecencyHalfLife = None

    @field_validator("query")
    @classmethod
    def _query(cls, v: str) -> str:
        return _stripped(v, "query")

    def limit_problems(self, limits: Limits) -> list[Problem]:
        return [
            *_too_long(self.query, "query", limits.question_chars, ("query",)),
            *_top_k_problems(self.top_k, limits),
            *_page_problems(self.offset, self.top_k, limits),
        ]


class SimilarRequest(LimitedRequest):
    text: str | None = Field(None, **_documented_max_length(DEFAULT_LIMITS.text_chars))
    passage_id: str | None = Field(None, max_length=200)
    article_id: str | None = Field(None, max_length=200)
    top_k: TopK = 10
    level: Level = "passage"

    @field_validator("text")
    @classmethod
    def _text(cls, v: str | None) -> str | None:
        return None if v is None else _stripped(v, "text")

    @model_validator(mode="after")
    def _exactly_one(self) -> SimilarRequest:
        given = [n for n in ("text", "passage_id", "article_id") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of text, passage_id or article_id")
        return self

    def limit_problems(self, limits: Limits) -> list[Problem]:
        return [
            *_too_long(self.text, "text", limits.text_chars, ("text",)),
            *_top_k_problems(self.top_k, limits),
        ]


class ArticleIn(LimitedRequest):
    """An article to add through the admin API (the .jsonl line format)."""

    id: str = Field(..., min_length=1, max_length=200, pattern=r"^[\w.\-:]+$")
    title: str | None = Field(
        None,
        min_length=1,
        max_length=500,
        description="optional: an untitled article is shown with its first sentence",
    )
    text: str = Field(..., min_length=1, **_documented_max_length(DEFAULT_LIMITS.article_chars))
    date: dt.date | None = None
    source: str | None = Field(None, max_length=200)
    url: str | None = Field(None, max_length=2000)

    @field_validator("title", "text")
    @classmethod
    def _not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("must not be blank")
        return v

    def limit_problems(self, limits: Limits) -> list[Problem]:
        return _too_long(self.text, "text", limits.article_chars, ("text",))


class ArticlesIn(LimitedRequest):
    articles: list[ArticleIn] = Field(..., min_length=1, max_length=1000)

    def limit_problems(self, limits: Limits) -> list[Problem]:
        return [
            (("articles", i, *loc), message)
            for i, article in enumerate(self.articles)
            for loc, message in article.limit_problems(limits)
        ]


class EmbeddingsRequest(LimitedRequest):
    """OpenAI's embeddings request; unknown fields are ignored as OpenAI clients expect."""

    model_config = ConfigDict(extra="ignore")

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
        if len(items) > MAX_EMBEDDING_INPUTS:
            raise ValueError(f"at most {MAX_EMBEDDING_INPUTS} inputs per request")
        for item in items:
            _stripped(item, "each input")
        return v

    @property
    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)

    def limit_problems(self, limits: Limits) -> list[Problem]:
        return [
            problem
            for i, text in enumerate(self.texts)
            for problem in _too_long(text, "each input", limits.text_chars, ("input", i))
        ]


# ------------------------------------------------------------------- responses


class Scores(BaseModel):
    dense: float | None = None
    bm25: float | None = None


#: ``title`` of an article whose source had none (``indexer.titles``).
TitleDerived = Annotated[
    bool, Field(description="the source had no title: this one is the text's first sentence")
]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


class PassageBase(BaseModel):
    """A passage wherever it is listed: what it says and where it was read from."""

    passage_id: str
    article_id: str
    position: int
    title: str
    title_derived: TitleDerived = False
    date: str | None
    source: str | None
    file: str = Field(..., description="source file the passage was read from")
    start: int = Field(..., description="character offset of the passage in the raw file")
    end: int
    text: str

    @classmethod
    def _from_row(cls, index: LoadedIndex, row: int, **extra):
        p = index.passages[row]
        a = index.articles[p.article_id]
        return cls(
            passage_id=p.passage_id,
            article_id=p.article_id,
            position=p.position,
            title=a.title,
            title_derived=a.title_derived,
            date=a.date,
            source=a.source,
            file=p.file,
            start=p.start,
            end=p.end,
            text=p.text,
            **extra,
        )


class PassageOut(PassageBase):
    """A passage found by a query, with its scores."""

    score: float
    scores: Scores
    highlights: list[tuple[int, int]] = Field(
        default_factory=list, description="[start, end) character spans within text"
    )

    @classmethod
    def from_result(cls, index: LoadedIndex, result: PassageResult) -> PassageOut:
        hit = result.hit
        return cls._from_row(
            index,
            result.row,
            score=round(hit.score, 6),
            scores=Scores(dense=_round(hit.dense), bm25=_round(hit.bm25)),
            highlights=result.highlights,
        )


class ArticlePassageOut(PassageBase):
    """A passage as listed in its article: no score, and its place in the article's text."""

    article_start: int | None = Field(
        ...,
        description="offset of the passage in the article's text: "
        "text[article_start:article_end] is the passage text (null if it cannot be placed)",
    )
    article_end: int | None

    @classmethod
    def from_row(cls, index: LoadedIndex, row: int) -> ArticlePassageOut:
        p = index.passages[row]
        where = article_range(index.articles[p.article_id], p)
        start, end = where if where is not None else (None, None)
        return cls._from_row(index, row, article_start=start, article_end=end)


class AnswerOut(BaseModel):
    text: str = Field(..., description="answer sentences with [n] marks citing passages (1-based)")
    citations: list[int]
    confidence: float

    @classmethod
    def from_answer(cls, answer: Answer) -> AnswerOut:
        return cls(text=answer.text, citations=answer.citations, confidence=answer.confidence)


class FacetValueOut(BaseModel):
    value: str = Field(..., description='a month "YYYY-MM", a source, or "unknown"')
    count: int = Field(..., description="matching articles with this value")


FacetsOut = dict[FacetField, list[FacetValueOut]]


def _facets_out(facets: dict[FacetField, list[FacetValue]] | None) -> FacetsOut | None:
    if facets is None:
        return None
    return {
        name: [FacetValueOut(value=v.value, count=v.count) for v in values]
        for name, values in facets.items()
    }


_FACETS_DESCRIPTION = "counts of matching articles per month/source, when asked for"


class AskResponse(BaseModel):
    question: str
    answer: AnswerOut | None
    message: str | None = Field(None, description="why there is no answer, when there is none")
    passages: list[PassageOut]
    facets: FacetsOut | None = Field(None, description=_FACETS_DESCRIPTION)
    timings: dict[str, float]
    request_id: str

    @classmethod
    def from_result(
        cls,
        question: str,
        result: AskResult,
        index: LoadedIndex,
        request_id: str,
        facets: dict[FacetField, list[FacetValue]] | None = None,
    ) -> AskResponse:
        if result.answer is not None:
            message = None
        elif result.passages:
            message = "No passage answers this question with enough confidence."
        else:
            message = "Nothing in the index matches this question."
        return cls(
            question=question,
            answer=None if result.answer is None else AnswerOut.from_answer(result.answer),
            message=message,
            passages=[PassageOut.from_result(index, r) for r in result.passages],
            facets=_facets_out(facets),
            timings=result.timings,
            request_id=request_id,
        )


class SearchResponse(BaseModel):
    query: str
    results: list[PassageOut]
    offset: int = Field(0, description="the place of the first result in the ranking")
    facets: FacetsOut | None = Field(None, description=_FACETS_DESCRIPTION)
    timings: dict[str, float]
    request_id: str

    @classmethod
    def from_results(
        cls,
        query: str,
        results: list[PassageResult],
        timings: dict[str, float],
        index: LoadedIndex,
        request_id: str,
        offset: int = 0,
        facets: dict[FacetField, list[FacetValue]] | None = None,
    ) -> SearchResponse:
        return cls(
            query=query,
            results=[PassageOut.from_result(index, r) for r in results],
            offset=offset,
            facets=_facets_out(facets),
            timings=timings,
            request_id=request_id,
        )


class ArticleHitOut(BaseModel):
    article_id: str
    title: str
    title_derived: TitleDerived = False
    date: str | None
    source: str | None
    file: str
    score: float
    best_passage_id: str

    @classmethod
    def from_hit(cls, index: LoadedIndex, hit: ArticleHit) -> ArticleHitOut:
        a = index.articles[hit.article_id]
        return cls(
            article_id=a.article_id,
            title=a.title,
            title_derived=a.title_derived,
            date=a.date,
            source=a.source,
            file=a.file,
            score=round(hit.score, 6),
            best_passage_id=index.passages[hit.best_row].passage_id,
        )


class SimilarResponse(BaseModel):
    level: Level
    results: list[PassageOut] | list[ArticleHitOut]
    request_id: str

    @classmethod
    def from_found(
        cls, level: Level, found: list, index: LoadedIndex, request_id: str
    ) -> SimilarResponse:
        """``found``: ``ArticleHit``s at the article level, ``PassageResult``s otherwise."""
        if level == "article":
            results = [ArticleHitOut.from_hit(index, h) for h in found]
        else:
            results = [PassageOut.from_result(index, r) for r in found]
        return cls(level=level, results=results, request_id=request_id)


class ParagraphOut(BaseModel):
    text: str
    start: int
    end: int


class ArticleOut(BaseModel):
    article_id: str
    title: str
    title_derived: TitleDerived = False
    date: str | None
    byline: str | None
    source: str | None
    url: str | None
    file: str
    files: list[str] = Field(..., description="every file the article was found in")
    text: str = Field(..., description="the cleaned text: the paragraphs joined by newlines")
    paragraphs: list[ParagraphOut]
    passages: list[ArticlePassageOut]

    @classmethod
    def from_article(cls, index: LoadedIndex, article: Article) -> ArticleOut:
        return cls(
            article_id=article.article_id,
            title=article.title,
            title_derived=article.title_derived,
            date=article.date,
            byline=article.byline,
            source=article.source,
            url=article.url,
            file=article.file,
            files=[article.file, *article.extra_files],
            text=article.text,
            paragraphs=[
                ParagraphOut(text=p.text, start=p.start, end=p.end) for p in article.paragraphs
            ],
            passages=[
                ArticlePassageOut.from_row(index, r)
                for r in index.article_passages(article.article_id)
            ],
        )


class WriteResult(BaseModel):
    added: int
    removed: int
    unchanged: int
    articles: int
    passages: int
    article_ids: list[str]


class EmbeddingOut(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(..., description="floats, or base64 of little-endian f4")

    @classmethod
    def from_vector(
        cls, index: int, vector: np.ndarray, encoding: Literal["float", "base64"]
    ) -> EmbeddingOut:
        if encoding == "base64":
            embedding = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
        else:
            embedding = vector.tolist()
        return cls(index=index, embedding=embedding)


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingOut]
    model: str
    usage: Usage
