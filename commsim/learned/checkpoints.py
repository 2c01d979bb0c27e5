"""Checkpoints: one safetensors file holding the weights and a JSON metadata record.

The metadata (codec, data set, bits, training eps, seed, architecture, validation metrics, commsim
version, training config) sits in the safetensors header under the key ``"commsim"``; loading
checks it against the request and refuses a mismatch. Files are written to a temporary name and
renamed, so a crash never leaves a half-written checkpoint.
"""
from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from commsim.core.files import atomic_path

FORMAT = "commsim-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, foreign or does not match the request."""


def save_checkpoint(path: str | Path, state_dict: dict, metadata: dict) -> Path:
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    header = {"format": FORMAT, "commsim": json.dumps({**metadata, "format": FORMAT})}
    try:
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=header)
    except (SafetensorError, OSError) as exc:  # e.g. a full disk: nothing is left under the name
        raise OSError(f"cannot write checkpoint {path} ({_short(exc)}); free some space there or set COMMSIM_HOME "
                      "to another folder") from None
    return path


def read_metadata(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass a file written by `commsim train`")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or not a safetensors file ({_short(exc)}); re-create it with `commsim train`") from None
    if header.get("format") != FORMAT or "commsim" not in header:
        raise CheckpointError(f"{path} is not a commsim checkpoint; re-create it with `commsim train`")
    try:
        metadata = json.loads(header["commsim"])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt (its metadata is not JSON: {exc.msg} at character {exc.pos}); "
                              "re-create it with `commsim train`") from None
    if not isinstance(metadata, dict):
        raise CheckpointError(f"checkpoint {path} is corrupt (its metadata is a {type(metadata).__name__}, not an object); "
                              "re-create it with `commsim train`")
    return metadata


def load_checkpoint(path: str | Path, expect: dict | None = None) -> tuple[dict, dict]:
    """``(state_dict, metadata)``; ``expect`` maps metadata keys to required values."""
    metadata = read_metadata(path)
    for key, want in (expect or {}).items():
        have = metadata.get(key)
        if want is not None and have != want:
            raise CheckpointError(
                f"checkpoint {path} has {key}={have!r} but {key}={want!r} was asked for; "
                f"use a checkpoint trained for {key}={want!r} or drop --checkpoint to train one"
            )
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt ({_short(exc)}); re-create it with `commsim train`") from None
    return state, metadata


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
