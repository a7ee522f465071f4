"""eval.datasets loaders (real CMRC 2018 dev set and broken sets) and qrels files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from eval.datasets import (
    AnswerQuestion,
    DatasetError,
    detect,
    load_answer_set,
    load_beir,
    load_questions,
)
from eval.runfile import RunFileError, read_qrels, write_qrels
from tests.conftest import SHARED
from tests.helpers.ci import require_shared

CMRC = SHARED / "eval-data" / "cmrc2018_dev"


def _jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(
            (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows
        ),
        encoding="utf-8",
    )
    return path


def _beir(
    folder: Path,
    corpus: list | None = None,
    queries: list | None = None,
    qrels: str | None = None,
    qrels_name: str = "qrels.tsv",
) -> Path:
    _jsonl(
        folder / "corpus.jsonl",
        corpus
        if corpus is not None
        else [
            {"_id": "d1", "title": "标题一", "text": "北京 今天 下雨。"},
            {"_id": "d2", "title": "标题二", "text": "上海晴天。"},
            {"_id": "d3", "text": "没有标题的文档。"},
        ],
    )
    _jsonl(
        folder / "queries.jsonl",
        queries
        if queries is not None
        else [{"_id": "q1", "text": "北京天气？"}, {"_id": "q2", "text": "上海天气？"}],
    )
    path = folder / qrels_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        qrels
        if qrels is not None
        else "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\nq2\td3\t0\n",
        encoding="utf-8",
    )
    return folder


# --------------------------------------------------------------------------- real data


def test_load_real_cmrc2018_dev():
    ds = load_beir(require_shared(CMRC))
    assert ds.name == "cmrc2018_dev"
    assert len(ds.corpus) == 848
    assert len(ds.queries) == 3219
    assert sum(len(d) for d in ds.qrels.values()) == 3219
    assert len(ds.judged_query_ids) == 3219
    assert ds.corpus_sha256 == hashlib.sha256((CMRC / "corpus.jsonl").read_bytes()).hexdigest()
    doc = ds.corpus["DEV_0"]
    assert doc.doc_id == "DEV_0" and doc.title == "战国无双3"
    assert ds.queries["DEV_0_QUERY_0"] == "《战国无双3》是由哪两个公司合作开发的？"
    assert ds.qrels["DEV_0_QUERY_0"] == {"DEV_0": 1}
    assert detect(CMRC) == "beir"


# --------------------------------------------------------------------------- BEIR


def test_load_small_beir(tmp_path: Path):
    ds = load_beir(_beir(tmp_path / "mini"))
    assert ds.name == "mini"
    assert ds.corpus["d3"].title == ""
    assert ds.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2, "d3": 0}}
    assert ds.judged_query_ids == ["q1", "q2"]


def test_qrels_in_beir_subfolder(tmp_path: Path):
    ds = load_beir(_beir(tmp_path / "b", qrels_name="qrels/test.tsv"))
    assert ds.qrels["q1"] == {"d1": 1}


def test_qrels_without_header_and_with_spaces(tmp_path: Path):
    ds = load_beir(_beir(tmp_path / "b", qrels="q1 d1 1\nq2\td2\t1.0\n"))
    assert ds.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1}}


def _error(folder: Path) -> str:
    with pytest.raises(DatasetError) as info:
        load_beir(folder)
    return str(info.value)


def test_missing_folder(tmp_path: Path):
    assert "does not exist" in _error(tmp_path / "nope")


@pytest.mark.parametrize("name", ["corpus.jsonl", "queries.jsonl", "qrels.tsv"])
def test_missing_file(tmp_path: Path, name: str):
    folder = _beir(tmp_path / "b")
    (folder / name).unlink()
    message = _error(folder)
    assert f"not found: {name}" in message
    assert str(folder) in message


def test_bad_json_line(tmp_path: Path):
    folder = _beir(tmp_path / "b", corpus=[{"_id": "d1", "text": "x"}, '{"_id": "d2", "text": '])
    assert "corpus.jsonl line 2: bad JSON" in _error(folder)


def test_json_line_not_an_object(tmp_path: Path):
    folder = _beir(tmp_path / "b", queries=[{"_id": "q1", "text": "x"}, "[1, 2]"])
    assert "queries.jsonl line 2: expected a JSON object" in _error(folder)


@pytest.mark.parametrize(
    ("row", "missing"), [({"text": "x"}, "`_id`"), ({"_id": "d9", "title": "t"}, "`text`")]
)
def test_corpus_line_missing_field(tmp_path: Path, row: dict, missing: str):
    folder = _beir(tmp_path / "b", corpus=[{"_id": "d1", "text": "x"}, "", row])
    message = _error(folder)
    assert "corpus.jsonl line 3" in message and f"missing {missing}" in message


def test_query_line_missing_text(tmp_path: Path):
    folder = _beir(tmp_path / "b", queries=[{"_id": "q1"}])
    assert "queries.jsonl line 1: missing `text`" in _error(folder)


def test_wrong_field_type(tmp_path: Path):
    folder = _beir(tmp_path / "b", corpus=[{"_id": "d1", "text": ["x"]}])
    assert "corpus.jsonl line 1: `text` must be a string" in _error(folder)


def test_duplicate_corpus_id(tmp_path: Path):
    rows = [{"_id": "d1", "text": "a"}, {"_id": "d2", "text": "b"}, {"_id": "d1", "text": "c"}]
    message = _error(_beir(tmp_path / "b", corpus=rows))
    assert "line 3: duplicate _id 'd1' (first on line 1)" in message


@pytest.mark.parametrize("name", ["corpus", "queries"])
def test_empty_corpus_or_queries(tmp_path: Path, name: str):
    folder = _beir(tmp_path / "b", **{name: ["", "  "]})
    assert f"{name}.jsonl is empty" in _error(folder)


def test_empty_qrels(tmp_path: Path):
    folder = _beir(tmp_path / "b", qrels="query-id\tcorpus-id\tscore\n")
    assert "qrels.tsv is empty" in _error(folder)


def test_qrels_unknown_query_ids(tmp_path: Path):
    rows = "".join(f"x{i}\td1\t1\n" for i in range(7))
    message = _error(_beir(tmp_path / "b", qrels="q1\td1\t1\n" + rows))
    assert "7 query id(s) not in queries.jsonl" in message
    assert "x0, x1, x2, x3, x4 and 2 more" in message


def test_qrels_unknown_corpus_ids(tmp_path: Path):
    message = _error(_beir(tmp_path / "b", qrels="q1\td1\t1\nq1\tghost\t1\nq2\tghost\t1\n"))
    assert "1 corpus id(s) not in corpus.jsonl: ghost" in message


@pytest.mark.parametrize(
    ("qrels", "message"),
    [
        ("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\n", "qrels.tsv line 3: malformed row"),
        ("q1\td1\tyes\n", "qrels.tsv line 1: score 'yes' is not an integer"),
        ("q1\td1\t1\nq1\td1\t2\n", "line 2: duplicate pair q1 / d1"),
    ],
)
def test_qrels_malformed_rows(tmp_path: Path, qrels: str, message: str):
    assert message in _error(_beir(tmp_path / "b", qrels=qrels))


def test_corpus_sha256_is_of_file_bytes(tmp_path: Path):
    folder = _beir(tmp_path / "b")
    expected = hashlib.sha256((folder / "corpus.jsonl").read_bytes()).hexdigest()
    assert load_beir(folder).corpus_sha256 == expected


# --------------------------------------------------------------------------- answer sets


def test_load_answer_set(tmp_path: Path):
    path = _jsonl(
        tmp_path / "qa.jsonl",
        [
            {
                "id": "a1",
                "question": "谁？",
                "answers": ["张三", "张 三"],
                "kind": "person",
                "src": 3,
            },
            {"id": 2, "question": "哪里？", "answers": ["北京"]},
        ],
    )
    items = load_answer_set(path)
    assert items[0] == AnswerQuestion("a1", "谁？", ["张三", "张 三"], "person", {"src": 3})
    assert items[1].id == "2" and items[1].kind is None and items[1].extra == {}
    assert detect(path) == "answers"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"question": "q", "answers": ["a"]}], "qa.jsonl line 1: missing `id`"),
        ([{"id": "1", "answers": ["a"]}], "line 1: missing `question`"),
        ([{"id": "1", "question": "q"}], "line 1: missing `answers`"),
        ([{"id": "1", "question": "q", "answers": "a"}], "must be a list"),
        ([{"id": "1", "question": "q", "answers": ["a", 3]}], "non-empty strings"),
        ([{"id": "1", "question": "q", "answers": ["a"], "kind": 1}], "`kind` must be a string"),
        (
            [{"id": "1", "question": "q", "answers": ["a"]}, "", "{oops"],
            "qa.jsonl line 3: bad JSON",
        ),
        (
            [{"id": "1", "question": "q", "answers": ["a"]}] * 2,
            "line 2: duplicate id '1' (first on line 1)",
        ),
        ([], "qa.jsonl is empty"),
    ],
)
def test_answer_set_errors(tmp_path: Path, rows: list, message: str):
    path = _jsonl(tmp_path / "qa.jsonl", rows)
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_answer_set(path)


def test_empty_answers_mark_an_unanswerable_question(tmp_path: Path):
    path = _jsonl(
        tmp_path / "qa.jsonl",
        [
            {"id": "1", "question": "q", "answers": []},
            {"id": "2", "question": "q", "answers": [], "kind": "trap"},
            {"id": "3", "question": "q", "answers": ["a"]},
        ],
    )
    first, second, third = load_answer_set(path)
    assert not first.answerable and first.kind == "unanswerable"
    assert second.kind == "trap" and third.answerable and third.kind is None


def test_squad_file_as_answer_set(tmp_path: Path):
    path = tmp_path / "dev.json"
    para = {"id": "P1", "context": "北京是首都。", "qas": []}
    para["qas"] = [
        {"id": "Q1", "question": "首都?", "answers": [{"text": "北京", "answer_start": 0}] * 2},
        {"id": "Q2", "question": "无?", "answers": []},
    ]
    path.write_text(json.dumps({"data": [{"paragraphs": [para]}]}), encoding="utf-8")
    assert detect(path) == "squad"
    q1, q2 = load_questions(path)
    assert (q1.id, q1.answers, q1.extra["doc"]) == ("Q1", ["北京"], "P1")
    assert not q2.answerable


def test_answer_set_missing(tmp_path: Path):
    with pytest.raises(DatasetError, match="answer set not found"):
        load_answer_set(tmp_path / "none.jsonl")


def test_detect(tmp_path: Path):
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(DatasetError, match="neither"):
        detect(tmp_path / "x.txt")
    with pytest.raises(DatasetError, match="does not exist"):
        detect(tmp_path / "nope.jsonl")
    assert detect(tmp_path) == "beir"


# --------------------------------------------------------------------------- qrels files


QRELS = {"q1": {"d1": 1, "文档": 2}, "q2": {"d3": 0, "d4": -1}}


@pytest.mark.parametrize("fmt", ["trec", "beir"])
def test_qrels_round_trip(tmp_path: Path, fmt: str):
    path = tmp_path / f"qrels.{fmt}"
    write_qrels(path, QRELS, fmt)
    assert read_qrels(path, fmt) == QRELS
    assert read_qrels(path) == QRELS  # auto-detected


def test_qrels_file_formats(tmp_path: Path):
    write_qrels(tmp_path / "t", {"q": {"d": 1}}, "trec")
    write_qrels(tmp_path / "b", {"q": {"d": 1}}, "beir")
    assert (tmp_path / "t").read_text() == "q 0 d 1\n"
    assert (tmp_path / "b").read_text() == "query-id\tcorpus-id\tscore\nq\td\t1\n"


def test_read_trec_qrels_errors(tmp_path: Path):
    path = tmp_path / "qrels.txt"
    path.write_text("q 0 d 1\nq 0 e\n")
    with pytest.raises(RunFileError, match="qrels.txt line 2: expected 4 fields"):
        read_qrels(path, "trec")
    path.write_text("q 0 d 1\nq 0 e x\n")
    with pytest.raises(RunFileError, match="line 2: relevance 'x' is not an integer"):
        read_qrels(path, "trec")
    with pytest.raises(DatasetError, match="does not exist"):
        read_qrels(tmp_path / "none", "beir")


def test_qrels_grades_bom_and_crlf_read_alike_in_both_formats(tmp_path: Path):
    trec = tmp_path / "qrels.txt"
    trec.write_bytes("\ufeffq 0 d 1.0\r\nq 0 文档 2\r\n".encode())
    beir = tmp_path / "qrels.tsv"
    beir.write_bytes("\ufeffquery-id\tcorpus-id\tscore\r\nq\td\t1.0\r\nq\t文档\t2\r\n".encode())
    assert read_qrels(trec) == read_qrels(beir) == {"q": {"d": 1, "文档": 2}}


@pytest.mark.parametrize("fmt", ["trec", "beir"])
def test_qrels_errors_name_file_and_line_in_both_formats(tmp_path: Path, fmt: str):
    path = tmp_path / "qrels"
    rows = ["q 0 d 1", "q 0 e 0.5"] if fmt == "trec" else ["q\td\t1", "q\te\t0.5"]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(RunFileError, match="qrels line 2: .* '0.5' is not an integer"):
        read_qrels(path, fmt)
    path.write_text("\n".join(rows[:1] * 2) + "\n")
    with pytest.raises(RunFileError, match=r"line 2: duplicate pair q / d \(first on line 1\)"):
        read_qrels(path, fmt)
