"""Serving a sharded index on Ray Serve: each shard a deployment with replicas, the existing
FastAPI app the ingress.

One Serve application, ``newsqa``::

    HTTP (Serve's proxy, on the head node) -> ingress (the FastAPI app of ``qa_service.app``,
        with the model: embeds a question once, routes it)
            -> shard-000 ... shard-N-1 (R replicas each: ``ShardReplica``, a lean shard)

The ingress is the same app as in one process; only how it opens an index differs
(:class:`RayShards`, the service state's ``opener``): its router's shards are
:class:`RayShard` clients that call every shard deployment at once and merge, and passages
are read from their shard for the final top-k only.

Generations. A request names the shard version it reads (the generation it started on);
a replica keeps the last few versions it was asked for and loads one it does not have. An
admin write makes a new generation on disk (only the owning shard changes), has *every*
replica of each changed shard load it (``broadcast``), and only then switches the ingress's
engine: one reference assignment, so a request sees one generation from start to end.

Faults. A shard call that fails because its replica or node died is sent again (Serve routes
it to a live replica, or to the one it starts instead) until :data:`RETRY_S` has passed; then
the request fails whole with a 503 that names the shard. Never a partial result.

Placement. The ingress runs on the head node, with the HTTP proxy (``proxy_location``
``HeadOnly``): losing a worker node costs shard replicas only, which Serve restarts elsewhere.
A shard's replicas are spread over the nodes (:func:`per_node`, Serve's
``max_replicas_per_node``): Serve's own spreading is best effort, and a replica started to
replace a dead one may land next to the shard's other replica, so that losing that node
would lose the whole shard. With R >= 2 replicas and as many nodes, no node holds all of a
shard's replicas, also after replacements (a replacement waits for a node with room).
Shard directories must be readable at the same path on every node (one machine, or shared
storage).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from indexer import shards as layout
from indexer.settings import Settings
from qa_service import procfs
from qa_service.router import ShardUnavailable
from qa_service.sharded import ShardedIndex

log = logging.getLogger("qa_service")

APP = "newsqa"
INGRESS = "ingress"
#: Shard versions a replica keeps loaded (the current generation's, and those requests that
#: started on earlier ones still read).
KEEP_VERSIONS = 3
#: How long a shard call is sent again while Serve replaces a dead replica.
RETRY_S = 15.0
#: CPUs Ray reserves per replica: shards mostly wait on memory and the ingress on the model;
#: small enough that a few shards with replicas fit on small nodes.
REPLICA_CPUS = 0.1
#: How long /readyz waits for each shard.
PROBE_S = 3.0


# ------------------------------------------------------------------------ a shard replica


class ShardReplica:
    """One replica of one shard's deployment: the versions of this shard it was asked for,
    opened lean (``shard_disk``), the newest :data:`KEEP_VERSIONS` kept."""

    def __init__(self, index_path: str, shard: int) -> None:
        self.shard = shard
        self._versions: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        opened = layout.read_generation(Path(index_path))  # the current one, at start
        entry = opened.generation.shards[shard]
        self.load(entry.version, str(opened.shard_version(shard)))

    def _get(self, version: str, path: str):
        from qa_service.shard_disk import open_shard

        with self._lock:
            searcher = self._versions.get(version)
            if searcher is None:
                searcher = self._versions[version] = open_shard(Path(path))
                while len(self._versions) > KEEP_VERSIONS:
                    self._versions.popitem(last=False)
            self._versions.move_to_end(version)
            return searcher

    def load(self, version: str, path: str) -> dict:
        """Have this version loaded (the ingress asks every replica before a switch)."""
        return self._get(version, path).describe()

    def call(self, version: str, path: str, method: str, *args: Any) -> Any:
        """A :class:`~qa_service.shard.ShardSearcher` method on that version of the shard."""
        return getattr(self._get(version, path), method)(*args)


# ---------------------------------------------------------------------- the ingress side


def _retryable() -> tuple[type[BaseException], ...]:
    """What a dead or restarting replica or node raises, as opposed to an error of ours."""
    from ray import exceptions as ray_errors
    from ray.serve import exceptions as serve_errors

    return (
        ray_errors.RayActorError,  # ActorDiedError: the replica or its node died
        ray_errors.ActorUnavailableError,
        serve_errors.BackPressureError,
        serve_errors.DeploymentUnavailableError,
        serve_errors.ReplicaUnavailableError,
        TimeoutError,  # GetTimeoutError too
    )


class _RayCall:
    """One shard call, sent again on a dead replica until the shard's deadline."""

    def __init__(self, shard: RayShard, method: str, args: tuple) -> None:
        self.shard, self.method, self.args = shard, method, args
        self.deadline = time.monotonic() + shard.retry_s
        self.response = shard.send(method, args)

    def result(self) -> Any:
        delay = 0.05
        while True:
            try:
                return self.response.result(timeout_s=max(0.05, self.deadline - time.monotonic()))
            except _retryable() as exc:
                if time.monotonic() + delay >= self.deadline:
                    self.response.cancel()
                    raise ShardUnavailable(
                        self.shard.name, f"no replica answered within {self.shard.retry_s:g} s"
                    ) from exc
                log.warning("shard %s: %s; sending the call again", self.shard.name, exc)
                time.sleep(delay)
                delay = min(1.0, delay * 2)
                self.response = self.shard.send(self.method, self.args)


class RayShard:
    """A :class:`~qa_service.router.ShardClient` for one shard's deployment, on one version."""

    def __init__(self, handle, name: str, version: str, path: str, retry_s: float) -> None:
        self.handle, self.name = handle, name
        self.version, self.path = version, path
        self.retry_s = retry_s

    def send(self, method: str, args: tuple):
        return self.handle.call.remote(self.version, self.path, method, *args)

    def call(self, method: str, *args: Any) -> _RayCall:
        return _RayCall(self, method, args)

    def probe(self) -> str | None:
        """None if a replica answers on this version now; else what is wrong."""
        try:
            self.send("describe", ()).result(timeout_s=PROBE_S)
            return None
        except Exception as exc:
            return f"shard {self.name} is not ready ({type(exc).__name__})"

    def replicas(self) -> dict[str, int]:
        """This shard's replicas by state (RUNNING, STARTING, ...), from Serve."""
        from ray import serve

        try:
            deployments = serve.status().applications[APP].deployments
            states = deployments[self.name].replica_states
        except Exception:  # Serve's controller is restarting, say: no figure rather than none
            return {}
        return {str(getattr(k, "value", k)): int(v) for k, v in states.items()}


class RayShards:
    """How the ingress opens a generation (the service state's ``opener``): the shards'
    deployments load it on every replica, then a :class:`ShardedIndex` routes to them."""

    def __init__(self, handles: Sequence, retry_s: float = RETRY_S) -> None:
        self.handles = list(handles)
        self.retry_s = retry_s

    def load(self, index_path: Path) -> ShardedIndex:
        opened = layout.read_generation(index_path)
        return self._open(index_path, opened, range(opened.shard_count))

    def from_written(self, index_path: Path, written, content=None) -> ShardedIndex:
        opened = layout.OpenGeneration(written.version, written.generation)
        return self._open(index_path, opened, written.written)

    def _open(
        self, index_path: Path, opened: layout.OpenGeneration, changed: Iterable[int]
    ) -> ShardedIndex:
        entries = opened.generation.shards
        if len(entries) != len(self.handles):
            raise layout.IndexStoreError(
                f"{index_path} now has {len(entries)} shards; this service deployed "
                f"{len(self.handles)}. Restart it."
            )
        refs = [(e.version, str(opened.shard_version(i))) for i, e in enumerate(entries)]
        loading = [self.handles[i].broadcast("load", *refs[i]) for i in changed]
        for pending in loading:
            pending.results()  # every replica has it before the switch
        clients = [
            RayShard(h, e.name, *ref, self.retry_s)
            for h, e, ref in zip(self.handles, entries, refs, strict=True)
        ]
        return ShardedIndex(Path(index_path), opened, clients)


class Ingress:
    """The ingress deployment: the FastAPI app of ``qa_service.app`` over a
    :class:`ServiceState` whose index is opened by :class:`RayShards`."""

    async def __init__(self, index_path: str, settings_json: str, retry_s: float, *shards) -> None:
        from qa_service.state import ServiceState

        settings = Settings.model_validate_json(settings_json)
        self.state = ServiceState(settings, Path(index_path), opener=RayShards(shards, retry_s))
        # Out of the event loop: opening calls the shards and waits for them.
        await asyncio.to_thread(self.state.start)

    def __serve_build_asgi_app__(self):
        from qa_service.app import create_app

        return create_app(settings=self.state.settings, state=self.state)


# ---------------------------------------------------------------------------- deploying


def per_node(replicas: int, nodes: int) -> int | None:
    """The most replicas of one shard a node may hold: few enough that with two or more
    replicas no node holds them all (None: no limit, with one replica or one node)."""
    if replicas < 2 or nodes < 2:
        return None
    return math.ceil(replicas / nodes)


def application(
    index_path: Path,
    settings: Settings,
    replicas: int = 1,
    replica_cpus: float = REPLICA_CPUS,
    retry_s: float = RETRY_S,
    nodes: int = 1,
):
    """The Serve application for the sharded index at ``index_path``, on a cluster of
    ``nodes`` nodes (what spreading each shard's replicas goes by)."""
    from ray import serve

    path = os.path.abspath(index_path)  # the link, not its target: generations change
    opened = layout.read_generation(Path(path))
    shard = serve.deployment(ShardReplica)
    shards = [
        shard.options(
            name=entry.name,
            num_replicas=replicas,
            max_replicas_per_node=per_node(replicas, nodes),
            ray_actor_options={"num_cpus": replica_cpus},
        ).bind(path, i)
        for i, entry in enumerate(opened.generation.shards)
    ]
    ingress = serve.deployment(serve.ingress()(Ingress)).options(
        name=INGRESS,
        num_replicas=1,  # admin writes switch this replica's engine
        ray_actor_options={
            "num_cpus": replica_cpus,
            "resources": {"node:__internal_head__": 0.001},
        },
    )
    return ingress.bind(path, settings.model_dump_json(), retry_s, *shards)


def serve_on_ray(
    index_path: Path,
    address: str,
    settings: Settings,
    *,
    replicas: int = 1,
    host: str = "127.0.0.1",
    port: int = 8000,
    replica_cpus: float = REPLICA_CPUS,
    retry_s: float = RETRY_S,
    say: Callable[[str], None] = print,
) -> int:
    """Deploy the sharded index on Ray Serve and serve until SIGTERM or Ctrl-C.

    ``address``: ``local`` starts a Ray instance for this service (stopped on exit),
    ``auto`` joins the cluster of this machine, ``HOST:PORT`` the cluster with that head
    (on exit the application is deleted, and Serve too if this service started it; the cluster
    goes on)."""
    if not layout.is_sharded(index_path):
        raise layout.IndexStoreError(
            f"{index_path} is not a sharded index: build it with --shards N (1 is fine) to "
            "serve it on Ray."
        )
    import ray
    from ray import serve

    local = address == "local"
    say(f"starting Ray ({address}) ...")
    if local:
        ray.init(namespace=APP, include_dashboard=False, object_store_memory=200 * 1024**2)
    else:
        ray.init(address=address, namespace=APP)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):  # after ray.init, which sets its own
        signal.signal(sig, lambda *_: stop.set())  # (during the deploy: stop right after it)
    serve_was_up = _serve_running()
    try:
        serve.start(proxy_location="HeadOnly", http_options={"host": host, "port": port})
        nodes = sum(  # the nodes a shard replica fits on
            1
            for node in ray.nodes()
            if node.get("Alive") and node.get("Resources", {}).get("CPU", 0) >= replica_cpus
        )
        limit = per_node(replicas, nodes)
        spread = f", at most {limit} per node of {nodes}" if limit else ""
        say(
            f"deploying {index_path}: shards with {replicas} replica(s) each{spread}, "
            "and the ingress ..."
        )
        serve.run(
            application(index_path, settings, replicas, replica_cpus, retry_s, nodes),
            name=APP,
            route_prefix="/",
        )
        say(f"serving on http://{host}:{port} (Ray Serve; SIGTERM or Ctrl-C stops)")
        while not stop.wait(0.5):
            pass
        say("stopping ...")
    finally:
        started = procfs.descendants(os.getpid()) if local else []
        try:
            serve.delete(APP)
            if not serve_was_up:  # Serve (its controller, the HTTP proxy) started for us
                serve.shutdown()
        finally:
            ray.shutdown()
            # ray.shutdown() stops the instance's daemons, but agents the raylet started may
            # outlive it: every process this service started goes too.
            _terminate(started)
    return 0


def _serve_running() -> bool:
    """Is Serve already running on the connected cluster (its controller actor exists)?"""
    import ray
    from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

    try:
        ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
        return True
    except ValueError:
        return False


def _terminate(pids: list[int], grace_s: float = 5.0) -> None:
    """SIGTERM to these processes, SIGKILL to those still there after ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = [p for p in pids if _alive(p)]
        for p in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, sig)
        deadline = time.monotonic() + grace_s
        while sig == signal.SIGTERM and any(_alive(p) for p in alive):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    """Running (a zombie, already dead and waiting for its parent, is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
