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
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Callable

MAX_JOBS = 64
"""Most worker processes of one pool: each holds its own copy of the data and models (about 0.5 GB)."""
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
    if initializer is not None:
        initializer(*initargs)


def worker_pool(jobs: int, initializer: Callable | None = None, initargs: tuple = ()) -> ProcessPoolExecutor:
    """A pool of ``jobs`` spawned processes that die with this one (then runs ``initializer(*initargs)``)."""
    return ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), initializer=_start_worker,
                               initargs=(os.getpid(), initializer, initargs))
