"""Indexing on a Ray cluster: ``python -m indexer build|add ... --ray ADDRESS [--workers N]``.

What runs where:

* the driver (this process) does what an in-process build does, except reading and encoding:
  it hashes the source files and decides which changed, decides which articles are new
  (:class:`~indexer.pipeline.Indexer`, the same bookkeeping), and writes the index at the end
  (``store.write_index``, atomic);
* one Ray task per changed file reads, ingests and chunks it (:class:`RayReader`); the task
  first checks that the file it reads is the one the driver hashed, so a node that does not
  see the same files fails the job instead of indexing nothing;
* a pool of Ray actors embeds the new passages and cuts their BM25 tokens
  (:class:`RayEncoder`): each actor loads the model once, after checking the sha256 of its
  weights against the driver's model; one GPU per actor when the cluster has GPUs. The driver
  sorts the texts by length and cuts them into the batches an in-process build would make,
  so the vectors are the ones an in-process build computes.

Only changed files and new passages travel: an ``add`` of one new file runs one task and
embeds that file's new passages only.

Failures: a task whose node is lost is run again by Ray (``max_retries``). An actor that is
lost (its node or its process killed) is dropped, its batches are run again on the others,
and a replacement is started (actors are not restarted in place: a restart waits for
resources that the survivors hold, and would stall the job). When no actor is left and none
can start, the job stops with :class:`ClusterError`. The index is written only at the end,
so a job that stops leaves the index as it was.

Ray is imported here only, and only when used: it is the optional ``cluster`` extra.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from tqdm import tqdm

from indexer.embed import ModelIdentity
from indexer.files import SourceFile, sha256_file
from indexer.manifest import expected_settings
from indexer.reader import Chunking, FileRead, chunking_of, read_source
from indexer.settings import Settings

#: Batches queued at each embedding actor: one computing, one waiting, so that no actor idles
#: while the driver collects a result.
BATCHES_PER_WORKER = 2
#: How long the embedding actors may take to start (load and check the model).
START_TIMEOUT_S = 600.0
#: File-reading tasks in flight per CPU of the cluster.
TASKS_PER_CPU = 2


class ClusterError(RuntimeError):
    """The Ray job cannot go on (or cannot start); the message says why and what to do. The
    index was not changed."""


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise ClusterError(
            "--ray needs Ray, the optional 'cluster' extra: pip install -e '.[cluster]'"
        ) from exc
    return ray


# --------------------------------------------------------------------------- connecting


@contextmanager
def connect(address: str) -> Iterator[None]:
    """Join the Ray cluster at ``address`` (``auto``: the one this machine belongs to;
    ``HOST:PORT``: its head) for the duration, or start a private one (``local``) and stop
    it afterwards.

    A private instance gets a one-off authentication token (unless ``RAY_AUTH_MODE`` is set)
    and a temporary directory of its own: nothing is written to ``~/.ray`` or ``/tmp/ray``,
    where it would change what other Ray users on the machine see."""
    ray = _ray()
    saved = (os.environ.get("RAY_AUTH_MODE"), os.environ.get("RAY_AUTH_TOKEN"))
    temp_dir = None
    options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address == "local":
        if saved[0] is None:
            set_ray_auth("token", secrets.token_hex(32))
        temp_dir = tempfile.mkdtemp(prefix="newsqa-ray-")
        options |= {"address": "local", "include_dashboard": False, "_temp_dir": temp_dir}
    else:
        options["address"] = address
    try:
        try:
            ray.init(**options)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ...
            where = "start a local Ray instance" if address == "local" else f"join {address}"
            raise ClusterError(
                f"could not {where}: {_first_line(exc)}. For a cluster, start it first "
                "(ray start --head) and give its address as HOST:PORT; with token "
                "authentication, set RAY_AUTH_MODE=token and the cluster's token "
                "(README, 'Scaling out')."
            ) from None
        yield
    finally:
        ray.shutdown()
        if (os.environ.get("RAY_AUTH_MODE"), os.environ.get("RAY_AUTH_TOKEN")) != saved:
            set_ray_auth(*saved)
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)


def set_ray_auth(mode: str | None, token: str | None) -> None:
    """Ray's token authentication for this process and the Ray processes it starts (None:
    unset). Ray reads its configuration once: it is read again here, as ``ray.init`` does when
    it turns on a token of its own."""
    from ray._raylet import AuthenticationTokenLoader, Config

    for key, value in (("RAY_AUTH_MODE", mode), ("RAY_AUTH_TOKEN", token)):
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


@dataclass
class Resources:
    nodes: list[str]  # node addresses
    cpus: int
    gpus: int


def resources() -> Resources:
    ray = _ray()
    alive = [n for n in ray.nodes() if n.get("Alive")]
    total = ray.cluster_resources()
    return Resources(
        nodes=sorted(n["NodeManagerAddress"] for n in alive),
        cpus=int(total.get("CPU", 0)),
        gpus=int(total.get("GPU", 0)),
    )


# --------------------------------------------------------------------------- reading


def _read_on_node(source: SourceFile, digest: str, chunking: Chunking) -> FileRead:
    """The body of a reading task: the file must be the one the driver hashed."""
    try:
        here = sha256_file(source.path)
    except OSError as exc:
        here = f"unreadable ({exc.strerror or exc})"
    if here != digest:
        raise ClusterError(
            f"{source.path} on the Ray node {_node_address()} is not the file the driver read "
            f"(sha256 {digest[:12]}, here {here[:24]}): the sources must be on storage that "
            "every node sees at the same path (a shared file system), and not change "
            "during the job."
        )
    return read_source(source, digest, chunking)


class RayReader:
    """Reads, ingests and chunks each changed file in a Ray task; yields in the given order.
    ``before``: called before the tasks are sent (to stop an embedding pool that holds the
    CPUs they need)."""

    def __init__(self, chunking: Chunking, before: Callable[[], None] | None = None) -> None:
        self.chunking = chunking
        self.before = before
        self.files_read = 0  # files sent to the cluster, for the job summary

    def read(self, files: list[tuple[SourceFile, str]], progress: bool) -> Iterator[FileRead]:
        if not files:
            return
        if self.before is not None:
            self.before()
        ray = _ray()
        task = ray.remote(max_retries=3)(_read_on_node)
        window = max(2, TASKS_PER_CPU * resources().cpus)
        todo = deque(files)
        running: deque = deque()
        with tqdm(total=len(files), desc="reading (ray)", unit="file", disable=not progress) as bar:
            while todo or running:
                while todo and len(running) < window:
                    source, digest = todo.popleft()
                    # Workers run elsewhere, in other folders: the path must be absolute.
                    source = replace(source, path=source.path.absolute())
                    running.append(task.remote(source, digest, self.chunking))
                read = _get(running.popleft(), "reading a file")
                self.files_read += 1
                bar.update(1)
                yield read


# --------------------------------------------------------------------------- encoding


class EmbedWorker:
    """One embedding actor: the model, loaded once on its node after the sha256 of its weights
    was checked against the driver's, and the BM25 tokenizer (its fingerprint checked too)."""

    def __init__(self, settings: Settings, model: str | None, checksum: str, tokenizer: str):
        from indexer import models, tokenize
        from indexer.embed import Embedder

        path = models.resolve(model or settings.model, settings.models_dir)
        here = models.weights_checksum(path)
        if checksum and here != checksum:
            raise models.ModelError(
                f"the model at {path} on the Ray node {_node_address()} has sha256 "
                f"{here[:16]}, the driver's has {checksum[:16]}: install the same model on "
                "every node (python -m indexer models install)."
            )
        self.tokenizer = tokenize.from_settings(settings)
        if self.tokenizer.fingerprint != tokenizer:
            raise ClusterError(
                f"the BM25 tokenizer on the Ray node {_node_address()} is "
                f"{self.tokenizer.fingerprint}, the driver's is {tokenizer}: install the same "
                "versions (jieba) and user dictionary on every node."
            )
        self.embedder = Embedder(model, settings)

    def info(self) -> dict[str, Any]:
        return {
            "node": _node_address(),
            "batch_size": self.embedder.batch_size,
            "dimension": self.embedder.dimension,
            **self.embedder.build_info(),
        }

    def encode(self, texts: list[str]) -> tuple[np.ndarray, list[list[str]]]:
        return self.embedder.encode_document(texts), self.tokenizer.tokenize_many(texts)


@dataclass
class PoolStats:
    workers: list[dict] = field(default_factory=list)  # info() of each actor that started
    texts: int = 0  # texts sent to the cluster (passages, and whatever else is encoded)
    batches: int = 0
    lost: int = 0  # actors lost during the job
    rerun: int = 0  # batches run again after a loss


class RayEncoder:
    """Embeds and tokenizes texts in a pool of :class:`EmbedWorker` actors.

    The pool starts at the first :meth:`encode` and stops after it, unless ``keep_alive``
    (a job that encodes several times: passages, then sentences), or a ``with encoder.pool():``
    block, keeps it for later calls. Its actors hold their CPUs (or GPUs) while they live, so
    :class:`RayReader` stops it before reading: reading tasks need those CPUs."""

    def __init__(self, settings: Settings, model: str | None, workers: int | None) -> None:
        expected = expected_settings(settings, model)
        if not expected.dimension:
            raise ClusterError(
                f"the model {model or settings.model!r} does not record its dimension; on a "
                "cluster use a model installed with: python -m indexer models install"
            )
        self.identity = ModelIdentity(
            expected.model_name, expected.model_checksum, expected.dimension
        )
        self.tokenizer_fingerprint = expected.tokenizer
        self.settings, self.model, self.wanted = settings, model, workers
        self.stats = PoolStats()
        self._live: list = []  # actor handles
        self._make: Callable[[], Any] | None = None
        self.size = 0  # actors the pool was started with
        self._batch_size = 0
        self.keep_alive = False

    # ----------------------------------------------------------------- the pool

    def _plan(self) -> tuple[int, dict[str, Any], Settings]:
        """How many actors, with which resources, on which device."""
        have = resources()
        device = self.settings.device
        use_gpus = have.gpus > 0 and device != "cpu"
        if device.startswith("cuda") and not have.gpus:
            raise ClusterError(
                f"the device setting is {device!r} (NEWSQA_DEVICE), but the Ray cluster has no "
                "GPU. Set NEWSQA_DEVICE=auto or cpu, or add GPU nodes."
            )
        room = have.gpus if use_gpus else have.cpus
        wanted = self.wanted or (have.gpus if use_gpus else len(have.nodes))
        count = max(1, min(wanted, room))
        if count < wanted:
            kind = "GPU" if use_gpus else "CPU"
            print(
                f"ray: {wanted} workers asked for, the cluster has {room} {kind}(s): {count}",
                file=sys.stderr,
            )
        options: dict[str, Any] = {
            "num_cpus": 1,
            "max_restarts": 0,  # see the module doc: lost actors are replaced, not restarted
            "scheduling_strategy": "SPREAD",
        }
        if use_gpus:
            options["num_gpus"] = 1
        # Each actor sees its own GPU as cuda:0 (Ray sets CUDA_VISIBLE_DEVICES).
        worker_settings = self.settings.model_copy(update={"device": "cuda" if use_gpus else "cpu"})
        return count, options, worker_settings

    @contextmanager
    def pool(self) -> Iterator[None]:
        """The actors, started (model loaded and checked) for the block, stopped after it."""
        kept = self.keep_alive
        self.keep_alive = True
        try:
            self._start()
            yield
        finally:
            self.keep_alive = kept
            if not kept:
                self.close()

    def _start(self) -> None:
        if self._make is not None:
            return
        ray = _ray()
        count, options, worker_settings = self._plan()
        actor = ray.remote(EmbedWorker).options(**options)
        args = (worker_settings, self.model, self.identity.checksum, self.tokenizer_fingerprint)
        self._make = lambda: actor.remote(*args)
        starting = [self._make() for _ in range(count)]
        try:
            infos = _get(
                [a.info.remote() for a in starting],
                "starting the embedding workers",
                timeout=START_TIMEOUT_S,
            )
        except BaseException:
            for a in starting:
                ray.kill(a)
            self._make = None
            raise
        self._live, self.size = starting, count
        self.stats.workers += infos
        self._batch_size = infos[0]["batch_size"]
        if infos[0]["dimension"] != self.identity.dimension:
            self.close()
            raise ClusterError(
                f"the workers' model computes {infos[0]['dimension']} dimensions, the "
                f"driver's records {self.identity.dimension}: install the same model everywhere."
            )

    def close(self) -> None:
        """Stop the actors (they would also end with the driver's job)."""
        if self._make is None:
            return
        ray = _ray()
        for a in self._live:
            ray.kill(a)
        self._live, self._make = [], None

    # ----------------------------------------------------------------- encoding

    def encode(self, texts: list[str], progress: bool) -> tuple[np.ndarray, list[list[str]]]:
        if not texts:
            return np.zeros((0, self.identity.dimension), dtype=np.float32), []
        self._start()
        try:
            return self._encode(texts, progress)
        finally:
            if not self.keep_alive:
                self.close()

    def _encode(self, texts: list[str], progress: bool) -> tuple[np.ndarray, list[list[str]]]:
        # The batches of an in-process build: all texts sorted by length (stable), cut every
        # batch_size; each actor call is one such batch, so padding, and the vectors, agree.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        size = self._batch_size
        starts = list(range(0, len(texts), size))
        batches = [[texts[i] for i in order[s : s + size]] for s in starts]
        vectors = np.empty((len(texts), self.identity.dimension), dtype=np.float32)
        tokens: list[list[str]] = [[] for _ in texts]
        with tqdm(
            total=len(texts), desc="embedding (ray)", unit="passage", disable=not progress
        ) as bar:
            for j, (vecs, toks) in self._run(batches):
                rows = order[starts[j] : starts[j] + len(vecs)]
                vectors[rows] = vecs
                for row, t in zip(rows, toks, strict=True):
                    tokens[row] = t
                bar.update(len(vecs))
        self.stats.texts += len(texts)
        self.stats.batches += len(batches)
        return vectors, tokens

    def _run(self, batches: list[list[str]]) -> Iterator[tuple[int, Any]]:
        """Yield (index, result) of every batch, as they finish, over the live actors; a lost
        actor's batches go back in the queue, and a replacement is started."""
        ray = _ray()
        todo = deque(range(len(batches)))
        running: dict = {}  # result ref -> (actor, batch index)
        starting: dict = {}  # info ref -> actor being started as a replacement
        load = {a: 0 for a in self._live}
        try:
            while todo or running:
                for a in sorted(self._live, key=lambda x: load[x]):
                    while todo and load[a] < BATCHES_PER_WORKER:
                        j = todo.popleft()
                        running[a.encode.remote(batches[j])] = (a, j)
                        load[a] += 1
                if not running and not starting:
                    raise ClusterError(
                        f"all embedding workers were lost ({self.stats.lost} in this job) and "
                        "no replacement could start; the index was not changed. Check the "
                        "cluster (ray status) and run the command again."
                    )
                timeout = None if running else START_TIMEOUT_S
                done, _ = ray.wait([*running, *starting], num_returns=1, timeout=timeout)
                if not done:
                    raise ClusterError(
                        f"no embedding worker could start in {START_TIMEOUT_S:.0f} s after "
                        f"{self.stats.lost} were lost; the index was not changed."
                    )
                ref = done[0]
                if ref in starting:
                    a = starting.pop(ref)
                    try:
                        self.stats.workers.append(ray.get(ref))
                    except ray.exceptions.RayActorError:
                        continue  # the replacement died too; the loop decides what is left
                    self._live.append(a)
                    load[a] = 0
                    continue
                a, j = running.pop(ref)
                load[a] -= 1
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayActorError:
                    todo.appendleft(j)
                    self.stats.rerun += 1
                    if a in self._live:  # first news of this loss
                        self._live.remove(a)
                        self.stats.lost += 1
                        ray.kill(a)
                        if self.stats.lost <= self.size:  # not forever: a batch may kill them
                            new = self._make()
                            starting[new.info.remote()] = new
                    continue
                except ray.exceptions.RayError as exc:
                    raise ClusterError(f"embedding failed on the cluster: {_cause(exc)}") from None
                yield j, result
        finally:
            for a in starting.values():  # replacements that never came up
                ray.kill(a)

    def build_info(self) -> dict[str, str]:
        ray = _ray()
        info = {"ray": ray.__version__, "workers": str(self.size)}
        for key in ("device", "gpu", "dtype"):
            # Each actor sees its own GPU as cuda:0: the kind of device says more.
            values = {
                str(w[key]).split(":")[0] if key == "device" else str(w[key])
                for w in self.stats.workers
                if key in w
            }
            if values:
                info[key] = ", ".join(sorted(values))
        return info

    def summary(self) -> str:
        s = self.stats
        nodes = sorted({w["node"] for w in s.workers})
        started = f"{self.size} worker(s) on {', '.join(nodes) or 'no node'}"
        lost = f"; {s.lost} lost, {s.rerun} batch(es) run again" if s.lost else ""
        return f"{s.texts} texts embedded in {s.batches} batches by {started}{lost}"


# --------------------------------------------------------------------------- the job


@contextmanager
def ray_indexer(
    address: str, settings: Settings, model: str | None = None, workers: int | None = None
) -> Iterator[tuple[Any, Callable[[], str]]]:
    """An :class:`~indexer.pipeline.Indexer` that reads and encodes on the Ray cluster at
    ``address`` (see :func:`connect`), and a function that summarises what the cluster did."""
    from indexer.pipeline import Indexer

    if workers is not None and workers < 1:
        raise ClusterError(f"--workers must be at least 1, not {workers}")
    with connect(address):
        encoder = RayEncoder(settings, model, workers)
        encoder.keep_alive = True  # one model load per job, however many encode calls
        reader = RayReader(chunking_of(settings), before=encoder.close)
        indexer = Indexer(settings, model=model, encoder=encoder, reader=reader)

        def summary() -> str:
            return f"ray: {reader.files_read} file(s) read in tasks; {encoder.summary()}"

        try:
            yield indexer, summary
        finally:
            encoder.close()


# --------------------------------------------------------------------------- helpers


def _get(refs, doing: str, timeout: float | None = None):
    """``ray.get``, with Ray's failures turned into a :class:`ClusterError` that says what
    failed (the error raised on the node, not Ray's wrapping of it)."""
    ray = _ray()
    try:
        return ray.get(refs, timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        raise ClusterError(
            f"{doing} did not finish in {timeout:.0f} s: the cluster may lack the resources "
            "(ray status; each embedding worker needs a CPU, or a GPU on a GPU cluster)."
        ) from None
    except ray.exceptions.RayError as exc:
        raise ClusterError(f"{doing} failed on the Ray cluster: {_cause(exc)}") from None


def _cause(exc: BaseException) -> str:
    """The error behind a Ray exception, in one line: a task's own exception, or the last
    line of Ray's message (an actor that died in its constructor carries the traceback)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, ClusterError):
        return str(cause)
    if isinstance(cause, Exception):
        return f"{type(cause).__name__}: {cause}"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _node_address() -> str:
    import ray

    return ray.util.get_node_ip_address()
