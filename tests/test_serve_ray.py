"""A sharded index served on Ray Serve (issue 15), on the real 2-node loopback cluster of the
``ray_cluster`` fixture: the command line a user runs (``python -m qa_service serve --ray``),
compared over HTTP with the plain seed index served in one process.

For every seed question in every mode, with filters, /similar, articles and answers, the
service gives the passages (ids, order, scores, citations) and answers of the plain index;
admin writes go to the owning shard and switch generation at once; a replica or the worker
node killed under load costs no request with two replicas, and gives a 503 that names the
shard (never a partial result) with one; SIGTERM leaves nothing running."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from indexer import shards, store
from tests.conftest import REPO
from tests.helpers.ray_cluster import WORKER_IP, unwatch, watch
from tests.helpers.server import free_port
from tests.helpers.service import ADMIN_TOKEN, AUTH, make_app

pytestmark = [pytest.mark.cluster, pytest.mark.model, pytest.mark.slow]

SEED_QA = REPO / "eval" / "data" / "seed_qa.jsonl"
MODES = ("hybrid", "dense", "bm25")
START_TIMEOUT_S = 600
VOLATILE = ("request_id", "timings")
NEW_ARTICLE = {
    "id": "ray-serve-test-1",
    "title": "缙云山熊猫馆开馆",
    "date": "2023-03-01",
    "source": "北碚报",
    "text": "北碚区缙云山熊猫馆于今日正式开馆。馆内共有两只大熊猫，分别名叫团团和圆圆。"
    "开馆首日接待游客三千人。",
}


def questions() -> list[str]:
    lines = SEED_QA.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def stable(response: httpx.Response | object) -> dict:
    """A response's JSON without what differs between two runs of the same request."""
    body = response.json()
    return {k: v for k, v in body.items() if k not in VOLATILE}


# ---------------------------------------------------------------------------- the service


class RayService:
    """``python -m qa_service serve --index ... --ray ADDRESS`` in a session of its own. One
    at a time on a cluster: they deploy the same Serve application."""

    def __init__(
        self, index: Path, address: str, replicas: int, env: dict, log: Path, *extra: str
    ) -> None:
        self.index, self.address, self.replicas = index, address, replicas
        self.env, self.log, self.extra = env, log, list(extra)
        self.start()

    def start(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "qa_service", "serve", "--index", str(self.index)]
        cmd += ["--ray", self.address, "--replicas", str(self.replicas), "--port", str(self.port)]
        cmd += self.extra
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                cmd,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=os.environ | self.env | {"NEWSQA_ADMIN_TOKEN": ADMIN_TOKEN},
                start_new_session=True,
            )
        watch(self.proc.pid)  # killed with its session should pytest die first
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the service did not start:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/readyz", timeout=5).status_code == 200:
                    return
            time.sleep(1)

    def tail(self, n: int = 4000) -> str:
        return self.log.read_bytes().decode(errors="replace")[-n:]

    def stop(self, timeout_s: float = 120) -> int:
        """SIGTERM, as a process manager stops it; its exit status."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout=timeout_s)
            unwatch(self.proc.pid)
            return status
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    @contextlib.contextmanager
    def paused(self):
        """Stopped meanwhile (another service needs the cluster), started again after."""
        status = self.stop()
        try:
            assert status == 0, self.tail()
            yield
        finally:
            self.start()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        unwatch(self.proc.pid)

    def session(self) -> list[int]:
        """The processes still in the service's session."""
        from qa_service.procfs import session_pids

        return session_pids(self.proc.pid)


@pytest.fixture(scope="module")
def seed_shards(seed_index, tmp_path_factory) -> dict[int, Path]:
    manifest, content = store.load_content(seed_index)
    root = tmp_path_factory.mktemp("ray-shards")
    for n in (1, 2, 3):
        shards.write(root / f"s{n}", content, n, manifest.settings)
    return {n: root / f"s{n}" for n in (1, 2, 3)}


@pytest.fixture(scope="module")
def plain(seed_index, settings, embedder):
    """The plain seed index, in one process: what every answer must equal."""
    from fastapi.testclient import TestClient

    with TestClient(make_app(settings, seed_index, embedder)) as client:
        yield client


@pytest.fixture(scope="module")
def connected(ray_cluster):
    """This process connected to the cluster (to find and kill replicas)."""
    import ray

    ray.init(address=ray_cluster.address, namespace="newsqa-tests")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def served(ray_cluster, seed_shards, tmp_path_factory):
    """Three shards, two replicas each, on the cluster."""
    log = tmp_path_factory.mktemp("ray-serve") / "serve.log"
    service = RayService(seed_shards[3], ray_cluster.address, 2, ray_cluster.env, log)
    yield service
    assert service.stop() == 0, service.tail()


def _post(client, url: str, path: str, body: dict, **kw) -> httpx.Response:
    return client.post(url + path, json=body, **kw)


def _compare_all(url: str, plain, qs: list[str], modes=MODES) -> None:
    requests = [
        (path, {key: q, "mode": mode, "top_k": k})
        for q in qs
        for mode in modes
        for path, key, k in (("/search", "query", 10), ("/ask", "question", 5))
    ]
    with httpx.Client(timeout=120) as client, ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda r: client.post(url + r[0], json=r[1]), requests))
    for (path, body), response in zip(requests, got, strict=True):
        assert response.status_code == 200, response.text
        assert stable(response) == stable(plain.post(path, json=body)), (path, body)


# ------------------------------------------------------------------------------- results


def test_every_seed_question_in_every_mode_as_the_plain_index(served, plain):
    _compare_all(served.url, plain, questions())


def test_filters_similar_and_articles_as_the_plain_index(served, plain):
    with httpx.Client(timeout=120) as client:
        for q in questions()[::9]:
            for filters in (
                {"date_from": "2023-02-08", "source": "日报"},
                {"date_to": "2023-02-07"},
            ):
                body = {"query": q, "top_k": 10, "filters": filters}
                assert stable(client.post(served.url + "/search", json=body)) == stable(
                    plain.post("/search", json=body)
                )
        passages = plain.post("/search", json={"query": "重庆", "top_k": 30}).json()["results"]
        for p in passages[::4]:
            for level in ("passage", "article"):
                body = {"passage_id": p["passage_id"], "top_k": 8, "level": level}
                assert stable(client.post(served.url + "/similar", json=body)) == stable(
                    plain.post("/similar", json=body)
                )
            body = {"article_id": p["article_id"], "top_k": 5, "level": "article"}
            assert stable(client.post(served.url + "/similar", json=body)) == stable(
                plain.post("/similar", json=body)
            )
            path = f"/articles/{p['article_id']}"
            assert client.get(served.url + path).json() == plain.get(path).json()
        body = {"text": "数据中心项目", "top_k": 6}
        assert stable(client.post(served.url + "/similar", json=body)) == stable(
            plain.post("/similar", json=body)
        )
        assert client.get(served.url + "/articles/nope").status_code == 404


def test_facets_paging_and_recency_as_the_plain_index(served, plain):
    """Facet counts (each shard counts its matching articles, the ingress adds them up),
    pages and the recency boost: as the plain index gives them."""
    both = ["month", "source"]
    extras = (
        {"facets": both},
        {"facets": both, "filters": {"date_from": "2023-02-08"}},
        {"top_k": 5, "offset": 5},
        {"recency_half_life_days": 30},
    )
    with httpx.Client(timeout=120) as client:
        for q in [*questions()[::6], "重庆"]:
            for mode in MODES:
                for extra in extras:
                    body = {"query": q, "mode": mode, "top_k": 10, **extra}
                    got = client.post(served.url + "/search", json=body)
                    assert got.status_code == 200, got.text
                    assert stable(got) == stable(plain.post("/search", json=body)), body
        body = {"question": questions()[0], "top_k": 5, "facets": both}
        got = client.post(served.url + "/ask", json=body)
        assert got.json()["facets"]["month"] and stable(got) == stable(
            plain.post("/ask", json=body)
        )


def test_readiness_stats_and_metrics_show_shards_and_replicas(served, plain):
    ready = httpx.get(served.url + "/readyz", timeout=30).json()
    assert ready["ready"] is True
    stats = httpx.get(served.url + "/stats", timeout=30).json()
    want = plain.get("/stats").json()
    for key in ("articles", "passages", "sources", "files", "date_range", "model"):
        assert stats[key] == want[key]
    assert [s["shard"] for s in stats["shards"]] == ["shard-000", "shard-001", "shard-002"]
    assert all(s["replicas"].get("RUNNING") == 2 for s in stats["shards"])
    assert sum(s["passages"] for s in stats["shards"]) == want["passages"]
    metrics = httpx.get(served.url + "/metrics", timeout=30).text
    assert 'newsqa_shard_replicas{shard="shard-001",state="RUNNING"} 2.0' in metrics


@pytest.mark.parametrize("n", (1, 2))
def test_one_and_two_shards(n, ray_cluster, seed_shards, plain, tmp_path, served):
    with served.paused():
        service = RayService(
            seed_shards[n], ray_cluster.address, 1, ray_cluster.env, tmp_path / "s.log"
        )
        try:
            _compare_all(service.url, plain, questions()[::4], ("hybrid", "bm25"))
        finally:
            assert service.stop() == 0, service.tail()


# -------------------------------------------------------------------------------- writes


def test_admin_writes_go_to_the_owning_shard_and_switch_at_once(served, plain):
    question = {"question": "缙云山熊猫馆的大熊猫叫什么名字？", "top_k": 5}
    with httpx.Client(timeout=300) as client:
        before = client.get(served.url + "/stats").json()
        for target in (client, plain):
            base = served.url if target is client else ""
            response = target.post(base + "/articles", json=NEW_ARTICLE, headers=AUTH)
            assert response.status_code == 200, response.text
        after = client.get(served.url + "/stats").json()
        owner = shards.shard_of(NEW_ARTICLE["id"], 3)
        changed = [
            a["shard"]
            for a, b in zip(before["shards"], after["shards"], strict=True)
            if a["version"] != b["version"]
        ]
        assert changed == [f"shard-{owner:03d}"] and after["version"] != before["version"]
        got = client.post(served.url + "/ask", json=question)
        assert stable(got) == stable(plain.post("/ask", json=question))
        assert got.json()["passages"][0]["article_id"] == NEW_ARTICLE["id"]
        _compare_all(served.url, plain, questions()[::11], ("hybrid",))
        for target in (client, plain):
            base = served.url if target is client else ""
            path = f"/articles/{NEW_ARTICLE['id']}"
            assert target.delete(base + path, headers=AUTH).status_code == 200
        assert client.get(served.url + f"/articles/{NEW_ARTICLE['id']}").status_code == 404
        assert stable(client.post(served.url + "/ask", json=question)) == stable(
            plain.post("/ask", json=question)
        )


# -------------------------------------------------------------------------------- faults


class Load:
    """Requests from a few threads until stopped; every response kept."""

    def __init__(self, url: str, bodies: list[dict], threads: int = 3) -> None:
        self.url, self.bodies = url, bodies
        self.results: list[tuple[dict, int, dict]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self, offset: int) -> None:
        with httpx.Client(timeout=120) as client:
            i = offset
            while not self._stop.is_set():
                body = self.bodies[i % len(self.bodies)]
                response = client.post(self.url + "/search", json=body)
                self.results.append((body, response.status_code, response.json()))
                i += 1

    def stop(self) -> list[tuple[dict, int, dict]]:
        self._stop.set()
        for t in self._threads:
            t.join()
        return self.results


def _bodies() -> list[dict]:
    return [{"query": q, "top_k": 10, "mode": "hybrid"} for q in questions()[::5]]


def _expected(plain, bodies) -> dict[str, list]:
    return {b["query"]: plain.post("/search", json=b).json()["results"] for b in bodies}


def _replica_of(ray, deployment: str) -> str:
    names = [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["namespace"] == "serve" and f"#{deployment}#" in a["name"]
    ]
    assert names, f"no replica of {deployment}"
    return sorted(names)[0]


def test_a_replica_killed_under_load_costs_no_request(served, plain, connected):
    ray = connected
    bodies = _bodies()
    expected = _expected(plain, bodies)
    load = Load(served.url, bodies)
    time.sleep(3)
    ray.kill(ray.get_actor(_replica_of(ray, "shard-001"), namespace="serve"), no_restart=True)
    time.sleep(8)
    results = load.stop()
    assert len(results) > 10
    for body, status, payload in results:
        assert status == 200, payload
        assert payload["results"] == expected[body["query"]]  # complete, never partial


def test_the_worker_node_killed_under_load_costs_no_request(served, plain, ray_cluster):
    bodies = _bodies()
    expected = _expected(plain, bodies)
    load = Load(served.url, bodies)
    time.sleep(3)
    ray_cluster.stop_node(WORKER_IP, grace_s=0)
    try:
        time.sleep(10)
        results = load.stop()
    finally:
        ray_cluster.start_node(WORKER_IP)
    assert len(results) > 10
    for body, status, payload in results:
        assert status == 200, payload
        assert payload["results"] == expected[body["query"]]


def test_one_replica_killed_gives_a_503_naming_the_shard(
    served, plain, connected, ray_cluster, tmp_path
):
    ray = connected
    with served.paused():
        service = RayService(
            served.index,
            ray_cluster.address,
            1,
            ray_cluster.env,
            tmp_path / "s.log",
            "--shard-retry-s",
            "1",  # shorter than Serve takes to replace a replica: the 503 is seen
        )
        try:
            bodies = _bodies()
            expected = _expected(plain, bodies)
            load = Load(service.url, bodies, threads=2)
            time.sleep(2)
            ray.kill(
                ray.get_actor(_replica_of(ray, "shard-002"), namespace="serve"), no_restart=True
            )
            time.sleep(10)
            results = load.stop()
            assert {status for _, status, _ in results} == {200, 503}
            for body, status, payload in results:
                if status == 200:
                    assert payload["results"] == expected[body["query"]]  # never partial
                else:
                    assert "shard-002" in payload["detail"]
            # Restored: ready, and answers in full again.
            deadline = time.monotonic() + 120
            while httpx.get(service.url + "/readyz", timeout=30).status_code != 200:
                assert time.monotonic() < deadline, service.tail()
                time.sleep(2)
            got = httpx.post(service.url + "/search", json=bodies[0], timeout=60)
            assert got.json()["results"] == expected[bodies[0]["query"]]
        finally:
            assert service.stop() == 0, service.tail()


# ----------------------------------------------------------------------------- stopping


def test_sigterm_on_a_local_ray_leaves_nothing_running(seed_shards, tmp_path):
    service = RayService(seed_shards[2], "local", 1, {}, tmp_path / "local.log")
    try:
        r = httpx.post(service.url + "/search", json={"query": "神驰机电", "top_k": 3}, timeout=60)
        assert r.status_code == 200 and r.json()["results"]
        assert len(service.session()) > 3  # the Ray instance it started: GCS, raylet, workers
    finally:
        assert service.stop() == 0, service.tail()
    left = service.session()
    if left:
        from tests.helpers.ray_cluster import _signal

        _signal(left, signal.SIGKILL)  # do not leak them into the rest of the run
    assert left == []
