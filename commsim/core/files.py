"""Atomic file writes: a temporary file beside the target, renamed into place on success.

A crash, a full disk or an exception never leaves a half-written file under the target's name, and
the finished file gets the mode an ordinary ``open(path, "w")`` would give it (``0o666`` minus the
user's umask), not the ``0o600`` of a temporary file.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

from filelock import FileLock, Timeout


# The cache's folder and warning. Their home is commsim.core.cache (which re-exports them); they are
# defined here, below it, because that module builds on the atomic writes of this one.
def cache_dir() -> Path:
    """Where commsim caches checkpoints and fitted codebooks: ``$COMMSIM_HOME``, else
    ``$XDG_CACHE_HOME/commsim``, else ``~/.cache/commsim``."""
    home = os.environ.get("COMMSIM_HOME")
    if home:
        return Path(home)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "commsim"


class OneLineWarning(UserWarning):
    """commsim's own warnings: the command line shows each as one ``warning:`` line, once per command."""


class PrecisionWarning(OneLineWarning):
    """bf16 asked for on a device that only emulates it (it runs, slowly)."""


class StalledTrainingWarning(OneLineWarning):
    """A training whose validation never improved after its first epoch: the model kept is the
    epoch-1 weights (a too high learning rate for a short budget, typically)."""


class CacheWarning(OneLineWarning):
    """A cached file that cannot serve its configuration (unreadable, or its metadata does not match
    its name): it is ignored, never fatal."""


def umask_mode() -> int:
    """``0o666`` minus the current umask (read without changing it for other threads for long)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success it becomes ``path`` (mode per umask).

    The temporary name keeps ``path``'s suffix, so writers that choose a format from the suffix
    (Pillow, matplotlib, numpy) work unchanged."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, umask_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """``with atomic_write("fig.png") as fh: ...``: ``fh`` is open in ``mode`` ("wb" or "w", the
    latter UTF-8 with untranslated newlines), flushed to disk before the rename; ``path`` appears
    complete or not at all."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, **({"encoding": "utf-8", "newline": ""} if mode == "w" else {})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def _create_a_file_in(folder: Path) -> None:
    """Create (and drop) a file in ``folder``, or raise ``OSError``: the only sure test, since
    ``os.access`` says yes to root even on ``/proc``."""
    with tempfile.TemporaryFile(dir=folder):
        pass


def writable_folder(folder: str | Path) -> Path:
    """Create ``folder`` if needed and check that files can be created in it; a ``ValueError`` that
    names the folder otherwise (before any expensive work)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _create_a_file_in(folder)
    except OSError as exc:
        raise ValueError(f"cannot write to {folder} ({exc.strerror or exc}); choose another output folder") from None
    return folder


def check_writable(path: str | Path) -> Path:
    """Raise ``OSError`` naming ``path`` unless a file can be created there (checked before work;
    creates the missing parent folders only if they can be created, and removes nothing else)."""
    path = Path(path)
    for part in (path, *path.parents):
        if part.is_symlink() and not part.exists():
            raise OSError(f"cannot write {path}: {part} is a symbolic link to {os.readlink(part)}, which does not exist; "
                          "remove the link or choose another path")
    folder = path.parent
    probe_dir = folder
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    if path.is_dir():
        raise OSError(f"cannot write {path}: it is a folder; give a file name")
    try:
        if not probe_dir.is_dir():
            raise NotADirectoryError
        _create_a_file_in(probe_dir)
    except OSError:
        raise OSError(f"cannot write {path}: {probe_dir} is not a writable folder; choose another path") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise OSError(f"cannot write {path}: permission denied; choose another path")
    return path


LOCK_FOLDER = "commsim-locks"
"""Folder under the system's temporary folder that holds the locks of result files."""


@contextlib.contextmanager
def exclusive_writer(path: str | Path) -> Iterator[Path]:
    """Hold the one lock of the results file ``path`` (a ``filelock`` under the system's temporary
    folder, named by the file's resolved path, so taking it writes nothing beside the file nor in the
    cache): a second writer of the same file is refused at once with ``FileExistsError``, one line."""
    path = Path(path)
    folder = Path(tempfile.gettempdir()) / LOCK_FOLDER
    folder.mkdir(exist_ok=True)
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    lock = FileLock(str(folder / f"{key}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise FileExistsError(f"another commsim run is writing {path}; wait for it to finish or choose another --out") from None
    try:
        yield path
    finally:
        lock.release()


def file_sha256(path: str | Path, digits: int = 16) -> str:
    """The first ``digits`` hex digits of a file's sha256 (read in 1 MiB chunks): the
    ``checkpoint_sha256`` cell of a sweep's row."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:digits]
