"""Reliability: bounded concurrent load with admin writes in between, fuzzing the HTTP API from
its OpenAPI schema, damaged index files, and the body-size and time limits.

Real model, real FAISS; every test that writes works on a private copy of the seed index."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import hypothesis
import pytest
from fastapi.testclient import TestClient

from tests.conftest import REPO
from tests.helpers.server import free_port, serve
from tests.helpers.service import AUTH, copy_index, make_app


def started(app):
    """Load the model and index (the app's lifespan) before serving it from a thread."""
    app.state.service.start()
    return app


# ------------------------------------------------------- load with admin writes


def article(i: int) -> dict:
    """Distinct texts: articles with the same text collapse into one by design."""
    return {
        "id": f"reliability-{i:02d}",
        "title": f"可靠性测试站第{i}号启用新型监测设备",
        "text": f"本报讯 11月{i + 1}日,嘉陵江畔的第{i}号可靠性测试站启用一台新型监测设备,代号“稳{i}号”。\n"
        f"该设备可连续运行{i + 3}小时,每{i + 2}分钟记录一次水位,数据实时上传到{i + 10}号机房。",
        "date": f"2026-11-{i + 1:02d}",
        "source": "测试日报",
    }


def _read_requests(engine, n: int) -> list[tuple[str, dict]]:
    from eval.datasets import load_answer_set

    questions = [q.question for q in load_answer_set(REPO / "eval" / "data" / "seed_qa.jsonl")]
    passage_ids = [
        p.passage_id for p in engine.index.passages[:: max(1, len(engine.index.passages) // 20)]
    ]
    article_ids = list(engine.index.articles)[:10]
    out = []
    for i in range(n):
        q = questions[i % len(questions)]
        kind = i % 6
        if kind in (0, 1):
            out.append(("/ask", {"question": q, "top_k": 5}))
        elif kind == 2:
            out.append(("/search", {"query": q, "top_k": 10}))
        elif kind == 3:
            out.append(("/search", {"query": f"第{i % 10}号可靠性测试站 监测设备", "top_k": 5}))
        elif kind == 4:
            out.append(("/similar", {"passage_id": passage_ids[i % len(passage_ids)], "top_k": 5}))
        else:
            body = {"article_id": article_ids[i % len(article_ids)], "level": "article"}
            out.append(("/similar", body if i % 12 else {"text": q, "top_k": 5}))
    return out


@pytest.mark.slow
def test_bounded_load_with_admin_writes_then_restart(settings, index_copy, embedder):
    app = started(make_app(settings, index_copy, embedder))
    engine = app.state.service.engine
    before = len(engine.index.articles)
    work: queue.Queue = queue.Queue()
    for item in _read_requests(engine, 300):
        work.put(item)
    statuses: list[tuple[str, int]] = []
    writes: list[tuple[str, str, int, str]] = []
    lock = threading.Lock()
    go = threading.Event()
    deleted = {"reliability-01", "reliability-04", "reliability-07"}

    with serve(app) as base:

        def reader() -> None:
            go.wait()
            with httpx.Client(base_url=base, timeout=120) as c:
                while True:
                    try:
                        path, body = work.get_nowait()
                    except queue.Empty:
                        return
                    r = c.post(path, json=body)
                    with lock:
                        statuses.append((path, r.status_code))

        def writer() -> None:
            with httpx.Client(base_url=base, timeout=120, headers=AUTH) as c:
                go.set()
                for i in range(10):
                    r = c.post("/articles", json=article(i))
                    writes.append(("add", article(i)["id"], r.status_code, r.text[:200]))
                    if i in (2, 5, 8):  # delete one added a moment ago
                        gone = f"reliability-{i - 1:02d}"
                        r = c.delete(f"/articles/{gone}")
                        writes.append(("delete", gone, r.status_code, r.text[:200]))

        threads = [threading.Thread(target=reader) for _ in range(8)]
        threads.append(threading.Thread(target=writer))
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert len(statuses) == 300
        server_errors = [s for s in statuses if s[1] >= 500]
        assert not server_errors, server_errors[:10]
        assert all(code == 200 for _, code in statuses), sorted(set(statuses))
        assert [w for w in writes if w[2] != 200] == []
        assert len(writes) == 13
        with httpx.Client(base_url=base) as c:
            check_holdings(c, before, deleted)

    # the same index path read again by a fresh service: what was written is on disk
    with TestClient(make_app(settings, index_copy, embedder)) as c:
        check_holdings(c, before, deleted)
        top = c.post("/search", json={"query": "第5号可靠性测试站 稳5号", "top_k": 3}).json()
        assert top["results"][0]["article_id"] == "reliability-05"
    versions = [p for p in index_copy.parent.iterdir() if p.name.startswith(".index.v")]
    assert len(versions) <= 2, versions  # stale versions were cleaned up


def check_holdings(client, before: int, deleted: set[str]) -> None:
    stats = client.get("/stats").json()
    assert stats["articles"] == before + 10 - len(deleted)
    for i in range(10):
        aid = article(i)["id"]
        r = client.get(f"/articles/{aid}")
        if aid in deleted:
            assert r.status_code == 404, aid
        else:
            assert r.status_code == 200, aid
            assert r.json()["title"] == article(i)["title"]


# ------------------------------------------------------------ schema fuzzing


def _api_schema():
    """The service's own OpenAPI schema (building the app loads nothing)."""
    import schemathesis

    from indexer.settings import get_settings
    from qa_service.app import create_app

    app = create_app(settings=get_settings(), index_path=Path("not-loaded"))
    return schemathesis.openapi.from_dict(app.openapi())


api_schema = _api_schema()


@pytest.fixture(scope="module")
def fuzz_base(settings, seed_index, embedder, tmp_path_factory):
    """The real service over real HTTP, on a private copy of the seed index (fuzzed writes
    land there)."""
    target = copy_index(seed_index, tmp_path_factory.mktemp("fuzz") / "idx")
    with serve(started(make_app(settings, target, embedder))) as base:
        yield base


@pytest.mark.slow
@api_schema.parametrize()
@hypothesis.settings(
    max_examples=30,
    deadline=None,
    database=None,  # no .hypothesis/ folder in the repository
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_fuzz_api_has_no_server_errors(case, fuzz_base):
    """Every operation, from its OpenAPI schema; admin writes carry a valid token."""
    from schemathesis.checks import not_a_server_error

    headers = None
    if case.operation.path.startswith("/articles") and case.method.upper() != "GET":
        headers = dict(AUTH)
        if case.headers:
            case.headers = {k: v for k, v in case.headers.items() if k.lower() != "authorization"}
    case.call_and_validate(
        base_url=fuzz_base, headers=headers, checks=[not_a_server_error], timeout=120
    )


# --------------------------------------------------------------- damaged index


def _version(index_path: Path) -> Path:
    return index_path.resolve()


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(b ^ 0xFF for b in data[mid : mid + 64])
    path.write_bytes(bytes(data))


def _unlisted(version: Path) -> None:
    """The manifest no longer lists its components, so the files' own readers must refuse."""
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["components"] = {}
    (version / "manifest.json").write_text(json.dumps(manifest))


def _bm25_file(version: Path) -> Path:
    return max(
        (p for p in (version / "bm25").iterdir() if p.is_file()), key=lambda p: p.stat().st_size
    )


DAMAGE = {
    "faiss truncated": lambda v: _truncate(v / "faiss.index"),
    "vectors truncated": lambda v: _truncate(v / "vectors.npy"),
    "sqlite bytes flipped": lambda v: _flip(v / "index.sqlite"),
    "bm25 truncated": lambda v: _truncate(_bm25_file(v)),
    "manifest garbage": lambda v: (v / "manifest.json").write_text("{not json"),
    "manifest missing": lambda v: (v / "manifest.json").unlink(),
    "manifest empty": lambda v: (v / "manifest.json").write_text(""),
    "faiss emptied, unlisted": lambda v: (_unlisted(v), _truncate(v / "faiss.index", 0.0)),
    "faiss truncated, unlisted": lambda v: (_unlisted(v), _truncate(v / "faiss.index")),
    "vectors truncated, unlisted": lambda v: (_unlisted(v), _truncate(v / "vectors.npy")),
    "sqlite truncated, unlisted": lambda v: (_unlisted(v), _truncate(v / "index.sqlite")),
    "bm25 truncated, unlisted": lambda v: (_unlisted(v), _truncate(_bm25_file(v), 0.3)),
    "version folder gone": lambda v: shutil.rmtree(v),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_index_is_refused_at_load(damage, settings, index_copy, embedder):
    from indexer.store import IndexStoreError
    from qa_service.state import ServiceState

    DAMAGE[damage](_version(index_copy))
    state = ServiceState(settings, index_copy, embedder=embedder)
    with pytest.raises(IndexStoreError) as info:
        state.start()
    message = str(info.value)
    assert "Rebuild" in message or "Build one" in message, message
    assert state.engine is None and state.load_error == message


def test_damaged_index_app_never_serves_a_request(settings, index_copy, embedder):
    """The app refuses to start (lifespan) rather than answer requests from a broken index."""
    from indexer.store import IndexStoreError

    _truncate(_version(index_copy) / "vectors.npy")
    with pytest.raises(IndexStoreError), TestClient(make_app(settings, index_copy, embedder)):
        pass


@pytest.mark.slow
def test_cli_serve_refuses_a_damaged_index(index_copy):
    _truncate(_version(index_copy) / "faiss.index")
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "qa_service", "serve", "--index", str(index_copy)]
    proc = subprocess.run(
        [*cmd, "--port", str(free_port())],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert "error:" in proc.stderr and "faiss.index" in proc.stderr, proc.stderr[-2000:]


# ------------------------------------------------------- body size, time limit


def test_body_over_the_configured_limit_is_413(settings, seed_index, embedder):
    app = make_app(settings, seed_index, embedder, max_body_bytes=1000)
    with TestClient(app) as c:
        small = c.post("/search", json={"query": "北碚", "top_k": 3})
        assert small.status_code == 200
        big = c.post("/search", json={"query": "北碚" * 400})
        assert big.status_code == 413 and "1000 bytes" in big.json()["detail"]

        def chunks():  # no Content-Length: the limit holds while reading
            yield b'{"query": "'
            for _ in range(20):
                yield "北碚".encode() * 20
            yield b'"}'

        chunked = c.post("/search", content=chunks(), headers={"Content-Type": "application/json"})
        assert chunked.status_code == 413, chunked.text
        assert chunked.json()["detail"] == "request body over 1000 bytes"


@pytest.mark.slow
def test_request_over_the_configured_time_is_504(settings, seed_index, embedder):
    app = make_app(settings, seed_index, embedder, request_timeout_s=0.001)
    with TestClient(app) as c:
        r = c.post("/ask", json={"question": "剑涛智慧产业园项目的总投资是多少？ 超时测试"})
        assert r.status_code == 504, r.text
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["detail"] == "request took over 0.001 s"
        assert r.headers.get("x-request-id")
    # the same state with a sane limit answers normally afterwards
    ok = make_app(settings, seed_index, embedder, request_timeout_s=30)
    with TestClient(ok) as c:
        assert (
            c.post("/ask", json={"question": "剑涛智慧产业园项目的总投资是多少？"}).status_code
            == 200
        )
