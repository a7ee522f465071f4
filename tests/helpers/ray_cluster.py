"""A real 2-node Ray cluster on loopback for tests: the ``ray_cluster`` fixture (session).

The head runs on 127.0.0.2 and a worker node on 127.0.0.3, one CPU and a 300 MB object store
each, dashboard and usage statistics off: about 1 GB of memory idle. Ray rewrites 127.0.0.1
and ``localhost`` to the machine's external address, where a worker would not find a head
bound to loopback; 127.0.0.2/3 are left alone.

Each node is one ``ray start --block`` in a session of its own (``start_new_session``): every
process Ray starts for the node (GCS, raylet, agents, workers; workers get process groups of
their own, not sessions) stays in that session, so teardown kills exactly those, SIGKILL after
a grace period (Ray's daemons may ignore SIGTERM), and never runs ``ray stop``, which would
stop every Ray process on the machine. Ray's files go to a temporary directory of the
fixture's own, removed afterwards (kept, to read Ray's and Serve's logs after a failure, with
``NEWSQA_KEEP_RAY_LOGS=1``).

The cluster runs with Ray's token authentication and a one-off token: :attr:`RayCluster.env`
holds what a client needs (``subprocess.run(..., env=os.environ | cluster.env)``); the fixture
also sets it in this process for the session, so ``ray.init(address=cluster.address)`` works
in a test. Registered in ``tests/conftest.py`` (``pytest_plugins``): any test module can ask
for ``ray_cluster``.

Nothing outlives pytest: while the fixture is up, SIGTERM to pytest is a KeyboardInterrupt
(pytest then tears its fixtures down, the cluster included), and a watchdog process in a
session of its own (:func:`watch`) kills the nodes' sessions, and any other session a test
hands it, when pytest's process is gone without doing so (SIGKILL).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from qa_service.procfs import session_pids
from tests.helpers.ci import missing
from tests.helpers.server import free_port

HEAD_IP = "127.0.0.2"
WORKER_IP = "127.0.0.3"
OBJECT_STORE_BYTES = 300_000_000
START_TIMEOUT_S = 180.0
GRACE_S = 5.0
REPO = Path(__file__).resolve().parents[2]


def ray_executable() -> Path | None:
    """The ``ray`` command of this environment (the ``cluster`` extra), or None."""
    path = Path(sys.executable).parent / "ray"
    return path if path.exists() else None


@dataclass
class Node:
    ip: str
    proc: subprocess.Popen
    log: Path


@dataclass
class RayCluster:
    address: str  # the head's HOST:PORT, what `--ray` and `ray.init(address=...)` take
    env: dict[str, str]  # what a client needs: RAY_AUTH_MODE, RAY_AUTH_TOKEN
    temp_dir: Path
    port: int
    nodes: dict[str, Node] = field(default_factory=dict)  # by IP

    # ------------------------------------------------------------------ nodes

    def start_node(self, ip: str, num_cpus: int = 1) -> Node:
        """Start a node on ``ip``: the head when there is none yet, else a worker node."""
        head = not self.nodes
        cmd = [str(ray_executable()), "start", "--block", "--node-ip-address", ip]
        cmd += ["--num-cpus", str(num_cpus), "--object-store-memory", str(OBJECT_STORE_BYTES)]
        cmd += ["--disable-usage-stats", "--temp-dir", str(self.temp_dir / ip)]
        if head:
            cmd += ["--head", "--port", str(self.port), "--include-dashboard=false"]
        else:
            cmd += ["--address", self.address]
        log = self.temp_dir / f"{ip}-{time.monotonic_ns()}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=os.environ | self.env,
                start_new_session=True,
            )
        node = self.nodes[ip] = Node(ip, proc, log)
        watch(proc.pid)
        deadline = time.monotonic() + START_TIMEOUT_S
        while b"Ray runtime started" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_bytes().decode(errors="replace")[-3000:]
                self.stop_node(ip)
                raise RuntimeError(f"the Ray node on {ip} did not start:\n{tail}")
            time.sleep(0.5)
        return node

    def stop_node(self, ip: str, grace_s: float = GRACE_S) -> None:
        """Stop the node: SIGTERM to its processes, SIGKILL to what is left after
        ``grace_s`` (0: at once, as a crash would)."""
        node = self.nodes.pop(ip)
        leader = node.proc.pid
        if grace_s > 0:
            _signal(session_pids(leader), signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.proc.wait(timeout=grace_s)
        # The rest of the session first: the leader's pid stays ours until it is reaped.
        _signal([p for p in session_pids(leader) if p != leader], signal.SIGKILL)
        _signal([leader], signal.SIGKILL)
        node.proc.wait()
        unwatch(leader)

    def shutdown(self) -> None:
        for ip in [ip for ip in self.nodes if ip != HEAD_IP] + [HEAD_IP]:
            if ip in self.nodes:
                self.stop_node(ip)
        if os.environ.get("NEWSQA_KEEP_RAY_LOGS"):  # debugging a failure: Ray's logs stay
            print(f"Ray's files kept in {self.temp_dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
        unwatch(self.temp_dir)


def start_cluster(head_ip: str = HEAD_IP, worker_ips: tuple[str, ...] = (WORKER_IP,)) -> RayCluster:
    """A head on ``head_ip`` and a worker node on each of ``worker_ips``, one CPU each."""
    port = free_port()
    # Short: Ray's socket paths under it must stay below the 107-byte limit of Unix sockets.
    temp_dir = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    cluster = RayCluster(f"{head_ip}:{port}", env, temp_dir, port)
    watch(temp_dir)
    try:
        for ip in (head_ip, *worker_ips):
            cluster.start_node(ip)
    except BaseException:
        cluster.shutdown()
        raise
    return cluster


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    """The session's 2-node Ray cluster (see the module doc); fails in CI, skips elsewhere,
    when Ray is not installed."""
    if ray_executable() is None:
        missing("Ray", "pip install -e '.[cluster]' (make test installs it)")
    # SIGTERM (a CI timeout, a process manager) tears the session down as Ctrl-C does.
    term = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        cluster = start_cluster()
        saved = {k: os.environ.get(k) for k in cluster.env}
        _use_auth(cluster.env)
        try:
            yield cluster
        finally:
            cluster.shutdown()
            _use_auth(saved)
    finally:
        signal.signal(signal.SIGTERM, term)


def _use_auth(values: dict[str, str | None]) -> None:
    """Ray's token settings in this process (None: unset); Ray re-reads them if loaded."""
    if "ray" in sys.modules:
        from indexer.cluster import set_ray_auth

        set_ray_auth(values["RAY_AUTH_MODE"], values["RAY_AUTH_TOKEN"])
        return
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


# ------------------------------------------------------------------------------ watchdog


class _Watchdog:
    """A process in a session of its own that waits for this one (pytest) to end; if it ends
    with sessions still listed (killed, so no teardown ran), the watchdog kills them (SIGTERM,
    then SIGKILL) and removes the folders listed. Started on the first :func:`watch`."""

    def __init__(self) -> None:
        self.sessions: set[int] = set()
        self.folders: set[str] = set()
        self.file = Path(tempfile.mkdtemp(prefix="rw", dir="/tmp")) / "watch.json"
        self._write()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.ray_cluster", str(os.getpid()), str(self.file)],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        atexit.register(self.close)

    def _write(self) -> None:
        data = {"sessions": sorted(self.sessions), "folders": sorted(self.folders)}
        part = self.file.with_suffix(".part")
        part.write_text(json.dumps(data))
        part.replace(self.file)

    def update(self, item: int | Path, add: bool) -> None:
        target = self.sessions if isinstance(item, int) else self.folders
        value = item if isinstance(item, int) else str(item)
        if add:
            target.add(value)
        else:
            target.discard(value)
        self._write()

    def close(self) -> None:
        """This process is exiting: what is still listed (a teardown cut short) goes now, and
        the watchdog with it."""
        with contextlib.suppress(OSError):
            _clean_up(json.loads(self.file.read_text()))
        shutil.rmtree(self.file.parent, ignore_errors=True)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


_watchdog: _Watchdog | None = None


def watch(item: int | Path) -> None:
    """Kill the session led by this pid (or remove this folder) should pytest die first."""
    global _watchdog
    if _watchdog is None:
        _watchdog = _Watchdog()
    _watchdog.update(item, True)


def unwatch(item: int | Path) -> None:
    """That session was stopped (or the folder removed) in order."""
    if _watchdog is not None:
        _watchdog.update(item, False)


def _gone(pid: int) -> bool:
    """Not running any more (a zombie waiting for its parent counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _watch(parent: int, file: Path) -> None:
    while file.exists() and not _gone(parent):
        time.sleep(1)
    with contextlib.suppress(OSError):  # gone: pytest cleaned up itself
        _clean_up(json.loads(file.read_text()))
        shutil.rmtree(file.parent, ignore_errors=True)


def _clean_up(listed: dict) -> None:
    """Kill the listed sessions (SIGTERM, SIGKILL after the grace), remove the folders."""

    def pids() -> list[int]:
        return [p for sid in listed["sessions"] for p in session_pids(sid)]

    _signal(pids(), signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    while pids() and time.monotonic() < deadline:
        time.sleep(0.2)
    _signal(pids(), signal.SIGKILL)
    for folder in listed["folders"]:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":  # the watchdog: python -m tests.helpers.ray_cluster PID FILE
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _watch(int(sys.argv[1]), Path(sys.argv[2]))
