"""How many CPU threads torch may use: never more busy threads on the machine than cores.

Two processes with two torch threads each on two cores run about 4x slower than one, not 2x
(the threads spin-wait on each other). commsim therefore picks its thread count itself:

1. ``COMMSIM_THREADS=N`` or ``OMP_NUM_THREADS=N`` in the environment: exactly ``N`` (fixed).
2. A worker process of a sweep (``--jobs N``) or a Ray task: one thread each (:func:`worker_init`).
3. Otherwise (``auto``): the cores this process may run on minus the cores that other processes
   keep busy right now, at least one. "Busy" is read from ``/proc/stat`` over a short interval,
   minus this process's own CPU time; where ``/proc/stat`` does not exist, the 1-minute load average.

:func:`configure` applies the rule once (only the CLI calls it, before any work: the library reads no
process-wide policy, so ``train_codec`` behaves the same whoever calls it); a training keeps the count
it starts with to the end (:func:`commsim.learned.training.train_codec` records it), because another
thread count sums in another order: the same seed gives bit-identical weights only with the same
count. :func:`status` is a short text for progress bars when the CPU is shared.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch

ENV_VARS = ("COMMSIM_THREADS", "OMP_NUM_THREADS")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def fixed_threads() -> tuple[int, str] | None:
    """``(threads, reason)`` when the environment fixes the count, else ``None``."""
    for name in ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            try:
                count = int(value)
            except ValueError:
                continue
            if count >= 1:
                return count, f"{name}={count}"
    return None


@dataclass
class _Snapshot:
    wall: float
    own_cpu: float
    busy: float | None  # seconds of busy CPU summed over all cores since boot (None: no /proc/stat)


def _proc_stat_busy() -> float | None:
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [int(v) for v in fields[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
    busy = sum(values[:8]) - values[3] - (values[4] if len(values) > 4 else 0)
    return busy / os.sysconf("SC_CLK_TCK")


def _snapshot() -> _Snapshot:
    return _Snapshot(time.monotonic(), time.process_time(), _proc_stat_busy())


def busy_elsewhere(since: _Snapshot | None = None, interval: float = 0.1) -> float:
    """Cores kept busy by other processes, averaged since ``since`` (or over ``interval`` seconds)."""
    if since is None:
        since = _snapshot()
        time.sleep(interval)
    now = _snapshot()
    wall = now.wall - since.wall
    if now.busy is None or since.busy is None or wall <= 0:
        try:
            return max(0.0, os.getloadavg()[0] - (now.own_cpu - since.own_cpu) / max(wall, 1e-9))
        except OSError:
            return 0.0
    return max(0.0, (now.busy - since.busy - (now.own_cpu - since.own_cpu)) / wall)


class ThreadPolicy:
    """Chooses and applies torch's intra-op thread count (see the module docstring)."""

    def __init__(self):
        self.active = False
        self.threads = torch.get_num_threads()
        self.others = 0.0
        self.reason = ""

    def choose(self, others: float) -> int:
        cores = available_cores()
        return int(min(cores, max(1, round(cores - others))))

    def configure(self, interval: float = 0.1) -> int:
        """Pick the thread count now and apply it; later :meth:`adapt` calls keep it up to date."""
        self.active = True
        fixed = fixed_threads()
        if fixed is not None:
            self.threads, self.reason = fixed
            self.others = 0.0
        else:
            self.others = busy_elsewhere(interval=interval)
            self.threads = self.choose(self.others)
            self.reason = "auto"
        self._apply()
        return self.threads

    def status(self) -> str:
        """``""`` on a machine to ourselves; else e.g. ``"1 thread, CPU shared: 1.0 of 2 cores busy elsewhere"``."""
        if not self.active:
            return ""
        cores = available_cores()
        if self.others < 0.5:
            return ""
        plural = "s" if self.threads != 1 else ""
        slow = " (slower)" if self.others + self.threads > cores + 0.5 else ""
        return f"{self.threads} thread{plural}, CPU shared{slow}: {self.others:.1f} of {cores} cores busy elsewhere"

    def _apply(self):
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)


POLICY = ThreadPolicy()
configure = POLICY.configure
status = POLICY.status


def worker_init(threads: int = 1) -> None:
    """Initializer of sweep / benchmark worker processes (and of each Ray task): ``threads`` torch
    threads each (one by default), whatever the machine's load. Nothing else is set: the library never
    consults the policy (only the command line does, through :func:`configure`), so a worker keeps the
    count it is given."""
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
