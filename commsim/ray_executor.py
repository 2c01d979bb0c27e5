"""Sweeps (and benchmark trainings) as Ray tasks: on this machine or on a Ray cluster.

:class:`RayCluster` is the one place that talks to Ray: it validates the resource options before
anything starts, checks that ``address`` answers within seconds, starts an embedded quiet Ray
(``ray.init``: no dashboard, workers' output not echoed, its files in a short ``/tmp`` folder, shut
down and removed on exit) or joins a cluster, refuses tasks that no node could ever run (e.g. GPUs
per task on a cluster without GPUs: Ray would wait for them forever), and turns a task that raised
into one :class:`TaskFailed` line. Tasks that die with their process (a killed or crashed worker)
are retried by Ray (``max_retries``).

:class:`RayExecutor` runs a sweep on it (see :class:`commsim.sweep.Executor`): each training the
points need is a task, and each point a task whose argument is its codec's training (Ray starts it
once the training is done). No shared filesystem is assumed: a training runs in a worker-local
temporary folder and returns the checkpoint file's bytes, metadata and sha256 through Ray's object
store; the driver checks the hash and writes the file into its own cache under the entry name
:func:`commsim.learned.zoo.cached_or_trained` would use (so a later sweep, local or not, finds it).
Checkpoints already in the driver's cache are put into the object store once and shared by their
points. Evaluations verify the hash, load the codec from a worker-local copy and return the row the
local executor would write (same ``checkpoint`` and ``checkpoint_sha256``); the driver alone writes
the CSV.

Ray stays optional: it is imported when a session starts, never when this module is imported.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

from tqdm.auto import tqdm

from commsim.core.files import atomic_write
from commsim.core.threads import available_cores, worker_init
from commsim.core.workers import reaped_with_this_process
from commsim.core.protocol import Requirement, group_requirements
from commsim.core.registry import CODECS, register_codec
from commsim.sweep import MAX_MEMBERS, LocalExecutor, SweepSpec, evaluate_point, missing_requirements, point_requirements

INSTALL_HINT = "Ray is not installed; install it with `pip install 'commsim[ray]'` (or `pip install 'ray>=2.9'`)"
CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a cluster address to answer before giving up (a clear error, not a hang)."""
MAX_RETRIES = 3
"""Times Ray reruns a task whose worker process died (killed, out of memory, node lost)."""
MAX_CPUS_PER_TASK = 1024
MAX_GPUS_PER_TASK = 64
OBJECT_STORE_BYTES = 256 * 2**20
"""Object store of an embedded Ray: checkpoints and rows are small (a 100-bit IABF is about 1 MB)."""


class TaskFailed(ValueError):
    """A task that raised on a worker (or whose retries ran out): one line naming the task and the error."""


class RayNotInstalled(ValueError):
    """``--executor ray`` without Ray installed."""


def import_ray():
    """The ``ray`` module, or :class:`RayNotInstalled` with the command that installs it."""
    try:
        import ray
    except ImportError:
        raise RayNotInstalled(INSTALL_HINT) from None
    return ray


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checkpoint_blob(path: str | Path) -> dict:
    """A requirement's file (a checkpoint) as it travels through the object store: name, bytes and sha256."""
    path = Path(path)
    data = path.read_bytes()
    return {"name": path.name, "bytes": data, "sha256": sha256_hex(data)}


def check_blob(blob: dict) -> None:
    """Refuse a file whose bytes do not match its sha256, or whose name is not a bare file name."""
    if sha256_hex(blob["bytes"]) != blob["sha256"]:
        raise ValueError(f"checkpoint {blob['name']} arrived corrupt (sha256 mismatch); rerun the sweep")
    if Path(blob["name"]).name != blob["name"] or blob["name"] in ("", ".", ".."):
        raise ValueError(f"checkpoint name {blob['name']!r} is not a cache entry name")


def store_checkpoint(blob: dict, expected: Path) -> Path:
    """Write a checkpoint that came from a worker into this machine's cache (atomically), at ``expected``."""
    check_blob(blob)
    if blob["name"] != expected.name:
        raise ValueError(f"a worker trained {blob['name']} where {expected.name} was asked for; "
                         "every node needs the same commsim version")
    with atomic_write(expected) as fh:
        fh.write(blob["bytes"])
    return expected


def ship_by_value(module_name: str) -> None:
    """Code from a module outside commsim (a user's codec, a test's toy codec, a benchmark script)
    travels to Ray workers by value (``cloudpickle.register_pickle_by_value``): workers that cannot
    import that module still run it."""
    module = sys.modules.get(module_name)
    if module is not None and not module.__name__.startswith("commsim") and module.__name__ != "builtins":
        import_ray().cloudpickle.register_pickle_by_value(module)


def shipped_entries(names) -> dict:
    """The registry entries of ``names`` as the tasks get them (user code by value: :func:`ship_by_value`)."""
    entries = {name: CODECS.get(name) for name in names}
    for found in entries.values():
        ship_by_value(type(found).__module__)
    return entries


def register_entries(entries: dict) -> None:
    """(In a task) register the driver's codec entries this worker does not have."""
    for name, found in entries.items():
        if name not in CODECS:
            register_codec(name)(found)


def _task(function: Callable, item, threads: int):
    """(A Ray task) ``function(item)`` with ``threads`` torch threads (:meth:`RayExecutor.map`)."""
    worker_init(threads)
    return function(item)


def train_task(group: list[Requirement], threads: int, entries: dict):
    """(A Ray task) make a group of requirements (:func:`~commsim.core.protocol.group_requirements`:
    one training, or trainings stacked as one ensemble) in a worker-local temporary folder and return
    each file as :func:`checkpoint_blob` (one return value per requirement: the task is submitted with
    ``num_returns=len(group)``); the worker's cache is never touched."""
    worker_init(threads)
    register_entries(entries)
    with tempfile.TemporaryDirectory(prefix="commsim-train-") as scratch:
        outs = [Path(scratch) / r.key for r in group]
        if len(group) == 1:
            paths = [group[0].make(out=outs[0], progress=False)[0]]
        else:
            paths = type(group[0]).make_group(group, outs=outs, progress=False)
        blobs = [{**checkpoint_blob(path), "host": socket.gethostname()} for path in paths]
    return blobs[0] if len(blobs) == 1 else blobs


def evaluate_task(point: dict, spec: SweepSpec, threads: int, entries: dict, blob: dict | None = None) -> dict:
    """(A Ray task) the CSV row of ``point``; its codec's requirement comes from ``blob`` (its training's
    result, resolved by Ray), checked and copied to a worker-local file named as its cache entry."""
    worker_init(threads)
    register_entries(entries)
    if blob is None:
        return evaluate_point(point, spec)
    check_blob(blob)
    with tempfile.TemporaryDirectory(prefix="commsim-eval-") as scratch:
        path = Path(scratch) / blob["name"]
        path.write_bytes(blob["bytes"])
        return evaluate_point(point, spec, artifact=path)


def parse_address(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``host:port`` or ``ray://host:port``; ``None`` for ``auto`` (Ray finds it)."""
    text = address.strip()
    if text == "auto":
        return None
    text = text.removeprefix("ray://")
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--ray-address {address!r} is not HOST:PORT, ray://HOST:PORT or auto "
                         "(the address `ray start --head` printed)")
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """A clear error within ``timeout`` seconds when nothing answers at ``address``."""
    target = parse_address(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout):
            pass
    except OSError as exc:
        raise ValueError(f"cannot reach a Ray cluster at {address} ({exc.strerror or exc or 'timed out'}); start one with "
                         "`ray start --head` and pass the address it prints (or auto on one of its nodes)") from None


@contextlib.contextmanager
def stderr_silenced() -> Iterator[None]:
    """File descriptor 2 (where Ray's C++ core logs) goes to /dev/null within the block."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def ray_settings(address: str | None) -> Iterator[None]:
    """Ray's environment settings for one session, each only where the user set none, and put back as
    they were when the session ends (nothing outlives it):

    - ``RAY_USAGE_STATS_ENABLED=0``: no prompt, no network call;
    - ``RAY_worker_niceness=0``: Ray starts its workers at niceness 15, and next to any other CPU-bound
      job they then get a few % of a core (a 4 s test took 66 s beside two trainings); commsim's tasks
      are the job: normal priority, as the local executor's workers have;
    - joining a cluster, ``RAY_gcs_server_port_wait_time_s``: an address that answers but is not a Ray
      head makes Ray retry once a second for a minute; a few tries only.
    """
    wanted = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_worker_niceness": "0"}
    if address is not None:
        wanted["RAY_gcs_server_port_wait_time_s"] = str(int(CONNECT_TIMEOUT))
    added = [name for name in wanted if name not in os.environ]
    os.environ.update({name: wanted[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@dataclasses.dataclass
class RayCluster:
    """Where and how tasks run. ``address=None``: an embedded Ray on this machine with ``num_cpus``
    CPUs (default: the cores this process may use); else a running cluster (``auto`` or HOST:PORT).
    Each task asks for ``cpus_per_task`` CPUs (its torch threads: the whole part, at least one) and
    ``gpus_per_task`` GPUs (fractions share a GPU; with any, the task runs on CUDA)."""

    address: str | None = None
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0
    num_cpus: int | None = None
    max_retries: int = MAX_RETRIES

    def __post_init__(self):
        if not (math.isfinite(self.cpus_per_task) and 0 < self.cpus_per_task <= MAX_CPUS_PER_TASK):
            raise ValueError(f"--cpus-per-task must be in (0, {MAX_CPUS_PER_TASK}], got {self.cpus_per_task:g}; "
                             "a task needs some CPU (fractions such as 0.5 share a core)")
        if not (math.isfinite(self.gpus_per_task) and 0 <= self.gpus_per_task <= MAX_GPUS_PER_TASK):
            raise ValueError(f"--gpus-per-task must be in [0, {MAX_GPUS_PER_TASK}], got {self.gpus_per_task:g}")
        if self.num_cpus is not None and self.num_cpus < 1:
            raise ValueError(f"an embedded Ray needs at least one CPU, got {self.num_cpus}")
        if self.address is not None:
            parse_address(self.address)

    @property
    def threads(self) -> int:
        """Torch threads of each task."""
        return max(1, int(self.cpus_per_task))

    @property
    def device(self) -> str:
        return "cuda" if self.gpus_per_task > 0 else "cpu"

    def describe(self) -> str:
        where = f"Ray cluster {self.address}" if self.address else f"embedded Ray ({self.num_cpus or available_cores()} CPUs)"
        gpus = f", {self.gpus_per_task:g} GPU" if self.gpus_per_task else ""
        return f"{where}, {self.cpus_per_task:g} CPU{gpus} per task"

    @contextlib.contextmanager
    def connect(self) -> Iterator:
        """Start or join Ray (checked first), yield the ``ray`` module, shut it down on exit. Inside a
        Ray session the caller started (``ray.init``), run there and leave it running."""
        ray = import_ray()
        if self.address is not None:
            check_reachable(self.address)
        if ray.is_initialized():
            self.check_resources(ray)
            yield ray
            return
        quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR", "configure_logging": True}
        with contextlib.ExitStack() as stack:
            stack.enter_context(ray_settings(self.address))  # restored when the session ends
            if self.address is None:  # Ray's processes and folder end with this one, even after kill -9
                temp = tempfile.mkdtemp(prefix="commsim-ray-", dir="/tmp" if os.path.isdir("/tmp") else None)
                stack.enter_context(reaped_with_this_process(scratch=temp))  # (Ray's agents alone linger ~90 s)
            stack.callback(lambda: ray.shutdown() if ray.is_initialized() else None)
            if self.address is None:
                ray.init(num_cpus=self.num_cpus or available_cores(), object_store_memory=OBJECT_STORE_BYTES,
                         _temp_dir=temp, **quiet)
            else:
                # an address that answers but is not a Ray head (a web server, the dashboard's port) makes
                # Ray retry once a second, each with a C++ warning on stderr: a few tries (ray_settings), silenced
                try:
                    with stderr_silenced():
                        ray.init(address=self.address, **quiet)
                except (ConnectionError, RuntimeError) as exc:
                    causes = f"{exc} {exc.__cause__} {getattr(exc.__cause__, '__cause__', '')}"
                    hint = ("it asks for its token: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or copy the head's "
                            "~/.ray/auth_token)" if "AuthToken" in causes or "Authentication" in causes else
                            "give the address `ray start --head` printed (port 6379 by default)")
                    raise ValueError(f"cannot join a Ray cluster at {self.address} ({str(exc).splitlines()[0]}); {hint}") from None
            self.check_resources(ray)
            yield ray

    def check_resources(self, ray) -> None:
        """Refuse, before any task is submitted, tasks that no live node can hold (Ray would queue them forever)."""
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        fits = [r for r in nodes if r.get("CPU", 0) >= self.cpus_per_task and r.get("GPU", 0) >= self.gpus_per_task]
        if fits:
            return
        gpus = max((r.get("GPU", 0) for r in nodes), default=0)
        cpus = max((r.get("CPU", 0) for r in nodes), default=0)
        if self.gpus_per_task > gpus:
            raise ValueError(f"--gpus-per-task {self.gpus_per_task:g}: no node of the Ray cluster has "
                             f"{'a GPU' if not gpus else f'{self.gpus_per_task:g} GPUs (at most {gpus:g})'}; "
                             "use --gpus-per-task 0 (CPU) or add GPU nodes")
        raise ValueError(f"--cpus-per-task {self.cpus_per_task:g}: no node of the Ray cluster has that many CPUs "
                         f"(at most {cpus:g}); lower it")

    def slots(self, ray) -> int:
        """How many tasks the cluster runs at once (at least one)."""
        resources = ray.cluster_resources()
        slots = resources.get("CPU", 1) / self.cpus_per_task
        if self.gpus_per_task:
            slots = min(slots, resources.get("GPU", 0) / self.gpus_per_task)
        return max(1, int(slots + 1e-9))

    def remote(self, ray, function: Callable, **options):
        """``function`` as a Ray task with this cluster's resources per task and retries (``options``
        override them)."""
        defaults = {"num_cpus": self.cpus_per_task, "num_gpus": self.gpus_per_task, "max_retries": self.max_retries}
        return ray.remote(function).options(**{**defaults, **options})


def task_result(ray, ref, what: str, others=()):
    """``ray.get(ref)``; if the task failed, cancel ``others`` and raise :class:`TaskFailed` naming
    ``what`` and the error in one line."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        for other in others:
            with contextlib.suppress(Exception):
                ray.cancel(other, force=True)
        raise TaskFailed(f"{what} failed on a Ray worker: {task_error(exc)}") from None


def finished(ray, refs: list, describe: Callable[[object], str]) -> Iterator[tuple[object, object]]:
    """``(ref, result)`` for each task of ``refs`` as it finishes (:func:`task_result`: a failed task
    cancels the others and raises :class:`TaskFailed`, ``describe(ref)`` naming it)."""
    waiting = list(refs)
    while waiting:
        ready, waiting = ray.wait(waiting, num_returns=1)
        if waiting:
            more, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=0)
            ready += more
        for ref in ready:
            yield ref, task_result(ray, ref, describe(ref), waiting)


def task_error(exc: BaseException) -> str:
    """``Type: message`` of the user's exception inside a Ray error (or the Ray error's first line)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and not isinstance(cause, type(exc)):
        text = str(cause).strip().splitlines()
        return f"{type(cause).__name__}: {text[0] if text else ''}".strip(": ")
    lines = [l for l in str(exc).splitlines() if l.strip()]
    return f"{type(exc).__name__}: {lines[-1] if lines else ''}"[:300]


def task_spec(spec: SweepSpec, device: str) -> SweepSpec:
    """``spec`` as the tasks get it: on ``device``, with a user channel file and the data path made
    absolute (a worker's folder is not the driver's; the rows keep the names as given)."""
    module, sep, name = spec.channel.rpartition(":")
    channel = f"{os.path.abspath(module)}:{name}" if sep and module.endswith(".py") else spec.channel
    data_path = os.path.abspath(spec.data_path) if spec.data_path else spec.data_path
    return dataclasses.replace(spec, device=device, channel=channel, data_path=data_path)


class RayExecutor:
    """A sweep's trainings and points as Ray tasks (see the module doc)."""

    def __init__(self, cluster: RayCluster | None = None):
        self.cluster = cluster or RayCluster()

    def device_for(self, requested: str) -> str:
        """``"cpu"`` for the driver: the tasks' device follows ``gpus_per_task``."""
        if requested not in ("auto", self.cluster.device):
            raise ValueError(f"--device: with --executor ray the device follows --gpus-per-task ({self.cluster.device} here); "
                             f"pass --gpus-per-task 1 (or a fraction) for cuda")
        return "cpu"

    def map(self, function: Callable, items: list, may_start: Callable[[], bool] | None = None,
            cpus: Callable[[object], float] | None = None,
            failure: Callable[[object], contextlib.AbstractContextManager] | None = None) -> Iterator[tuple[object, object]]:
        """:meth:`commsim.sweep.Executor.map` as Ray tasks, as many at once as the cluster holds; a
        function from outside commsim (a benchmark script) travels by value."""
        queue, may_start = list(items), may_start or (lambda: True)
        failure = failure or (lambda item: contextlib.nullcontext())
        if not queue:
            return
        with self.cluster.connect() as ray:
            ship_by_value(function.__module__)  # the workers need not have that file
            slots, remotes, running = self.cluster.slots(ray), {}, {}
            while queue or running:
                while queue and len(running) < slots and may_start():
                    item = queue.pop(0)
                    need = max(self.cluster.cpus_per_task, cpus(item) if cpus else 0)
                    if need not in remotes:
                        remotes[need] = self.cluster.remote(ray, _task, num_cpus=need)
                    running[remotes[need].remote(function, item, self.cluster.threads)] = item
                if not running:
                    return
                ready, _ = ray.wait(list(running), num_returns=1)
                for ref in ready:
                    item = running.pop(ref)
                    with failure(item):
                        result = task_result(ray, ref, f"task {getattr(item, 'key', item)!s:.80}", list(running))
                    yield item, result

    @contextlib.contextmanager
    def session(self, spec: SweepSpec, points: list[dict], todo: list[dict], progress: bool) -> Iterator[Iterator[dict]]:
        if not todo:  # a finished sweep resumed: nothing to start Ray for
            yield iter(())
            return
        with self.cluster.connect() as ray:
            if progress:
                tqdm.write(f"sweep: {len(points)} points ({len(todo)} to run), {len(missing_requirements(spec, todo))} "
                           f"codecs to train, on {self.cluster.describe()}", file=sys.stderr)
            rows = self._rows(ray, task_spec(spec, self.cluster.device), todo, progress)
            try:
                yield rows
            finally:
                rows.close()

    def _rows(self, ray, spec: SweepSpec, todo: list[dict], progress: bool) -> Iterator[dict]:
        threads = self.cluster.threads
        evaluate = self.cluster.remote(ray, evaluate_task)
        entries = ray.put(shipped_entries(spec.codecs))
        needs = point_requirements(spec, todo)
        files, trainings, missing = {}, {}, {}
        for requirement in needs:
            if requirement is None or requirement.key in files or requirement.key in missing:
                continue
            cached = requirement.find()
            if cached:  # shipped once, shared by the points
                files[requirement.key] = ray.put(checkpoint_blob(cached))
            else:
                missing[requirement.key] = requirement
        # trainings that stack (one codec's) as ensembles, one group per slot of the cluster
        for group in group_requirements(list(missing.values()), parts=self.cluster.slots(ray), most=MAX_MEMBERS):
            refs = self.cluster.remote(ray, train_task, num_returns=len(group)).remote(group, threads, entries)
            for requirement, ref in zip(group, refs if len(group) > 1 else [refs]):
                files[requirement.key] = ref
                trainings[ref] = requirement
        points = {evaluate.remote(p, spec, threads, entries, files[r.key] if r is not None else None): p
                  for p, r in zip(todo, needs)}
        start = time.perf_counter()

        def describe(ref) -> str:
            if ref in trainings:
                return trainings[ref].describe()
            p = points[ref]
            return f"point {p['codec']} {p['param']}={p['value']:g} seed {p['seed']}"

        for ref, result in finished(ray, [*trainings, *points], describe):
            if ref in trainings:
                path = store_checkpoint(result, trainings[ref].cache_path())
                if progress:
                    tqdm.write(f"trained {path.name} on {result['host']} "
                               f"({time.perf_counter() - start:.0f} s into the sweep)", file=sys.stderr)
            else:
                yield result


def executor_from_options(kind: str = "local", jobs: int | None = None, address: str | None = None,
                          cpus_per_task: float | None = None, gpus_per_task: float | None = None, device: str = "auto"):
    """The executor of ``sweep --executor KIND`` with its options checked (and Ray's presence) before
    anything starts: :class:`~commsim.sweep.LocalExecutor` (``jobs`` processes) or :class:`RayExecutor`."""
    ray_options = {"--ray-address": address, "--cpus-per-task": cpus_per_task, "--gpus-per-task": gpus_per_task}
    if kind == "local":
        given = [flag for flag, value in ray_options.items() if value is not None]
        if given:
            raise ValueError(f"{given[0]} is an option of --executor ray")
        return LocalExecutor(jobs or 1)
    if kind != "ray":
        raise ValueError(f"unknown executor {kind!r}; choose local or ray")
    if jobs is not None:
        raise ValueError("--jobs is for --executor local; Ray runs as many tasks at once as its CPUs allow "
                         "(--cpus-per-task each)")
    executor = RayExecutor(RayCluster(address=address, cpus_per_task=1.0 if cpus_per_task is None else cpus_per_task,
                                      gpus_per_task=gpus_per_task or 0.0))
    executor.device_for(device)
    import_ray()
    return executor
