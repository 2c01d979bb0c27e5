"""Sweeps: every (codec, channel, parameter value, training eps, bits, data set, seed) point
evaluated once, one tidy CSV row per point, written as each point finishes.

Safe to interrupt: each row is appended with one ``write`` of a whole line and flushed to disk, so a
killed sweep (even ``kill -9``) loses at most the points in flight; ``resume=True`` drops a partial
last line, skips finished points and never writes a duplicate row.

What a codec needs before a point is evaluated (a learned codec's checkpoint: its
:meth:`~commsim.core.protocol.CodecEntry.requirement`) comes from the cache or is made on demand, once
per requirement and shared by all test values and seeds; the sweep asks each codec's registry entry
(:mod:`commsim.core.protocol`), never its kind. ``seed`` is the evaluation seed (encoder sampling and
channel noise); trainings use ``train_seed``.

Who computes the rows is an executor: :class:`LocalExecutor` (this process, or ``--jobs N`` worker
processes) or :class:`commsim.ray_executor.RayExecutor` (Ray tasks, on one machine or a cluster).
The driver alone writes the CSV, whichever executor computed the rows.
"""
from __future__ import annotations

import contextlib
import csv
import functools
import io
import math
import os
import signal
import socket
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol

import torch
from tqdm.auto import tqdm

from commsim import __version__
from commsim.channels import get_channel
from commsim.codecs import check as check_request, entry, obtain
from commsim.core.files import exclusive_writer
from commsim.core.metrics import METRICS
from commsim.core.protocol import (Budget, budget_reads, group_requirements, LEARNING_FIELDS, NoCodecHere, Request,
                                   Requirement)
from commsim.core.threads import available_cores, worker_init
from commsim.core.workers import check_jobs, worker_pool
from commsim.data import load_dataset
from commsim.pipeline import Pipeline, distortion_metric

KEY_COLUMNS = ["codec", "channel", "param", "value", "train_eps", "bits", "dataset", "seed"]
"""The columns that identify a point (``param`` is the swept channel parameter's name)."""


MAX_POINT_TIMEOUT = 7 * 24 * 3600.0
"""Largest ``--point-timeout`` (a week)."""
MAX_VALUES = 1000
"""The most values one swept parameter (or training-eps list) takes."""
MAX_POINTS = 10_000
"""The most points one sweep takes (codecs x values x training eps x seeds); each point evaluates a
codec on the test split (a separated scheme also chooses its code), so this is already hours of CPU."""


def parse_values(text: str, limit: int = MAX_VALUES) -> list[float]:
    """``"0.05:0.4:0.05"`` (start:stop:step, stop included) or ``"0.1,0.2,0.3"`` -> list of floats.

    Repeated values are kept once (a point is never evaluated twice); more than ``limit`` values are
    refused before any list is built."""
    text = str(text).strip()
    malformed = f"malformed range {text!r}; use START:STOP:STEP (e.g. 0.05:0.4:0.05) or a list 0.1,0.2"
    try:
        parts = [float(p) for p in (text.split(":") if ":" in text else [p for p in text.split(",") if p.strip()])]
    except ValueError:
        raise ValueError(malformed) from None
    if not all(math.isfinite(p) for p in parts):
        raise ValueError(f"range {text!r} holds a value that is not a finite number")
    if ":" in text:
        if len(parts) != 3 or parts[2] <= 0:
            raise ValueError(malformed)
        start, stop, step = parts
        span = (stop - start) / step
        if span + 1 > limit:
            count = f"{math.floor(span + 1e-9) + 1:,}" if math.isfinite(span) else "too many"
            raise ValueError(f"range {text!r} has {count} values, more than the {limit:,} "
                             "a sweep takes per parameter; use a larger STEP")
        count = int(round(span + 1e-9)) + 1
        parts = [round(start + i * step, 10) for i in range(max(count, 0)) if start + i * step <= stop + 1e-9]
    unique: dict[str, float] = {}
    for v in parts:
        unique.setdefault(f"{v:.10g}", v)  # the key point_key gives the value: each once, first kept
    values = list(unique.values())
    if not values:
        raise ValueError(f"range {text!r} is empty; use START:STOP:STEP with START <= STOP")
    if len(values) > limit:
        raise ValueError(f"{text[:40]!r}... has {len(values):,} values, more than the {limit:,} a sweep takes per parameter")
    return values


@dataclass
class SweepSpec:
    """What to sweep. ``train_eps=None`` means "same as the test value" (learned codecs, eps channels)."""

    codecs: list[str]
    channel: str
    param: str
    values: list[float]
    bits: int = 100
    dataset: str = "mnist"
    data_path: str | None = None
    seeds: int = 1
    train_eps: list[float] | None = None
    fixed: dict = field(default_factory=dict)
    epochs: int | None = None
    """The trainings' budget in epochs, or ``images`` (neither: the default budget, :data:`~commsim.core.protocol.DEFAULT_IMAGES`)."""
    train_seed: int = 0
    limit: int | None = None
    device: str = "cpu"
    estimator: str | None = None
    recipe: str | None = None
    images: int | None = None
    precision: str = "auto"
    point_timeout: float | None = None
    """Seconds one point's evaluation may take (``None``: no limit); a point over it stops the sweep
    with one line (:class:`PointTimeout`), the finished rows kept."""

    def __post_init__(self):
        self.budget()  # a bad budget fails here
        if self.point_timeout is not None and not 0 < self.point_timeout <= MAX_POINT_TIMEOUT:
            raise ValueError(f"--point-timeout must be in (0, {MAX_POINT_TIMEOUT:g}] seconds, got {self.point_timeout:g}")
        self.codecs = list(dict.fromkeys(c.strip() for c in self.codecs if c.strip()))  # each codec once
        if not self.codecs:
            raise ValueError("--codec: no codec to sweep; give comma-separated names, e.g. necst,iabf")

    def check(self) -> None:
        """Every check that needs no data and no training (the CLI calls it before any work): the
        channel and its parameters at every value, the bits and budget of every codec, the point count."""
        channel = get_channel(self.channel)
        if self.param not in channel.params:
            raise ValueError(f"channel {self.channel!r} has no parameter {self.param!r}; it has {', '.join(channel.params)}")
        if self.param in self.fixed:
            raise ValueError(f"--param {self.param} is swept; do not fix it with --param too")
        for value in self.values:
            channel.check_params({**self.fixed, self.param: value}, torch.zeros(1, 1))
        checked = set()
        for point in self.points():  # each codec at each training eps (the codec's own rules, e.g. its range)
            if (point["codec"], point["train_eps"]) not in checked:
                checked.add((point["codec"], point["train_eps"]))
                check_request(point["codec"], self.request(point))

    def budget(self, train_eps: float | None = None) -> Budget:
        """What the sweep's codecs may spend on learning (``train_eps``: the point's training eps)."""
        return Budget(epochs=self.epochs, images=self.images, seed=self.train_seed, recipe=self.recipe,
                      estimator=self.estimator, train_eps=train_eps, precision=self.precision)

    def request(self, point: dict) -> Request:
        """The codec request of one point."""
        return Request(dataset=self.dataset, bits=self.bits, channel=self.channel,
                       params={**self.fixed, self.param: point["value"]}, seed=point["seed"],
                       budget=self.budget(point["train_eps"]), device=self.device, data_path=self.data_path)

    def settings(self, data: str | None) -> dict[str, str]:
        """The sweep's settings that change a row but are not in its key (:data:`KEY_COLUMNS`), as text
        for the ``sweep`` column; ``data`` is the data's :attr:`~commsim.data.ImageSource.identity`. A
        resumed CSV must have been made with the same (:func:`check_resumable`)."""
        text = lambda v: "" if v is None else f"{v:g}" if isinstance(v, float) else str(v)
        return {"epochs": text(self.epochs), "images": text(self.images), "precision": text(self.precision),
                "train_seed": text(self.train_seed), "limit": text(self.limit),
                "recipe": text(self.recipe), "estimator": text(self.estimator), "data": text(data),
                "fixed": ";".join(f"{k}={v:g}" for k, v in sorted(self.fixed.items()))}

    def size(self) -> int:
        """The number of points (at most; repeated codecs or values count once in :meth:`points`),
        computed without building them."""
        total = 0
        for codec in self.codecs:
            total += len(entry(codec).train_eps_values(self.param, self.values[0], self.train_eps)) * len(self.values) * self.seeds
        return total

    def points(self) -> list[dict]:
        """Every point once, in order; more than :data:`MAX_POINTS` are refused before any is built."""
        size = self.size()
        if size > MAX_POINTS:
            raise ValueError(f"the sweep has {size:,} points (codecs x values x training eps x seeds), more than the "
                             f"{MAX_POINTS:,} one sweep takes; split it or use fewer values or seeds")
        out, seen = [], set()
        for codec in self.codecs:
            for value in self.values:
                for train_eps in entry(codec).train_eps_values(self.param, value, self.train_eps):
                    for seed in range(self.seeds):
                        point = {"codec": codec, "channel": self.channel, "param": self.param, "value": value,
                                 "train_eps": train_eps, "bits": self.bits, "dataset": self.dataset, "seed": seed}
                        if point_key(point) not in seen:
                            seen.add(point_key(point))
                            out.append(point)
        return out


def cell_key(value) -> str:
    """A CSV cell as it identifies a row: numbers by value (``0.1`` = ``"0.10"``), empty and ``None`` as
    ``""``, anything else as text."""
    if value is None or value == "":
        return ""
    try:
        return f"{float(value):.10g}"
    except (TypeError, ValueError):
        return str(value)


def point_key(row: dict) -> tuple:
    return tuple(cell_key(row[k]) for k in KEY_COLUMNS)


GROUP_COLUMNS = ("channel", "param", "bits", "dataset")
"""The key columns one sweep holds fixed: rows that differ in them are another sweep's points."""


def read_complete_rows(path: Path, required: list[str] = KEY_COLUMNS) -> list[dict]:
    """The complete rows of a results CSV written by :class:`RowWriter`, for ``--resume``.

    A file that is not CSV text or whose header lacks a ``required`` column is refused with a
    ``ValueError`` naming it, and left as it is. A last line without its newline is a write cut short:
    if it holds as many fields as the header it is a whole row whose newline was lost (the newline is
    added and the row kept), else it is cut off the file."""
    if not path.exists():
        return []
    data = path.read_bytes()
    refuse = f"{path} is not a results CSV of this command"
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise ValueError(f"{refuse} (not text); choose another --out") from None
    lines = text.splitlines(keepends=True)
    try:
        header = next(csv.reader(lines[:1]), [])
    except csv.Error:
        header = []
    missing = [c for c in required if c not in header]
    if lines and missing:
        raise ValueError(f"{refuse} (its header lacks {missing[0]!r}); choose another --out")
    if lines and not lines[-1].endswith("\n"):
        try:
            fields = next(csv.reader([lines[-1]]), [])
        except csv.Error:
            fields = []
        with open(path, "r+b") as fh:
            if len(lines) > 1 and len(fields) == len(header):
                fh.seek(0, os.SEEK_END)
                fh.write(b"\n")
                lines[-1] += "\n"
            else:
                fh.truncate(len(data) - len(lines[-1].encode()))
                lines = lines[:-1]
    return list(csv.DictReader(io.StringIO("".join(lines))))


def read_finished(path: Path) -> set[tuple]:
    """Keys of the complete rows in ``path`` (:func:`read_complete_rows`)."""
    return {point_key(r) for r in read_complete_rows(path)}


BUDGET_SETTINGS = {"epochs": "epochs", "images": "images", "precision": "precision", "train_seed": "seed",
                   "recipe": "recipe", "estimator": "estimator"}
"""The :meth:`SweepSpec.settings` that are :class:`Budget` fields (setting -> field); the others (limit,
data, fixed params) change every codec's rows."""


def encode_settings(settings: dict[str, str]) -> str:
    """The ``sweep`` cell: ``key=value`` pairs joined by ``|`` (values may hold ``;`` and ``=``)."""
    return "|".join(f"{k}={v}" for k, v in settings.items())


def check_resumable(spec: SweepSpec, rows: list[dict], settings: dict[str, str], path: Path) -> None:
    """Raise ``ValueError`` naming the first setting in which a row of ``path`` differs from this sweep
    among the rows of the same channel, swept parameter, bits and data set (their ``sweep`` cell: the
    settings that change a row but are not in the key; rows written before that column existed are not
    checked). Rows of other channels, bits or data sets are other points (their key differs) and may
    share a CSV, as the README's example does. A budget setting is compared only in the rows of codecs
    that read it (:func:`~commsim.core.protocol.budget_reads`): a separated scheme's row made beside
    100-epoch learned codecs resumes in a sweep of another budget."""
    mine = [cell_key(v) for v in (spec.channel, spec.param, spec.bits, spec.dataset)]
    reads = {}
    for row in rows:
        cell = row.get("sweep") or ""
        if not cell or [cell_key(row.get(c)) for c in GROUP_COLUMNS] != mine:
            continue
        codec = row.get("codec") or ""
        if codec not in reads:
            try:
                reads[codec] = budget_reads(entry(codec))
            except ValueError:  # a codec no longer registered: compare everything
                reads[codec] = LEARNING_FIELDS
        old = dict(item.partition("=")[::2] for item in cell.split("|"))
        for field_name, value in settings.items():
            if field_name in BUDGET_SETTINGS and BUDGET_SETTINGS[field_name] not in reads[codec]:
                continue  # a budget field this codec does not read
            if old.get(field_name, value) != value:
                shown = {"fixed": "fixed params", "data": "data (content fingerprint)"}.get(field_name, field_name)
                raise ValueError(f"{path} was made by a sweep with {shown} = {old[field_name] or 'default'!r}, this one "
                                 f"has {value or 'default'!r}; resume with the same options or choose another --out")


class RowWriter:
    """Appends whole CSV lines with one ``os.write`` each, fsynced (the header once)."""

    def __init__(self, path: Path, columns: list[str]):
        self.path = path
        self.columns = columns
        new = not path.exists() or path.stat().st_size == 0
        if not new:  # resuming: keep the file's own columns (one written by an older version may lack some)
            with open(path, newline="") as fh:
                self.columns = next(csv.reader(fh), None) or columns
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if new:
            self._write(dict(zip(columns, columns)))

    def _write(self, row: dict):
        buf = io.StringIO()
        csv.DictWriter(buf, self.columns, extrasaction="ignore", lineterminator="\n").writerow(row)
        os.write(self.fd, buf.getvalue().encode())
        os.fsync(self.fd)

    def write(self, row: dict):
        self._write({c: row.get(c, "") for c in self.columns})

    def close(self):
        os.close(self.fd)


METRIC_COLUMNS = [f"{m}{s}" for m in METRICS for s in ("", "_low", "_high", "_count")]
COLUMNS = KEY_COLUMNS + ["metric"] + METRIC_COLUMNS + ["fixed_params", "wall_seconds", "device", "host", "commsim_version",
                                                       "checkpoint", "checkpoint_sha256", "note", "train_config",
                                                       "channel_code", "train_threads", "sweep"]


class PointTimeout(ValueError):
    """A point that ran longer than ``--point-timeout``: one line naming it."""


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str) -> Iterator[None]:
    """Raise :class:`PointTimeout` in the block after ``seconds`` (a real-time timer; only in the main
    thread, where signals arrive: elsewhere, and with ``None``, no limit)."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise PointTimeout(f"{what} took more than {seconds:g} s (--point-timeout); a user channel that hangs? "
                           "fix it or raise the limit")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def evaluate_point(point: dict, spec: SweepSpec, artifact: str | Path | None = None) -> dict:
    """Evaluate one point (in this process, a worker process or a Ray task) and return its CSV row,
    within ``spec.point_timeout`` seconds.

    The codec's requirement (e.g. a learned codec's checkpoint) is ``artifact`` (a file named as its
    cache entry), else the cached file."""
    what = f"point {point['codec']} {point['param']}={point['value']:g} seed {point['seed']}"
    with time_limit(spec.point_timeout, what):
        return _evaluate_point(point, spec, artifact)


def _evaluate_point(point: dict, spec: SweepSpec, artifact: str | Path | None = None) -> dict:
    """:func:`evaluate_point` without the time limit."""
    start = time.perf_counter()
    source = load_dataset(spec.dataset, spec.data_path)
    channel = get_channel(spec.channel)
    request = spec.request(point)
    if artifact is None:
        requirement = entry(point["codec"]).requirement(request, source)
        if requirement is not None:
            artifact = requirement.find()
            if artifact is None:
                raise RuntimeError(f"{requirement.describe()} is not in the cache: the executor did not prepare it")
    common = {"metric": distortion_metric(source), "device": str(spec.device), "host": socket.gethostname(),
              "commsim_version": __version__}
    try:
        codec = entry(point["codec"]).codec_for(request, source, Path(artifact) if artifact else None)
    except NoCodecHere as exc:  # e.g. no image fits the budget: a finished point with no distortion
        return {**point, **common, "note": str(exc), "wall_seconds": round(time.perf_counter() - start, 3)}
    result = Pipeline(source, codec, channel).evaluate("test", seed=point["seed"], limit=spec.limit, **request.params)
    return {**point, **common, **result.row(), "fixed_params": ";".join(f"{k}={v}" for k, v in sorted(spec.fixed.items())),
            "wall_seconds": round(time.perf_counter() - start, 3), **codec.row_fields()}


def point_requirements(spec: SweepSpec, points: list[dict]) -> list[Requirement | None]:
    """The requirement of each point's codec (``None`` where it needs nothing), in the points' order."""
    source = load_dataset(spec.dataset, spec.data_path)
    return [entry(p["codec"]).requirement(spec.request(p), source) for p in points]


def requirements(spec: SweepSpec, points: list[dict]) -> dict[str, Requirement]:
    """The requirements of the points' codecs, each once (by key), in the points' order."""
    out: dict[str, Requirement] = {}
    for requirement in point_requirements(spec, points):
        if requirement is not None:
            out.setdefault(requirement.key, requirement)
    return out


def missing_requirements(spec: SweepSpec, points: list[dict]) -> list[Requirement]:
    """The requirements the points need that the cache does not hold yet."""
    return [r for r in requirements(spec, points).values() if r.find() is None]


def cost_notice(points: list[dict], todo: list[dict], missing: list[Requirement], jobs: int) -> str:
    """One line saying what a sweep will do: points, the ``missing`` requirements to make (trainings),
    and a rough time."""
    workers = max(1, min(jobs, len(missing) or 1))
    seconds = sum(r.seconds() for r in missing) / workers
    text = f"sweep: {len(points)} points ({len(todo)} to run), {len(missing)} codecs to train"
    if missing:
        text += (f" (up to about {seconds / 60:.0f} min on {workers} core{'s' if workers > 1 else ''}; "
                 "--jobs N trains N at once)")
    return text


def make_one(requirement: Requirement, progress: bool = False) -> Path:
    """(In this process or a worker) make one requirement into the cache, once even when other
    processes ask for it at the same time."""
    return obtain(requirement, progress=progress)[0]


def make_group(group: list[Requirement], progress: bool = False) -> list[Path]:
    """(In this process or a worker) make a group of :func:`~commsim.core.protocol.group_requirements`
    into the cache: one requirement as :func:`make_one`, several with their ``make_group`` (e.g. one
    batched ensemble of trainings)."""
    if len(group) == 1:
        return [make_one(group[0], progress)]
    return type(group[0]).make_group(group, progress=progress)


MAX_MEMBERS = 36
"""The most trainings one task stacks into one ensemble (memory: a NECST member holds about 6 MB of weights
and Adam state, plus its activations)."""


def prepare(missing: list[Requirement], executor: "Executor", progress: bool = True) -> None:
    """Make every missing requirement into the cache, as the executor runs tasks (:meth:`Executor.map`):
    requirements that can be made together (a sweep's trainings of one codec) as groups, one per worker."""
    if not missing:
        return
    bar = tqdm(total=len(missing), desc="training", unit="model", disable=not progress)
    groups = group_requirements(missing, parts=getattr(executor, "jobs", 1), most=MAX_MEMBERS)
    for group, _ in executor.map(make_group, groups):
        bar.update(len(group))
    bar.close()


class Executor(Protocol):
    """Computes a sweep's rows, requirements (trainings) first: :class:`LocalExecutor` or
    :class:`commsim.ray_executor.RayExecutor` (:func:`commsim.ray_executor.executor_from_options` makes
    either from the command line's options)."""

    def device_for(self, requested: str) -> str:
        """The device the points run on, given the ``--device`` asked for (``ValueError`` if it cannot)."""

    def map(self, function: Callable, items: list, may_start: Callable[[], bool] | None = None,
            cpus: Callable[[object], float] | None = None,
            failure: Callable[[object], contextlib.AbstractContextManager] | None = None) -> Iterator[tuple[object, object]]:
        """``(item, function(item))`` for each item as it finishes, in any order: the one way commsim runs
        independent tasks (a sweep's trainings and points, the benchmarks' runs). Items start in order
        while ``may_start()`` holds (``None``: always; the others are not run); ``cpus(item)`` is the CPUs
        a task holds where the executor schedules by CPUs (Ray). A task that raises ends the iteration
        with its error, raised inside ``failure(item)`` if given (e.g. :func:`point_failure`, naming the
        item); leaving early ends every process and task started."""

    def session(self, spec: SweepSpec, points: list[dict], todo: list[dict],
                progress: bool) -> contextlib.AbstractContextManager[Iterator[dict]]:
        """A context whose value yields the rows of ``todo`` (of ``points``) as they finish, in any
        order. Entering it does the checks that may fail (before the CSV is touched or anything is
        printed), then with ``progress`` prints one line saying what the sweep will do, and the
        set-up; leaving it, even early or on an error, ends every process and task it started."""


class LocalExecutor:
    """Requirements first (:func:`prepare`: trainings into the cache), then the points in this
    process or in ``jobs`` single-threaded worker processes that die with it."""

    def __init__(self, jobs: int = 1):
        self.jobs = check_jobs(jobs, available_cores())

    def device_for(self, requested: str) -> str:
        """The device the points run on: the one asked for (``auto``: CUDA when there is one)."""
        return requested

    @contextlib.contextmanager
    def session(self, spec: SweepSpec, points: list[dict], todo: list[dict], progress: bool) -> Iterator[Iterator[dict]]:
        missing = missing_requirements(spec, todo)
        if progress:
            tqdm.write(cost_notice(points, todo, missing, self.jobs), file=sys.stderr)
        prepare(missing, self, progress)  # into the cache: nothing beside the CSV yet
        rows = self._rows(spec, todo)
        try:
            yield rows
        finally:
            rows.close()  # ends the worker pool now, even when the caller stopped early

    def map(self, function: Callable, items: list, may_start: Callable[[], bool] | None = None,
            cpus: Callable[[object], float] | None = None,
            failure: Callable[[object], contextlib.AbstractContextManager] | None = None) -> Iterator[tuple[object, object]]:
        """:meth:`Executor.map` in this process (``jobs`` 1) or ``jobs`` single-threaded worker processes."""
        queue, may_start = list(items), may_start or (lambda: True)
        failure = failure or (lambda item: contextlib.nullcontext())
        if self.jobs <= 1 or len(queue) <= 1:
            while queue and may_start():
                item = queue.pop(0)
                with failure(item):
                    result = function(item)
                yield item, result
            return
        running = {}
        with worker_pool(min(self.jobs, len(queue)), initializer=worker_init) as pool:
            while queue or running:
                while queue and len(running) < self.jobs and may_start():
                    item = queue.pop(0)
                    running[pool.submit(function, item)] = item
                if not running:
                    return
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    item = running.pop(future)
                    with failure(item):
                        result = future.result()
                    yield item, result

    def _rows(self, spec: SweepSpec, todo: list[dict]) -> Iterator[dict]:
        for _, row in self.map(functools.partial(evaluate_point, spec=spec), todo, failure=point_failure):
            yield row


class PointFailed(ValueError):
    """A point whose evaluation raised something other than a user error: one line naming the point
    and the error (``__cause__`` holds it, with a worker's traceback)."""


@contextlib.contextmanager
def point_failure(point: dict) -> Iterator[None]:
    """Turn an unexpected exception of one point (here or in a worker process) into :class:`PointFailed`;
    user errors (``ValueError``, ``OSError``) pass as they are."""
    try:
        yield
    except (ValueError, OSError):
        raise
    except Exception as exc:  # noqa: BLE001 - one line instead of a worker's many-line traceback
        detail = str(exc).splitlines()[0] if str(exc).strip() else ""
        raise PointFailed(f"point {point['codec']} {point['param']}={point['value']:g} seed {point['seed']} failed: "
                          f"{type(exc).__name__}: {detail} (`commsim --traceback ...` shows where)") from exc


def run_sweep(spec: SweepSpec, out_csv: str | Path, resume: bool = False, jobs: int = 1, progress: bool = True,
              executor: Executor | None = None) -> Path:
    """Run every point of ``spec`` not yet in ``out_csv``; return the CSV path. ``executor`` computes
    the rows (default: :class:`LocalExecutor` with ``jobs`` processes); this process writes them."""
    executor = executor or LocalExecutor(jobs)
    out_csv = Path(out_csv)
    spec.check()
    points = spec.points()
    if out_csv.exists() and not resume:
        raise FileExistsError(f"{out_csv} exists; pass --resume to continue it or choose another --out")
    settings = spec.settings(load_dataset(spec.dataset, spec.data_path).identity)
    with exclusive_writer(out_csv):  # one writer per CSV: a second sweep of the same file is refused
        rows_before = read_complete_rows(out_csv) if resume else []
        check_resumable(spec, rows_before, settings, out_csv)
        finished = {point_key(r) for r in rows_before}
        todo = [p for p in points if point_key(p) not in finished]
        with executor.session(spec, points, todo, progress) as rows:
            out_csv.parent.mkdir(parents=True, exist_ok=True)
            writer = RowWriter(out_csv, COLUMNS)
            bar = tqdm(total=len(points), initial=len(points) - len(todo), desc="sweep", unit="point", disable=not progress)
            try:
                for row in rows:
                    writer.write({**row, "sweep": encode_settings(settings)})
                    bar.update()
            finally:
                bar.close()
                writer.close()
    return out_csv
