"""Output files written whole or not at all.

``atomic_write(path)`` hands out a temporary file beside ``path`` and renames it into place only
when the block finishes without an error, so a crash never leaves a half-written file. The
temporary file is created like ``open`` creates files (mode 0o666 less the user's umask), so the
result has the usual permissions, not the 0600 of ``tempfile.mkstemp``.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import IO, Iterator


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """``with atomic_write("fig.png") as fh: ...``: ``fh`` is open in ``mode`` ("wb" or "w", the
    latter UTF-8 with untranslated newlines); ``path`` appears complete or not at all."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    tmp = _temporary_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8", "newline": ""} if mode == "w" else {})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def writable_folder(folder: str | Path) -> Path:
    """Create ``folder`` if needed and check that files can be created in it; a ``ValueError`` that
    names the folder otherwise (before any expensive work)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = _temporary_name(folder / "write-test")
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(f"cannot write to {folder} ({exc.strerror or exc}); choose another output folder") from None
    return folder
