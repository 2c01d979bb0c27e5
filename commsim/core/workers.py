"""Worker processes that die with the process that started them.

A pool worker of a sweep holds a copy of the data and its models (about 0.5 GB); if the driver is
killed (even ``kill -9``, which runs no clean-up), its workers must not live on. Each worker, as it
starts:

- asks Linux to send it SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)`` through ctypes);
- runs a watchdog thread that polls ``os.getppid()`` and exits once the parent is gone (the portable
  fallback, within :data:`POLL_SECONDS`).

The multiprocessing resource tracker then exits by itself: it stops when the last process holding
its pipe (the driver and the workers) is gone.

The pool must be created and used from a thread that outlives it (the parent-death signal follows
the thread that started the worker), e.g. in a ``with worker_pool(...)`` block.

Processes that a library starts for us, and their own children (an embedded Ray's GCS server,
raylet, agents and workers), are guarded by :func:`reaped_with_this_process`: they inherit a tag in
their environment, and a small reaper process (this file run as a script) records the tagged
processes and their descendants while the block runs (a process that renames itself may hide its
environment), then kills them all once this process is gone (its stdin pipe reaches EOF, even after
``kill -9``) or the block ends.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Callable, Iterator

from commsim.core.machine import available_memory

MAX_JOBS = 64
"""Most worker processes of one pool: each holds its own copy of the data and models (about 0.5 GB)."""
WORKER_BYTES = 512 * 2**20
"""Memory one worker process needs (torch, the data and its models), for :func:`check_jobs`."""


def check_jobs(jobs: int, cores: int) -> int:
    """``jobs`` worker processes if this machine can run them: at most :data:`MAX_JOBS`, at most ``cores``
    (each worker runs one torch thread: more only share the cores, each with its own ~0.5 GB) and within
    the available memory; else ``ValueError`` saying how many it can take."""
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {jobs}")
    if jobs > MAX_JOBS:
        raise ValueError(f"--jobs {jobs} is more than {MAX_JOBS} processes (each holds its own copy of the data and models, "
                         "about 0.5 GB)")
    if jobs > cores:
        raise ValueError(f"--jobs {jobs} is more than the {cores} cores this process may use: each worker runs one thread, "
                         f"so more only share the cores (and each holds about 0.5 GB); use --jobs {cores} or fewer")
    memory = available_memory()
    if memory is not None and jobs * WORKER_BYTES > memory:
        fit = max(1, memory // WORKER_BYTES)
        raise ValueError(f"--jobs {jobs} needs about {jobs * WORKER_BYTES / 2**30:.1f} GB, but {memory / 2**30:.1f} GB of memory "
                         f"is available; use --jobs {fit} or fewer")
    return jobs
PR_SET_PDEATHSIG = 1
"""``prctl`` option: the signal this process gets when its parent dies (Linux)."""
PR_SET_NAME = 15
"""``prctl`` option: the calling thread's name, as ``/proc/PID/task/TID/comm`` shows it (Linux)."""
WATCHDOG_NAME = "commsim-watch"
"""The watchdog thread's name (also its OS name on Linux, so tools can see that a worker is guarded)."""
POLL_SECONDS = 0.5
"""How often the watchdog thread checks that the parent lives."""


def _prctl(option: int, value) -> None:
    """``prctl(option, value)`` on Linux; nothing elsewhere or without a usable libc."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(option, value)
        except (OSError, AttributeError):
            pass


def die_with_parent(parent: int) -> None:
    """End this process (SIGKILL or ``os._exit``) as soon as process ``parent`` is no longer its parent."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)

    def watch():
        _prctl(PR_SET_NAME, WATCHDOG_NAME.encode())
        while os.getppid() == parent:
            time.sleep(POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name=WATCHDOG_NAME, daemon=True).start()


def _start_worker(parent: int, initializer: Callable | None, initargs: tuple) -> None:
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the driver stops us
    if initializer is not None:
        initializer(*initargs)


class WorkerPool(ProcessPoolExecutor):
    """A :class:`ProcessPoolExecutor` whose ``with`` block, when left by an exception (Ctrl-C, SIGTERM,
    an error, a generator closed early), cancels the queued tasks and kills its workers at once instead
    of waiting for every queued task to finish; left normally, it waits as usual."""

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            return super().__exit__(exc_type, exc, tb)
        processes = list((getattr(self, "_processes", None) or {}).values())
        self.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(Exception):
                process.kill()
        for process in processes:
            with contextlib.suppress(Exception):
                process.join(timeout=5)
        return False


def worker_pool(jobs: int, initializer: Callable | None = None, initargs: tuple = ()) -> WorkerPool:
    """A pool of ``jobs`` spawned processes that die with this one (then runs ``initializer(*initargs)``);
    leaving its ``with`` block early kills them (:class:`WorkerPool`)."""
    return WorkerPool(max_workers=jobs, mp_context=get_context("spawn"), initializer=_start_worker,
                      initargs=(os.getpid(), initializer, initargs))


REAP_ENV = "COMMSIM_REAP_TAG"
"""The environment variable whose value tags the processes a reaper ends."""
REAP_POLL_SECONDS = 0.25
"""How often the reaper records the tagged processes and their descendants while the block runs."""


def _processes() -> dict[int, tuple[int, str]]:
    """``{pid: (parent pid, start time)}`` of every process (Linux ``/proc``; else empty)."""
    out = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                out[int(entry)] = (int(fields[1]), fields[19])  # ppid, starttime (clock ticks after boot)
            except (OSError, IndexError, ValueError):  # gone meanwhile
                pass
    return out


def tagged_processes(tag: str) -> list[int]:
    """Processes (other than this one) whose environment holds ``REAP_ENV=tag`` (Linux ``/proc``; else none)."""
    marker = f"{REAP_ENV}={tag}".encode()
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/environ", "rb") as fh:
                    if marker in fh.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:  # gone, or another user's
                pass
    return found


def guarded_processes(tag: str) -> dict[int, str]:
    """``{pid: start time}`` of the processes tagged ``tag`` and all their descendants (a process that
    renames itself may overwrite the environment that ``/proc`` shows, e.g. with setproctitle)."""
    table = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = {}, [p for p in tagged_processes(tag) if p in table]
    while stack:
        pid = stack.pop()
        if pid not in found and pid != os.getpid():
            found[pid] = table[pid][1]
            stack += children.get(pid, [])
    return found


def reap(tag: str, known: dict[int, str] | None = None, rounds: int = 20) -> None:
    """SIGKILL every process tagged ``tag``, their descendants and the ``known`` ones (``{pid: start
    time}``, skipped if the pid now names another process), again until none is left."""
    known = dict(known or {})
    for _ in range(rounds):
        table = _processes()
        targets = {**known, **guarded_processes(tag)}
        alive = [pid for pid, start in targets.items() if pid in table and table[pid][1] == start and pid != os.getpid()]
        if not alive:
            return
        for pid in alive:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


@contextlib.contextmanager
def reaped_with_this_process(scratch: str | None = None) -> Iterator[str]:
    """Within the block, every process started from here (and its descendants, whatever session or
    process group they move to) is tagged; all are killed, and the folder ``scratch`` (theirs) is
    removed, when the block ends, or when this process dies before that, even by ``kill -9``.
    Yields the tag."""
    tag = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if k != REAP_ENV}
    reaper = subprocess.Popen([sys.executable, os.path.abspath(__file__), tag, *([scratch] if scratch else [])],
                              stdin=subprocess.PIPE, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    previous = os.environ.get(REAP_ENV)
    os.environ[REAP_ENV] = tag
    try:
        yield tag
    finally:
        if previous is None:
            os.environ.pop(REAP_ENV, None)
        else:
            os.environ[REAP_ENV] = previous
        reaper.stdin.close()  # EOF: the reaper kills what is left and exits
        with contextlib.suppress(subprocess.TimeoutExpired):
            reaper.wait(timeout=10)


def _reaper_main(tag: str, scratch: str | None = None) -> None:
    """The reaper: until EOF on stdin (the starting process closed it, or died), record the guarded
    processes every :data:`REAP_POLL_SECONDS`; then kill them (and any tagged one) and remove ``scratch``."""
    import shutil

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C for the terminal's job is the driver's to handle
    ended = threading.Event()

    def wait_for_eof():
        while sys.stdin.buffer.read(1 << 16):
            pass
        ended.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    known: dict[int, str] = {}
    while not ended.wait(REAP_POLL_SECONDS):
        known.update(guarded_processes(tag))
    reap(tag, known)
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    _reaper_main(*sys.argv[1:3])
