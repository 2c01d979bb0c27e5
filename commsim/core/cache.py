"""The one on-disk cache of commsim: trained checkpoints and fitted source-code arrays.

Folder: :func:`cache_dir` (``$COMMSIM_HOME``, else ``$XDG_CACHE_HOME/commsim``, else
``~/.cache/commsim``), one subfolder per kind of entry: ``checkpoints/`` (learned codecs,
:mod:`commsim.learned.zoo`) and ``separated/`` (PCA bases, VQ codebooks,
:mod:`commsim.source_codes.base`).

The rules every entry follows:

- *Names*: readable fields and :func:`digest` of the whole record the entry was made from, so
  another configuration is another file.
- *Validation*: a reader checks that an entry holds what its name promises; one that is
  unreadable or holds something else is skipped with a one-line :class:`CacheWarning`
  (:func:`ignore`), never fatal, and made again.
- *Compute once across processes*: :func:`get_or_make` (or :func:`entry_lock` with a re-check)
  holds a ``filelock`` per entry (``<folder>/.locks/<entry name>.lock``) while the entry is
  made, so processes asking for the same entry at once make it once: the others wait, then read it.
- *Atomic writes*: an entry appears complete or not at all
  (:func:`~commsim.core.files.atomic_path`).

:func:`cached_arrays` is the whole pattern for numpy arrays (``.npz`` files holding their key).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import numpy as np
from filelock import FileLock, Timeout

from commsim.core.files import CacheWarning, atomic_path, cache_dir

__all__ = ["CacheWarning", "cache_dir", "cached_arrays", "digest", "entry_lock", "folder", "get_or_make", "ignore",
           "key_text"]

T = TypeVar("T")


def folder(kind: str) -> Path:
    """``cache_dir() / kind``: where entries of one kind live (``"checkpoints"``, ``"separated"``)."""
    return cache_dir() / kind


def key_text(record) -> str:
    """The canonical JSON text of an entry's record (sorted keys): what :func:`digest` hashes and
    what an entry may store to be checked against."""
    return json.dumps(record, sort_keys=True)


def digest(record, length: int) -> str:
    """The first ``length`` hex digits of the SHA-256 of :func:`key_text` ``(record)``: the hash in
    an entry's name."""
    return hashlib.sha256(key_text(record).encode()).hexdigest()[:length]


def ignore(path: str | Path, what: str, reason: str, action: str, stacklevel: int = 2) -> None:
    """Warn (one line, :class:`CacheWarning`) that the entry ``path`` is skipped:
    ``"ignoring cached {what} {name}: {reason}; {action}"``. ``stacklevel`` as in
    :func:`warnings.warn`, counted from the caller of this function."""
    warnings.warn(f"ignoring cached {what} {Path(path).name}: {reason}; {action}", CacheWarning, stacklevel=stacklevel + 1)


@contextlib.contextmanager
def entry_lock(path: str | Path, notify: Callable[[str], None] | None = None, doing: str = "making") -> Iterator[None]:
    """Hold the lock of the cache entry ``path`` (``<its folder>/.locks/<its name>.lock``) for the
    ``with`` block; while another process holds it, ``notify`` (if given) receives
    ``"waiting for another commsim process that is {doing} {name}"`` and the call waits.

    Re-check the entry inside the block: it may have been written while this one waited. The empty
    lock files stay (removing one would race with a waiter). A folder where no lock file can be
    created (a read-only cache) is not locked: the entry cannot be written there either, so at worst
    it is computed twice."""
    path = Path(path)
    locks = path.parent / ".locks"
    lock: FileLock | None = None
    try:
        locks.mkdir(parents=True, exist_ok=True)
        lock = FileLock(locks / f"{path.name}.lock")
        lock.acquire(timeout=0)
    except Timeout:  # (a TimeoutError, so an OSError: caught first)
        if notify:
            notify(f"waiting for another commsim process that is {doing} {path.name}")
        lock.acquire()
    except OSError:  # no lock file can be created here
        lock = None
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is written again (inode, size, modification time), or ``None``."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def get_or_make(path: str | Path, find: Callable[[], T | None], make: Callable[[], T],
                notify: Callable[[str], None] | None = None, doing: str = "making") -> tuple[T, bool]:
    """``(value, made now?)`` of the cache entry ``path``: ``find()`` (the entry's value, or ``None``
    when it is missing or was ignored), else, holding :func:`entry_lock`, ``find()`` again if the file
    changed while this call waited (another process made it), else ``make()`` (which computes, writes
    the entry and returns its value). A bad entry is thus reported once, not once per look."""
    path = Path(path)
    before = _stamp(path)
    value = find()
    if value is not None:
        return value, False
    with entry_lock(path, notify, doing):
        if _stamp(path) != before:
            value = find()
            if value is not None:
                return value, False
        return make(), True


def _read_arrays(path: Path, text: str, what: str) -> dict[str, np.ndarray] | None:
    """The arrays of the ``.npz`` entry ``path`` if it holds the key ``text``; ``None`` if it is
    missing, or unreadable / foreign (then with a :class:`CacheWarning`)."""
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:  # (np.load(path) leaks the file if it raises)
            arrays = {name: data[name] for name in data.files}
        stored = str(arrays.pop("__key__")) if "__key__" in arrays else None
        if stored == text:
            return arrays
        problem = "it holds another fit" if stored is not None else "it names no key"
    except Exception as exc:  # noqa: BLE001 - whatever a damaged file raises (BadZipFile, EOFError, ...)
        problem = f"it is unreadable ({type(exc).__name__})"
    # shown at the line that called cached_arrays (via get_or_make and its find lambda)
    ignore(path, what, problem, "computing it again", stacklevel=5)
    return None


def cached_arrays(path: str | Path, key, compute: Callable[[], dict[str, np.ndarray]], what: str = "arrays",
                  notify: Callable[[str], None] | None = None) -> dict[str, np.ndarray]:
    """``compute() -> {name: array}``, stored as the ``.npz`` file ``path`` and reused; once across
    processes (:func:`get_or_make`).

    The file also holds ``key`` (``__key__``, its :func:`key_text`): a file that cannot be read
    (truncated, not an npz) or holds another key (a foreign or tampered file) is ignored with a
    :class:`CacheWarning` naming it as ``what`` and computed again. Arrays are read without pickles.
    A cache that cannot be written only costs time (the arrays are computed and returned)."""
    path, text = Path(path), key_text(key)

    def make() -> dict[str, np.ndarray]:
        arrays = compute()
        try:
            with atomic_path(path) as tmp:
                np.savez(tmp, __key__=np.array(text), **arrays)
        except OSError:
            pass  # a read-only cache only costs time
        return arrays

    return get_or_make(path, lambda: _read_arrays(path, text, what), make, notify, doing=f"computing the {what}")[0]
