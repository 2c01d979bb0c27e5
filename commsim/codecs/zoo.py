"""Factories with explicit names and a checkpoint cache (CompressAI's zoo, locally trained).

``load_codec("necst", dataset="mnist", bits=100, eps=0.1)`` returns the given checkpoint, else the
best cached one for that configuration, else trains one (the default budget takes about two
minutes on two CPU cores) and caches it. The cache lives in ``$COMMSIM_HOME/checkpoints``
(default ``~/.cache/commsim``). Checkpoint names carry the configuration and a hash of it:
``necst-mnist-b100-eps0.1-e100-s0-1a2b3c4d.safetensors``.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from commsim import __version__
from commsim.codecs.checkpoints import CheckpointError, load_checkpoint, read_metadata, save_checkpoint
from commsim.codecs.learned import LearnedCodec
from commsim.codecs.training import DEFAULT_EPOCHS, TrainConfig, TrainResult, train_codec
from commsim.data import load_dataset
from commsim.data.sources import ImageSource
from commsim.device import resolve_device
from commsim.registry import CODECS

def cache_dir() -> Path:
    home = os.environ.get("COMMSIM_HOME")
    if home:
        return Path(home)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "commsim"


def learned_codec_class(name: str) -> type[LearnedCodec]:
    cls = CODECS.get(name)
    if not getattr(cls, "learned", False):
        raise ValueError(f"codec {name!r} is not a learned codec; it needs no training or checkpoint")
    return cls


def build_codec(name: str, source: ImageSource, bits: int, architecture: str | None = None, seed: int = 0) -> LearnedCodec:
    """An untrained learned codec for ``source``'s images, initialised from ``seed``."""
    return learned_codec_class(name)(bits, source.image_shape, binary=source.binary, architecture=architecture, seed=seed)


def checkpoint_name(codec: str, dataset: str, bits: int, config: TrainConfig, architecture: str) -> str:
    record = json.dumps({"codec": codec, "dataset": dataset, "bits": bits, "architecture": architecture,
                         "train": vars(config)}, sort_keys=True)
    digest = hashlib.sha256(record.encode()).hexdigest()[:8]
    return f"{codec}-{dataset}-b{bits}-eps{config.eps:g}-e{config.epochs}-s{config.seed}-{digest}.safetensors"


def train_and_save(name: str, source: ImageSource, bits: int, config: TrainConfig, out: str | Path | None = None,
                   device: str = "auto", architecture: str | None = None, progress: bool = True) -> tuple[LearnedCodec, TrainResult, Path]:
    """Train a codec and write its checkpoint (to ``out`` or the cache). Returns codec, result, path."""
    codec = build_codec(name, source, bits, architecture, seed=config.seed).to(resolve_device(device))
    result = train_codec(codec, source, config, progress=progress)
    path = Path(out) if out else cache_dir() / "checkpoints" / checkpoint_name(name, source.name, bits, config, codec.architecture)
    metadata = {**codec.config(), "dataset": source.name, "train_eps": float(config.eps), "seed": config.seed,
                "train": vars(config), "val": {result.val_metric: result.val_value, "best_epoch": result.best_epoch,
                                            "epochs_run": len(result.history), "stop": result.stop},
                "train_seconds": result.seconds, "commsim_version": __version__}
    save_checkpoint(path, codec.state_dict(), metadata)
    return codec, result, path


def cached_checkpoints(name: str, dataset: str, bits: int, eps: float, train: dict | None = None) -> list[Path]:
    """Cached checkpoints for a configuration, best validation first. ``train`` (e.g.
    ``{"estimator": "st"}``) keeps only those whose training config has these values."""
    folder = cache_dir() / "checkpoints"
    found = []
    for path in sorted(folder.glob(f"{name}-{dataset}-b{bits}-eps{eps:g}-*.safetensors")):
        try:
            meta = read_metadata(path)
        except CheckpointError:
            continue
        recorded = meta.get("train", {})
        if any(recorded.get(key) != value for key, value in (train or {}).items()):
            continue
        found.append((min(meta.get("val", {}).get(k, float("inf")) for k in ("l2_per_image", "bce_per_pixel")), path))
    return [p for _, p in sorted(found)]


def codec_from_checkpoint(path: str | Path, name: str | None = None, dataset: str | None = None, bits: int | None = None,
                          source: ImageSource | None = None, device: str = "auto") -> LearnedCodec:
    """Load a checkpoint, refusing one whose codec / data set / bits differ from the request."""
    state, metadata = load_checkpoint(path, {"codec": name, "dataset": dataset, "bits": bits})
    source = source or load_dataset(metadata["dataset"])
    codec = build_codec(metadata["codec"], source, metadata["bits"], metadata.get("architecture"))
    try:
        codec.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path} does not fit the {metadata['codec']} network ({str(exc).splitlines()[0][:100]})") from None
    codec.metadata = metadata
    return codec.to(resolve_device(device)).eval()


def train_request(estimator: str | None = None, recipe: str | None = None) -> dict:
    """The training-config values a caller asked for explicitly (``None`` = any / the default)."""
    return {k: v for k, v in (("estimator", estimator), ("recipe", recipe)) if v is not None}


def load_codec(name: str, dataset: str = "mnist", bits: int = 100, eps: float = 0.1, checkpoint: str | Path | None = None,
               train_if_missing: bool = True, epochs: int = DEFAULT_EPOCHS, seed: int = 0, device: str = "auto",
               source: ImageSource | None = None, progress: bool = True, estimator: str | None = None,
               recipe: str | None = None) -> LearnedCodec:
    """A trained learned codec: from ``checkpoint``, else the cache, else trained now and cached.

    ``estimator`` / ``recipe`` (see :class:`~commsim.codecs.training.TrainConfig`), when given, pick
    a cached checkpoint trained that way and train with them; ``None`` takes any cached checkpoint
    and trains with the defaults. ``epochs`` is the budget of a training made here.
    """
    if checkpoint is not None:
        return codec_from_checkpoint(checkpoint, name, dataset, bits, source, device)
    learned_codec_class(name)
    config = TrainConfig(eps=eps, epochs=epochs, seed=seed, estimator=estimator, recipe=recipe)  # checks before any work
    for path in cached_checkpoints(name, dataset, bits, eps, train_request(estimator, recipe)):
        return codec_from_checkpoint(path, name, dataset, bits, source, device)
    if not train_if_missing:
        raise CheckpointError(f"no cached {name} checkpoint for {dataset}, {bits} bits, eps {eps:g}; run `commsim train` first")
    source = source or load_dataset(dataset)
    codec, _, _ = train_and_save(name, source, bits, config, device=device, progress=progress)
    return codec
