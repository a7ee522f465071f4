"""Gold sets: BEIR folders (corpus + queries + qrels) and question/answer-string files.

The qrels file itself is parsed by ``eval.runfile``; this module finds it in the folder and
checks its ids against the corpus and the queries.

Every problem with the input raises :class:`DatasetError` with a message a user can act on
(which file, which line, what is wrong), never a bare ``KeyError`` or ``JSONDecodeError``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from eval.errors import DatasetError
from eval.runfile import read_qrels

_QRELS_CANDIDATES = ("qrels.tsv", "qrels/test.tsv")
UNANSWERABLE = "unanswerable"
_MAX_EXAMPLES = 5


@dataclass(frozen=True)
class CorpusDoc:
    doc_id: str
    title: str
    text: str


@dataclass
class BeirDataset:
    name: str
    corpus: dict[str, CorpusDoc]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    corpus_sha256: str

    @property
    def judged_query_ids(self) -> list[str]:
        """Queries with at least one relevant (score >= 1) document, in queries.jsonl order.

        Only these can be scored; the metrics skip the others.
        """
        return [
            qid for qid in self.queries if any(rel >= 1 for rel in self.qrels.get(qid, {}).values())
        ]


@dataclass(frozen=True)
class AnswerQuestion:
    id: str
    question: str
    answers: list[str]  # empty: the corpus does not answer it
    kind: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


# --------------------------------------------------------------------------- helpers


def _iter_jsonl(path: Path, hasher: Any = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; optionally feed raw bytes to hasher."""
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            if hasher is not None:
                hasher.update(raw)
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DatasetError(f"{path.name} line {lineno}: not valid UTF-8 ({e})") from None
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DatasetError(f"{path.name} line {lineno}: bad JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise DatasetError(
                    f"{path.name} line {lineno}: expected a JSON object, got {type(obj).__name__}"
                )
            yield lineno, obj


def _id_field(obj: dict[str, Any], key: str, where: str) -> str:
    """An id may be a JSON string or integer (some exports write numbers); it becomes a str."""
    if key not in obj:
        raise DatasetError(f"{where}: missing `{key}`")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DatasetError(f"{where}: `{key}` must be a string, got {type(value).__name__}")
    value = str(value)
    if not value.strip():
        raise DatasetError(f"{where}: `{key}` is empty")
    return value


def _str_field(obj: dict[str, Any], key: str, where: str, *, required: bool = True) -> str:
    if key not in obj:
        if required:
            raise DatasetError(f"{where}: missing `{key}`")
        return ""
    value = obj[key]
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise DatasetError(f"{where}: `{key}` must be a string, got {type(value).__name__}")
    return value


def _examples(ids: list[str]) -> str:
    shown = ", ".join(ids[:_MAX_EXAMPLES])
    more = f" and {len(ids) - _MAX_EXAMPLES} more" if len(ids) > _MAX_EXAMPLES else ""
    return f"{shown}{more}"


def _require_file(path: Path, what: str, folder: Path) -> None:
    if not path.is_file():
        raise DatasetError(f"{what} not found: {path.relative_to(folder)} is missing in {folder}")


# --------------------------------------------------------------------------- BEIR


def _load_corpus(path: Path) -> tuple[dict[str, CorpusDoc], str]:
    hasher = hashlib.sha256()
    corpus: dict[str, CorpusDoc] = {}
    first_line: dict[str, int] = {}
    for lineno, obj in _iter_jsonl(path, hasher):
        where = f"{path.name} line {lineno}"
        doc_id = _id_field(obj, "_id", where)
        text = _str_field(obj, "text", where)
        title = _str_field(obj, "title", where, required=False)
        if doc_id in corpus:
            raise DatasetError(
                f"{where}: duplicate _id {doc_id!r} (first on line {first_line[doc_id]})"
            )
        corpus[doc_id] = CorpusDoc(doc_id=doc_id, title=title, text=text)
        first_line[doc_id] = lineno
    if not corpus:
        raise DatasetError(f"{path.name} is empty: no documents in {path}")
    return corpus, hasher.hexdigest()


def _load_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for lineno, obj in _iter_jsonl(path):
        where = f"{path.name} line {lineno}"
        qid = _id_field(obj, "_id", where)
        text = _str_field(obj, "text", where)
        if not text.strip():
            raise DatasetError(f"{where}: query {qid!r} has empty `text`")
        if qid in queries:
            raise DatasetError(f"{where}: duplicate _id {qid!r} (first on line {first_line[qid]})")
        queries[qid] = text
        first_line[qid] = lineno
    if not queries:
        raise DatasetError(f"{path.name} is empty: no queries in {path}")
    return queries


def _check_qrels_ids(
    qrels: dict[str, dict[str, int]],
    queries: dict[str, str],
    corpus: dict[str, CorpusDoc],
    qrels_name: str,
) -> None:
    unknown_q = [qid for qid in qrels if qid not in queries]
    if unknown_q:
        raise DatasetError(
            f"{qrels_name} names {len(unknown_q)} query id(s) not in queries.jsonl: "
            f"{_examples(unknown_q)}"
        )
    seen: set[str] = set()
    unknown_d: list[str] = []
    for docs in qrels.values():
        for doc_id in docs:
            if doc_id not in corpus and doc_id not in seen:
                seen.add(doc_id)
                unknown_d.append(doc_id)
    if unknown_d:
        raise DatasetError(
            f"{qrels_name} names {len(unknown_d)} corpus id(s) not in corpus.jsonl: "
            f"{_examples(unknown_d)}"
        )


def find_qrels(folder: Path) -> Path | None:
    """The qrels file of a BEIR folder: `qrels.tsv`, else `qrels/test.tsv` (BEIR's own layout)."""
    for candidate in _QRELS_CANDIDATES:
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def load_beir(folder: Path) -> BeirDataset:
    """Load a BEIR folder; every qrels id must exist in the corpus and the queries."""
    folder = Path(folder)
    if not folder.exists():
        raise DatasetError(f"BEIR dataset not found: {folder} does not exist")
    if not folder.is_dir():
        raise DatasetError(f"BEIR dataset not found: {folder} is not a folder")
    _require_file(folder / "corpus.jsonl", "BEIR dataset", folder)
    _require_file(folder / "queries.jsonl", "BEIR dataset", folder)
    qrels_path = find_qrels(folder)
    if qrels_path is None:
        raise DatasetError(
            f"BEIR dataset not found: qrels.tsv (or qrels/test.tsv) is missing in {folder}"
        )
    corpus, sha = _load_corpus(folder / "corpus.jsonl")
    queries = _load_queries(folder / "queries.jsonl")
    qrels = read_qrels(qrels_path, "beir")
    qrels_name = str(qrels_path.relative_to(folder))
    if not qrels:
        raise DatasetError(f"{qrels_name} is empty: no judgements in {qrels_path}")
    _check_qrels_ids(qrels, queries, corpus, qrels_name)
    return BeirDataset(
        name=folder.resolve().name,
        corpus=corpus,
        queries=queries,
        qrels=qrels,
        corpus_sha256=sha,
    )


# --------------------------------------------------------------------------- answer sets


def _answers_field(obj: dict[str, Any], where: str) -> list[str]:
    """The gold strings; ``[]`` marks a question the corpus cannot answer (the right
    response is no answer)."""
    if "answers" not in obj:
        raise DatasetError(f"{where}: missing `answers`")
    answers = obj["answers"]
    if not isinstance(answers, list):
        raise DatasetError(f"{where}: `answers` must be a list of strings ([] = unanswerable)")
    for a in answers:
        if not isinstance(a, str) or not a.strip():
            raise DatasetError(f"{where}: `answers` must hold non-empty strings, got {a!r}")
    return list(answers)


def load_answer_set(path: Path) -> list[AnswerQuestion]:
    """Load a JSONL file of {id, question, answers[, kind, ...]}; unknown keys go to `extra`.

    ``"answers": []`` is an unanswerable question (kind ``unanswerable`` unless it has one)."""
    path = Path(path)
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise DatasetError(f"answer set not found: {path} {what}")
    items: list[AnswerQuestion] = []
    first_line: dict[str, int] = {}
    for lineno, obj in _iter_jsonl(path):
        where = f"{path.name} line {lineno}"
        qid = _id_field(obj, "id", where)
        question = _str_field(obj, "question", where)
        if not question.strip():
            raise DatasetError(f"{where}: `question` is empty")
        answers = _answers_field(obj, where)
        kind = obj.get("kind")
        if kind is not None and not isinstance(kind, str):
            raise DatasetError(f"{where}: `kind` must be a string, got {type(kind).__name__}")
        if not answers and kind is None:
            kind = UNANSWERABLE
        if qid in first_line:
            raise DatasetError(f"{where}: duplicate id {qid!r} (first on line {first_line[qid]})")
        first_line[qid] = lineno
        extra = {k: v for k, v in obj.items() if k not in {"id", "question", "answers", "kind"}}
        items.append(AnswerQuestion(qid, question, answers, kind, extra))
    if not items:
        raise DatasetError(f"{path.name} is empty: no questions in {path}")
    return items


def load_squad(path: Path) -> list[AnswerQuestion]:
    """A SQuAD-style ``.json`` file (CMRC 2018's ``raw/``) as an answer set: each question's
    gold strings are its answer spans; ``extra["doc"]`` is the paragraph id (the BEIR corpus
    ``_id`` of the same set)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        articles = data["data"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path.name}: not a SQuAD-style file with `data` ({exc})") from None
    items: list[AnswerQuestion] = []
    for article in articles:
        for para in article.get("paragraphs", []):
            for qa in para.get("qas", []):
                spans = list(dict.fromkeys(a["text"] for a in qa.get("answers", []) if a["text"]))
                kind = "squad" if spans else UNANSWERABLE
                extra = {"doc": para.get("id")}
                items.append(AnswerQuestion(str(qa["id"]), qa["question"], spans, kind, extra))
    if not items:
        raise DatasetError(f"{path.name} is empty: no questions in {path}")
    return items


def load_questions(path: Path) -> list[AnswerQuestion]:
    """An answer set in either format: ``.jsonl`` lines or a SQuAD ``.json`` file."""
    return load_squad(path) if detect(path) == "squad" else load_answer_set(path)


def detect(path: Path) -> Literal["beir", "answers", "squad"]:
    """A folder is a BEIR set; a `.jsonl` file is an answer set; a `.json` file is SQuAD."""
    path = Path(path)
    if path.is_dir():
        return "beir"
    if path.is_file() and path.suffix.lower() == ".jsonl":
        return "answers"
    if path.is_file() and path.suffix.lower() == ".json":
        return "squad"
    if not path.exists():
        raise DatasetError(f"dataset not found: {path} does not exist")
    raise DatasetError(
        f"unknown dataset kind: {path} is neither a BEIR folder, a .jsonl answer set "
        "nor a SQuAD .json file"
    )
