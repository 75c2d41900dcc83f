"""``ttsplan sample --ray``: the chunks of a run spread over a Ray cluster, one engine per actor.

:class:`RaySampler` is a :class:`~ttsplan.features.sampler.runner.ValidationSampler` whose pending chunks
(``batch_prompts`` prompts × ``k`` samples each) are sampled by Ray actors, each holding its own engine
built by ``factory(worker_index)`` (an ``hf`` engine per worker, the ``replay`` engine, an ``openai``
engine per worker against a list of servers, …). An actor builds the chunk's rows
(:func:`~ttsplan.features.sampler.rows.sample_row`: answers and grades) and returns them; the driver
writes each chunk as it arrives with :func:`~ttsplan.features.sampler.checkpoint.write_part`, under the
same names, run-parameter file, shard lock and provenance as a single-process run. Every sample is
seeded by (seed, prompt, sample index), so the table is the single-process run's table.

Failures: an actor whose process dies is restarted by Ray (``max_restarts``) and its calls retried
(``max_task_retries``); a chunk whose actor is gone for good is handed to a fresh actor, up to
``retries`` times. A killed driver loses at most the chunks in flight: rerunning the same command
skips every chunk on disk (0 rows lost or duplicated).

Ray is imported only inside the functions that need it (extra ``ray``).

>>> check_ray_address("local") is None
True
>>> parse_ray_address("ray://head:10001"), parse_ray_address("10.0.0.5")
(('head', 10001), ('10.0.0.5', 6379))
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import socket
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ttsplan.features.errors import TtsplanError
from ttsplan.features.grading import grade
from ttsplan.features.sampler.base import Engine, SamplerConfig
from ttsplan.features.sampler.checkpoint import package_versions, write_part
from ttsplan.features.sampler.rows import Grader, sample_row
from ttsplan.features.sampler.runner import ValidationSampler, chunk_metadata
from ttsplan.features.tasks import Prompt

#: ``factory(worker_index) -> Engine``: how each actor builds its own engine (must pickle).
EngineFactory = Callable[[int], Engine]
#: the cluster address that starts a fresh local Ray instance, and the one that joins this machine's cluster
LOCAL, AUTO = "local", "auto"
GCS_PORT, CLIENT_PORT = 6379, 10001
#: seconds to wait for a cluster address to answer before refusing it
CONNECT_TIMEOUT_S = 2.0
INSTALL_HINT = "Install it with `pip install 'ttsplan[ray]'`."


def ray_problem() -> str | None:
    """The message when Ray is not installed (looked up, not imported), or ``None``."""
    try:
        found = importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        found = False
    return None if found else f"--ray must have Ray installed, got no module ray. {INSTALL_HINT}"


def parse_ray_address(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``HOST[:PORT]`` (GCS, default 6379) or ``ray://HOST[:PORT]`` (Ray Client,
    default 10001); ``None`` when it is neither."""
    m = re.fullmatch(r"(ray://)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+)(?::(\d{1,5}))?/?", address.strip())
    if not m:
        return None
    host = m.group(2).strip("[]")
    port = int(m.group(3)) if m.group(3) else (CLIENT_PORT if m.group(1) else GCS_PORT)
    return (host, port) if 0 < port < 65536 else None


def _current_cluster() -> str | None:
    """The address ``ray.init(address="auto")`` would join: ``RAY_ADDRESS`` or this machine's running cluster."""
    env = os.environ.get("RAY_ADDRESS")
    if env:
        return env
    try:  # written by `ray start --head` (and by a running local instance)
        text = (Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray" / "ray_current_cluster").read_text().strip()
    except OSError:
        return None
    return text or None


def check_ray_address(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> str | None:
    """The problem with ``--ray ADDRESS`` (a quick TCP check, ``timeout_s`` at most), or ``None``.

    ``local`` starts a Ray instance on this machine; ``auto`` joins the one running here (``ray start
    --head``, or ``RAY_ADDRESS``); ``HOST:PORT`` / ``ray://HOST:PORT`` join a cluster's head.
    """
    what = ("--ray must be local, auto, HOST:PORT or ray://HOST:PORT of a running Ray cluster")
    address = address.strip()
    if address == LOCAL:
        return None
    target = address
    if address == AUTO:
        target = _current_cluster()
        if target is None or target == AUTO:
            return (f"{what}, got auto with no cluster running on this machine. Start one with `ray start --head`, "
                    "or pass --ray local.")
    hp = parse_ray_address(target)
    if hp is None:
        return f"{what}, got {address!r}. Pass e.g. --ray 10.0.0.5:6379."
    try:
        with socket.create_connection(hp, timeout=timeout_s):
            pass
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__).lower()
        shown = address if address == target else f"{address} ({target})"
        return (f"{what}, got {shown}, which did not answer within {timeout_s:g} s ({reason}). Start the cluster "
                "(`ray start --head`) or fix the address.")
    return None


def connect(address: str) -> bool:
    """Join (or, for ``local``, start) the Ray cluster at ``address``; returns whether this call initialised
    Ray (the caller then shuts it down). An already initialised Ray session is used as it is.

    Raises :class:`~ttsplan.features.errors.TtsplanError` with one message when Ray is missing or the
    cluster cannot be joined, before anything is written.
    """
    problem = ray_problem() or check_ray_address(address)
    if problem:
        raise TtsplanError(problem)
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict = {"log_to_driver": False, "logging_level": "ERROR"}
    if address.strip() == LOCAL:
        kwargs["include_dashboard"] = False
    else:
        kwargs["address"] = address.strip()
    try:
        ray.init(**kwargs)
    except Exception as exc:  # noqa: BLE001 - ConnectionError, version or auth mismatch, …: one message
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise TtsplanError(f"--ray must name a Ray cluster this process can join, got {address!r}: {first}. "
                           "Check the address and that the cluster runs the same Ray and Python versions.") from None
    return True


def disconnect() -> None:
    """Shut down the Ray session this process started with :func:`connect`."""
    import ray

    ray.shutdown()


def cluster_slots(num_gpus: float) -> int:
    """How many actors of one CPU (or ``num_gpus`` GPUs) the connected cluster holds at once."""
    import ray

    res = ray.cluster_resources()
    if num_gpus:
        return int(res.get("GPU", 0) // num_gpus)
    return max(1, int(res.get("CPU", 1)))


@dataclass
class ChunkResult:
    """What an actor returns for one chunk: its rows and the provenance of the process that sampled it."""

    rows: list[dict]
    engine_provenance: dict
    versions: dict
    worker: dict


class ChunkWorker:
    """The body of one Ray actor: builds its engine once, then samples chunks (rows graded here)."""

    def __init__(self, factory: EngineFactory, worker: int, config: SamplerConfig, config_name: str,
                 model_name: str, grader: Grader = grade):
        self.engine = factory(worker)
        self.config, self.config_name, self.model_name, self.grader = config, config_name, model_name, grader
        self.info = {"worker": worker, "host": socket.gethostname(), "pid": os.getpid()}
        self._provenance: dict | None = None

    def sample(self, part: list[Prompt]) -> ChunkResult:
        k = self.config.k
        completions = self.engine.generate(part, self.config)
        rows = []
        for p, cs in zip(part, completions):
            if len(cs) != k:
                raise RuntimeError(f"engine {self.engine.name} returned {len(cs)} completions for {p.id}, expected k={k}")
            rows += [sample_row(p, j, c, config=self.config_name, model=self.model_name,
                                keep_text=self.config.keep_text, grader=self.grader) for j, c in enumerate(cs)]
        if self._provenance is None:
            self._provenance = self.engine.provenance()
        return ChunkResult(rows, self._provenance, package_versions(), self.info)


def _error_line(text: str) -> str:
    """The exception line (``Type: message``) at the end of a Ray error text."""
    lines = [x.strip() for x in str(text).splitlines() if x.strip()]
    found = [x for x in lines if re.match(r"^[\w.]*(Error|Exception)\b.*?: ", x)]
    return (found or lines or ["unknown error"])[-1][:300]


def _user_error(exc: BaseException) -> TtsplanError | None:
    """The :class:`TtsplanError` an actor raised (in a chunk or while building its engine), unwrapped from
    Ray's error; ``None`` for any other error."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, TtsplanError):
        return TtsplanError(str(cause))
    line = _error_line(str(exc))
    m = re.match(r"^(?:ttsplan\.features\.errors\.)?(?:TtsplanError|SchemaError): (.*)$", line)
    return TtsplanError(m.group(1)) if m else None


class RaySampler(ValidationSampler):
    """A :class:`ValidationSampler` whose chunks are sampled by ``workers`` Ray actors (Ray must be
    connected first, e.g. with :func:`connect`).

    ``engine`` is the driver's copy (its name, model and ``preflight`` check; it samples nothing);
    ``factory(i)`` builds actor ``i``'s engine. ``num_cpus`` / ``num_gpus`` are each actor's resources;
    ``workers=None`` takes as many actors as the cluster holds at once (capped by the pending chunks).
    """

    def __init__(self, engine: Engine, config: SamplerConfig, factory: EngineFactory, *, workers: int | None = None,
                 num_cpus: float = 1, num_gpus: float = 0, max_restarts: int = 3, retries: int = 2,
                 in_flight: int = 2, grader: Grader = grade):
        super().__init__(engine, config, grader)
        self.factory, self.workers = factory, workers
        self.num_cpus, self.num_gpus = num_cpus, num_gpus
        self.max_restarts, self.retries, self.in_flight = max_restarts, retries, in_flight
        self._n_workers = 0

    def workers_label(self) -> int:
        return self._n_workers

    def _actor_count(self, pending: int) -> int:
        slots = self.workers if self.workers is not None else cluster_slots(self.num_gpus)
        if slots < 1:
            raise TtsplanError(f"--ray must reach a cluster with a GPU per worker for this engine, got "
                               f"{slots} GPU slot(s). Add GPU nodes, or sample on CPU.")
        return max(1, min(slots, pending))

    def sample_pending(self, pending: Sequence[tuple[Path, list[Prompt]]], meta: dict,
                       wrote: Callable[[Sequence[Prompt], Sequence[dict]], None]) -> None:
        if not pending:
            return
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        self._n_workers = n = self._actor_count(len(pending))
        actor_cls = ray.remote(ChunkWorker).options(num_cpus=self.num_cpus, num_gpus=self.num_gpus,
                                                    max_restarts=self.max_restarts,
                                                    max_task_retries=self.max_restarts)

        def spawn(i: int):
            return actor_cls.remote(self.factory, i, self.config, self.config_name, self.engine.model_name,
                                    self.grader)

        actors = [spawn(i) for i in range(n)]
        queue: deque[tuple[Path, list[Prompt]]] = deque(pending)
        attempts: dict[Path, int] = {}
        inflight: dict = {}  # object ref -> (path, part, actor slot, actor)
        busy = [0] * n

        def submit(slot: int) -> None:
            while queue and busy[slot] < self.in_flight:
                path, part = queue.popleft()
                inflight[actors[slot].sample.remote(part)] = (path, part, slot, actors[slot])
                busy[slot] += 1

        try:
            for slot in range(n):
                submit(slot)
            while inflight:
                [ref], _ = ray.wait(list(inflight), num_returns=1)
                path, part, slot, actor = inflight.pop(ref)
                if actor is actors[slot]:
                    busy[slot] -= 1
                try:
                    res: ChunkResult = ray.get(ref)
                except RayActorError as exc:  # the actor is gone for good: a fresh one takes its chunks
                    if getattr(exc, "actor_init_failed", False):  # its engine cannot be built: no retry helps
                        raise _user_error(exc) or TtsplanError(
                            f"the Ray workers must build their {self.engine.name} engine, got "
                            f"{_error_line(str(exc))}. Check that every node has the engine's extra and model.") from None
                    attempts[path] = attempts.get(path, 0) + 1
                    if attempts[path] > self.retries:
                        raise TtsplanError(f"the Ray workers must sample chunk {path.name}, got {attempts[path]} "
                                           f"worker failures on it (last: {_error_line(str(exc))}). "
                                           "Fix the cause and rerun the same command to resume.") from None
                    queue.appendleft((path, part))
                    if actor is actors[slot]:  # (its other chunks in flight fail too, and are requeued)
                        with contextlib.suppress(Exception):
                            ray.kill(actor, no_restart=True)
                        actors[slot], busy[slot] = spawn(slot), 0
                    submit(slot)
                    continue
                except RayTaskError as exc:
                    user = _user_error(exc)
                    if user is not None:
                        raise user from None
                    raise
                write_part(path, res.rows, chunk_metadata(meta, path, part, res.engine_provenance, res.versions,
                                                          ray={**res.worker, "workers": n, "ray": ray.__version__}))
                wrote(part, res.rows)
                submit(slot)
        finally:
            for a in actors:  # free the cluster's slots (an actor already dead cannot be killed again)
                with contextlib.suppress(Exception):
                    ray.kill(a, no_restart=True)


__all__ = ["AUTO", "LOCAL", "ChunkResult", "ChunkWorker", "EngineFactory", "RaySampler", "check_ray_address",
           "cluster_slots", "connect", "disconnect", "parse_ray_address", "ray_problem"]
