"""TREC run files and qrels files, as Pyserini and trec_eval read and write them: the one
module that parses or writes either (``eval.datasets`` reads a BEIR folder's qrels through it).

Run file line: ``qid Q0 docid rank score tag`` (rank from 1, score with 6 decimals).
TREC qrels line: ``qid 0 docid rel``. BEIR qrels: ``query-id<TAB>corpus-id<TAB>score`` with
an optional header line; a row without tabs may be separated by other white space. Grades
are integers (``1.0`` is read as 1). A (query, document) pair listed twice is an error in
every format, as in trec_eval.

Note that trec_eval ignores the rank column and re-ranks by score (ties: doc id
descending). `read_run` keeps the file's rank order, which is what was written; to score a
file exactly as trec_eval would, evaluate ``{qid: dict(docs)}`` instead of the lists.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal

from eval.errors import RunFileError
from eval.metrics import Qrels, Ranked, Run, trec_order

QrelsFormat = Literal["trec", "beir"]
BEIR_QRELS_HEADER = ("query-id", "corpus-id", "score")


def _check_token(value: str, what: str) -> None:
    """TREC files are white-space separated, so an id or tag cannot contain white space."""
    if not value or any(ch.isspace() for ch in value):
        raise ValueError(f"{what} {value!r} is empty or contains white space")


def _ranked(docs: Ranked | Mapping[str, float]) -> list[tuple[str, float]]:
    return trec_order(docs) if isinstance(docs, Mapping) else list(docs)


def _write_lines(path: Path, lines: list[str]) -> None:
    """Write via a temporary sibling so a crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8", newline="\n") as f:
            f.writelines(lines)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_run(path: Path, run: Run, tag: str) -> None:
    """Write `run` as a TREC run file.

    Lists are written in their order; ``{doc_id: score}`` maps in trec_eval's order. Queries
    keep the run's order. A query with no documents writes no lines.
    """
    _check_token(tag, "run tag")
    lines: list[str] = []
    for qid, docs in run.items():
        _check_token(qid, "query id")
        ranked = _ranked(docs)
        seen: set[str] = set()
        for rank, (doc_id, score) in enumerate(ranked, 1):
            _check_token(doc_id, "document id")
            if doc_id in seen:
                raise ValueError(f"run for query {qid!r} lists document {doc_id!r} twice")
            seen.add(doc_id)
            if not math.isfinite(score):
                raise ValueError(f"score of {doc_id!r} for query {qid!r} is {score}")
            lines.append(f"{qid} Q0 {doc_id} {rank} {score:.6f} {tag}\n")
    _write_lines(path, lines)


def _read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 file (a BOM dropped), split on "\\n" only: ``str.splitlines()``
    would also break on rare Unicode separators inside ids."""
    path = Path(path)
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise RunFileError(f"file not found: {path} {what}")
    try:
        return path.read_text(encoding="utf-8-sig").split("\n")
    except UnicodeDecodeError as e:
        raise RunFileError(f"{path.name}: not valid UTF-8 ({e})") from None
    except OSError as e:
        raise RunFileError(f"cannot read {path}: {e.strerror}") from None


def read_run(path: Path) -> dict[str, list[tuple[str, float]]]:
    """Read a TREC run file: ``{qid: [(doc_id, score), ...]}`` in the file's rank order.

    Rows of a query are ordered by the rank column (file order among equal ranks). A
    document listed twice for one query is an error, as in trec_eval.
    """
    path = Path(path)
    rows: dict[str, list[tuple[int, int, str, float]]] = {}
    first_line: dict[tuple[str, str], int] = {}
    for lineno, line in enumerate(_read_lines(path), 1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path.name} line {lineno}"
        if len(fields) != 6:
            raise RunFileError(
                f"{where}: expected 6 fields (qid Q0 docid rank score tag), got {len(fields)}"
            )
        qid, _, doc_id, raw_rank, raw_score, _ = fields
        try:
            rank = int(raw_rank)
        except ValueError:
            raise RunFileError(f"{where}: rank {raw_rank!r} is not an integer") from None
        try:
            score = float(raw_score)
        except ValueError:
            raise RunFileError(f"{where}: score {raw_score!r} is not a number") from None
        if not math.isfinite(score):
            raise RunFileError(f"{where}: score {raw_score!r} is not a finite number")
        if (qid, doc_id) in first_line:
            raise RunFileError(
                f"{where}: document {doc_id!r} listed twice for query {qid!r} "
                f"(first on line {first_line[qid, doc_id]})"
            )
        first_line[qid, doc_id] = lineno
        rows.setdefault(qid, []).append((rank, lineno, doc_id, score))
    return {
        qid: [(doc_id, score) for _, _, doc_id, score in sorted(entries)]
        for qid, entries in rows.items()
    }


def write_qrels(path: Path, qrels: Qrels, fmt: QrelsFormat = "trec") -> None:
    """Write qrels as TREC (``qid 0 docid rel``) or BEIR tsv (with its header)."""
    if fmt not in ("trec", "beir"):
        raise ValueError(f"unknown qrels format {fmt!r}; use 'trec' or 'beir'")
    lines: list[str] = []
    if fmt == "beir":
        lines.append("\t".join(BEIR_QRELS_HEADER) + "\n")
    for qid, docs in qrels.items():
        for doc_id, rel in docs.items():
            if isinstance(rel, bool) or not isinstance(rel, int):
                raise ValueError(f"grade of {qid!r}/{doc_id!r} must be an int, got {rel!r}")
            if fmt == "trec":
                _check_token(qid, "query id")
                _check_token(doc_id, "document id")
                lines.append(f"{qid} 0 {doc_id} {rel}\n")
            else:
                if any(ch in "\t\r\n" for ch in qid + doc_id) or not qid or not doc_id:
                    raise ValueError(f"id {qid!r}/{doc_id!r} is empty or holds a tab or newline")
                lines.append(f"{qid}\t{doc_id}\t{rel}\n")
    _write_lines(path, lines)


def _parse_grade(value: str) -> int | None:
    """An integer grade; ``"1.0"`` is 1, ``"1.5"`` or ``"x"`` is None."""
    try:
        return int(value)
    except ValueError:
        pass
    try:
        f = float(value)
    except ValueError:
        return None
    return int(f) if f.is_integer() else None


def _qrels_rows(path: Path, fmt: QrelsFormat) -> Iterator[tuple[int, str, str, str, str]]:
    """``(line number, qid, doc_id, grade, grade column name)`` of each judgement line."""
    for lineno, line in enumerate(_read_lines(path), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        where = f"{path.name} line {lineno}"
        if fmt == "trec":
            fields = line.split()
            if len(fields) != 4:
                raise RunFileError(
                    f"{where}: expected 4 fields (qid 0 docid rel), got {len(fields)}"
                )
            yield lineno, fields[0], fields[2], fields[3], "relevance"
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            fields = line.split()
        fields = [f.strip() for f in fields]
        if lineno == 1 and tuple(f.lower() for f in fields) == BEIR_QRELS_HEADER:
            continue
        if len(fields) != 3 or not fields[0] or not fields[1]:
            raise RunFileError(
                f"{where}: malformed row {line.strip()!r}; expected query-id, corpus-id, score"
            )
        yield lineno, fields[0], fields[1], fields[2], "score"


def _read_qrels(path: Path, fmt: QrelsFormat) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    first_line: dict[tuple[str, str], int] = {}
    for lineno, qid, doc_id, raw_grade, column in _qrels_rows(path, fmt):
        where = f"{path.name} line {lineno}"
        grade = _parse_grade(raw_grade)
        if grade is None:
            raise RunFileError(f"{where}: {column} {raw_grade!r} is not an integer")
        if (qid, doc_id) in first_line:
            raise RunFileError(
                f"{where}: duplicate pair {qid} / {doc_id} (first on line {first_line[qid, doc_id]})"
            )
        first_line[qid, doc_id] = lineno
        qrels.setdefault(qid, {})[doc_id] = grade
    return qrels


def read_qrels(
    path: Path, fmt: QrelsFormat | Literal["auto"] = "auto"
) -> dict[str, dict[str, int]]:
    """Read TREC or BEIR qrels (see the module doc): ``{qid: {doc_id: grade}}``.

    "auto" picks BEIR when the first line is its header or has tabs.
    """
    path = Path(path)
    if fmt == "auto":
        first = next((line for line in _read_lines(path) if line.strip()), "")
        fields = tuple(f.strip().lower() for f in first.split("\t"))
        fmt = "beir" if fields == BEIR_QRELS_HEADER or len(fields) == 3 else "trec"
    if fmt not in ("trec", "beir"):
        raise ValueError(f"unknown qrels format {fmt!r}; use 'trec', 'beir' or 'auto'")
    return _read_qrels(path, fmt)
