"""Articles: read one (GET), and the admin writes (POST, DELETE)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import APIRouter, HTTPException

from indexer.manifest import IncompatibleIndex
from qa_service import schemas
from qa_service.api.deps import AdminDep, ArticlesBody, EngineDep, StateDep

router = APIRouter(prefix="/articles", tags=["articles"])


@router.get("/{article_id}", response_model=schemas.ArticleOut)
def get_article(article_id: str, engine: EngineDep) -> schemas.ArticleOut:
    article = engine.index.articles.get(article_id)
    if article is None:
        raise HTTPException(404, f"no article with id {article_id!r}")
    return schemas.ArticleOut.from_article(engine.index, article)


@contextmanager
def _write_errors() -> Iterator[None]:
    """An unknown id is a 404; a write the index's settings forbid (this service runs with
    other chunking than the index was built with) is a 409 that says which setting."""
    try:
        yield
    except KeyError as exc:
        raise HTTPException(404, exc.args[0]) from None
    except IncompatibleIndex as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("", response_model=schemas.WriteResult, dependencies=[AdminDep])
def add_articles(body: ArticlesBody, state: StateDep) -> schemas.WriteResult:
    items = body.articles if isinstance(body, schemas.ArticlesIn) else [body]
    with _write_errors():
        return state.add_articles(items)


@router.delete("/{article_id}", response_model=schemas.WriteResult, dependencies=[AdminDep])
def delete_article(article_id: str, state: StateDep) -> schemas.WriteResult:
    with _write_errors():
        return state.remove_article(article_id)
