"""Factories with explicit names and a checkpoint cache (CompressAI's zoo, locally trained).

``load_codec("necst", dataset="mnist", bits=100, eps=0.1)`` returns the given checkpoint, else the
cached one for that training configuration (the whole :class:`TrainConfig`: eps, epochs, seed, ...;
another budget or seed is another entry), else trains one (the default budget takes about two
minutes on two CPU cores) and caches it. The cache lives in ``$COMMSIM_HOME/checkpoints``
(default ``~/.cache/commsim``). Checkpoint names carry the configuration and a hash of it:
``necst-mnist-b100-eps0.1-e100-s0-1a2b3c4d.safetensors`` (trained over the BSC), or with the training
channel and its parameters, ``necst-mnist-b100-awgn-ebno_db2-e100-s0-5e6f7a8b.safetensors``; an entry whose metadata does not give back
its name (or that cannot be read) is skipped with a :class:`CacheWarning`. Training into the cache
holds a lock per entry (``filelock``), so concurrent processes train a configuration once.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Callable, Sequence

from commsim import __version__
from commsim.channels import get_channel
from commsim.learned.checkpoints import CheckpointError, load_checkpoint, read_metadata, save_checkpoint
from commsim.learned.codec import LearnedCodec
from commsim.learned.ensemble import train_ensemble
from commsim.learned.networks import default_architecture
from commsim.learned.training import DEFAULT_TRAIN_EPS, TrainConfig, TrainResult, describe_channel, record_channel, train_codec
from commsim.data import load_dataset
from commsim.data.sources import ImageSource
from commsim.core.device import resolve_device
from commsim.core import cache
from commsim.core.cache import CacheWarning, cache_dir
from commsim.core.files import check_writable
from commsim.core.registry import CODECS

__all__ = ["CacheWarning", "cache_dir", "cache_entry", "cached_checkpoints", "cached_or_trained", "codec_from_checkpoint",
           "load_codec", "train_and_save", "train_and_save_many"]


def learned_codec_class(name: str) -> type[LearnedCodec]:
    """The codec class of the registered learned codec ``name`` (its entry's ``codec_class``)."""
    cls = getattr(CODECS.get(name), "codec_class", None)
    if not (isinstance(cls, type) and issubclass(cls, LearnedCodec)):
        raise ValueError(f"codec {name!r} is not a learned codec; it needs no training or checkpoint")
    return cls


def build_codec(name: str, source: ImageSource, bits: int, architecture: str | None = None, seed: int = 0,
                decoder_input: str = "hard") -> LearnedCodec:
    """An untrained learned codec for ``source``'s images, initialised from ``seed``."""
    return learned_codec_class(name)(bits, source.image_shape, binary=source.binary, architecture=architecture, seed=seed,
                                     decoder_input=decoder_input)


def checkpoint_name(codec: str, dataset: str, bits: int, config: TrainConfig, architecture: str,
                    data: str | None = None) -> str:
    """The cache file name of a configuration: readable fields and a hash of the whole record, the
    data's identity included (``data``: :attr:`ImageSource.identity`; ``None`` for the embedded data)."""
    return _entry_name(codec, dataset, bits, config.record(), architecture, data)


def cache_entry(name: str, source: ImageSource, bits: int, config: TrainConfig) -> Path:
    """Where the cache keeps (or will keep) ``name`` trained on ``source`` with ``config`` (default architecture)."""
    return cache.folder("checkpoints") / checkpoint_name(name, source.name, bits, config, default_architecture(source.image_shape),
                                                         source.identity)


def _channel_tag(train: dict) -> str:
    """``eps0.1`` (BSC, as before channels were configurable), ``bec-eps0.2``, ``awgn-ebno_db2``."""
    channel, params = record_channel(train)
    tag = "-".join(f"{k}{v:g}" for k, v in params.items())
    if ":" in channel:  # a user module path/file.py:NAME: its NAME here, the whole path in the hashed record
        channel = "user_" + "".join(c if c.isalnum() or c in "_." else "_" for c in channel.rpartition(":")[2])
    return tag if channel == "bsc" else f"{channel}-{tag}" if tag else channel


def _entry_name(codec: str, dataset: str, bits: int, train: dict, architecture: str, data: str | None = None) -> str:
    fields = {"codec": codec, "dataset": dataset, "bits": bits, "architecture": architecture, "train": train}
    if data is not None:  # the embedded data's entries keep the names they had before data identities
        fields["data"] = data
    return f"{_name_stem(codec, dataset, bits, train)}{cache.digest(fields, 8)}.safetensors"


def _name_stem(codec: str, dataset: str, bits: int, train: dict) -> str:
    """An entry's readable name before its hash: ``necst-mnist-b100-eps0.1[-soft][-bf16]-e100-s0-``."""
    tags = "-soft" if train.get("decoder_input", "hard") != "hard" else ""
    tags += f"-{train['precision']}" if train.get("precision", "fp32") != "fp32" else ""
    return f"{codec}-{dataset}-b{bits}-{_channel_tag(train)}{tags}-e{train['epochs']}-s{train['seed']}-"


def train_and_save(name: str, source: ImageSource, bits: int, config: TrainConfig, out: str | Path | None = None,
                   device: str = "auto", architecture: str | None = None, progress: bool = True,
                   on_epoch: Callable | None = None) -> tuple[LearnedCodec, TrainResult, Path]:
    """Train a codec and write its checkpoint (to ``out`` or the cache). Returns codec, result, path.

    The destination is checked for writing before the training starts. ``on_epoch`` is
    :func:`~commsim.learned.training.train_codec`'s per-epoch hook."""
    codec = build_codec(name, source, bits, architecture, seed=config.seed, decoder_input=config.decoder_input)
    codec = codec.to(resolve_device(device))
    path = Path(out) if out else cache.folder("checkpoints") / checkpoint_name(name, source.name, bits, config, codec.architecture,
                                                                                source.identity)
    check_writable(path)
    result = train_codec(codec, source, config, progress=progress, on_epoch=on_epoch)
    save_trained(codec, source, config, result, path)
    return codec, result, path


def train_and_save_many(name: str, source: ImageSource, bits: int, configs: Sequence[TrainConfig],
                        outs: Sequence[str | Path] | None = None, device: str = "auto", progress: bool = True,
                        notify: Callable[[str], None] | None = None, val_limit: int | None = None,
                        on_epoch: Sequence[Callable | None] | None = None) -> list[tuple[LearnedCodec, TrainResult, Path]]:
    """Train one codec per config as one ensemble (:func:`commsim.learned.ensemble.train_ensemble`:
    the configs may differ only in seed, eps and IABF's lam) and write each member's checkpoint as
    :func:`train_and_save` writes it (same names, same metadata; the default architecture, the one an
    ensemble can stack); ``outs``, one path per config, or the cache. Returns ``(codec, result, path)`` per config, in order.

    Into the cache, the ensemble holds every member's entry lock (in name order) while it trains, as
    :func:`cached_or_trained` holds one, so a process asking for one of them meanwhile waits for it
    (``notify`` receives the waiting notice). ``val_limit`` caps the validation images (tests);
    ``on_epoch``, one hook per config, is :func:`~commsim.learned.ensemble.train_ensemble`'s."""
    if outs is not None and len(outs) != len(configs):
        raise ValueError(f"give one output path per config: {len(outs)} paths for {len(configs)} configs")
    target = resolve_device(device)
    codecs = [build_codec(name, source, bits, seed=c.seed, decoder_input=c.decoder_input).to(target)
              for c in configs]
    paths = [Path(o) for o in outs] if outs is not None else [
        cache.folder("checkpoints") / checkpoint_name(name, source.name, bits, c, codec.architecture, source.identity)
        for codec, c in zip(codecs, configs)]
    if len(set(paths)) != len(paths):
        raise ValueError("two members would write the same checkpoint (the same config twice?); give each config once")
    for path in paths:
        check_writable(path)
    with contextlib.ExitStack() as locks:
        if outs is None:
            for path in sorted(paths):
                locks.enter_context(cache.entry_lock(path, notify, doing="training"))
        results = train_ensemble(codecs, source, configs, progress=progress, val_limit=val_limit, on_epoch=on_epoch)
        for codec, config, result, path in zip(codecs, configs, results, paths):
            save_trained(codec, source, config, result, path)
    return list(zip(codecs, results, paths))


def save_trained(codec: LearnedCodec, source: ImageSource, config: TrainConfig, result: TrainResult, path: Path) -> None:
    """Write a trained codec's checkpoint with its metadata (config, validation, timing) to ``path``;
    the codec's ``metadata`` becomes what reads back from the file."""
    metadata = {**codec.config(), "dataset": source.name, "train_eps": config.eps, "seed": config.seed,
                "train_channel": config.channel, "train_channel_params": config.channel_kwargs(),
                "train": config.record(), "val": {result.val_metric: result.val_value, "best_epoch": result.best_epoch,
                                            "epochs_run": len(result.history), "stop": result.stop},
                "train_seconds": result.seconds, "train_threads": result.threads, "commsim_version": __version__}
    if source.identity is not None:
        metadata["data_identity"] = source.identity
    save_checkpoint(path, codec.state_dict(), metadata)
    codec.metadata = json.loads(json.dumps(metadata))  # as it reads back from the file


def _ignore(path: Path, reason: str | CheckpointError) -> None:
    if isinstance(reason, CheckpointError):  # "checkpoint PATH is corrupt (...); re-create it ..." -> "it is corrupt (...)"
        reason = str(reason).split(";")[0].replace(str(path), "it").replace("checkpoint it", "it")
    cache.ignore(path, "checkpoint", reason, "delete it", stacklevel=3)


def _entry_problem(path: Path, meta: dict) -> str | None:
    """Why a cache entry cannot be trusted (its name is the one its metadata would get), or ``None``."""
    try:
        expected = _entry_name(meta["codec"], meta["dataset"], meta["bits"], meta["train"], meta["architecture"],
                               meta.get("data_identity"))
    except (KeyError, TypeError, ValueError) as exc:
        return f"its metadata lacks {exc}"
    if path.name != expected:
        return (f"it holds {meta['codec']} for {meta['dataset']}, {meta['bits']} bits, trained at "
                f"{describe_training(meta)}, which does not match its name")
    return None


def cached_checkpoints(name: str, dataset: str, bits: int, eps: float | None = None, *,
                      config: TrainConfig | None = None, data: str | None = None) -> list[Path]:
    """Cached checkpoints of ``name`` for ``dataset`` and ``bits``, best validation first: those
    trained with exactly ``config`` (every field: channel, eps, epochs, seed, ...), or with only ``eps``
    given, those trained over the BSC at ``eps`` (hard decoder input) with any budget. An entry whose
    metadata does not match its name, or that cannot be read, is skipped with a :class:`CacheWarning`.
    Only entries trained on the data ``data`` identifies (:attr:`ImageSource.identity`, ``None`` for the
    embedded data sets) count: a model trained on other files under the same data-set name is not one."""
    if config is None and eps is None:
        raise TypeError("give eps or config")
    folder = cache.folder("checkpoints")
    if config is not None:
        prefix = _name_stem(name, dataset, bits, config.record())
    else:  # any budget and precision over the BSC at eps; hard decoder input (the soft ones are filtered below)
        prefix = f"{name}-{dataset}-b{bits}-{_channel_tag({'eps': eps})}-"
    want = config.record() if config is not None else None
    found = []
    for path in sorted(folder.glob(f"{prefix}*.safetensors")):
        try:
            meta = read_metadata(path)
        except CheckpointError as exc:
            _ignore(path, exc)
            continue
        problem = _entry_problem(path, meta)
        if problem:
            _ignore(path, problem)
            continue
        if meta.get("data_identity") != data:
            continue  # trained on other data under the same data-set name
        if want is not None and meta["train"] != want:
            continue  # another training configuration with the same eps, budget and seed (e.g. learning rate)
        if want is None and meta["train"].get("decoder_input", "hard") != "hard":
            continue
        found.append((min(meta.get("val", {}).get(k, float("inf")) for k in ("l2_per_image", "bce_per_pixel")), path))
    return [p for _, p in sorted(found)]


def codec_from_checkpoint(path: str | Path, name: str | None = None, dataset: str | None = None, bits: int | None = None,
                          source: ImageSource | None = None, device: str = "auto") -> LearnedCodec:
    """Load a checkpoint, refusing one whose codec / data set / bits differ from the request."""
    state, metadata = load_checkpoint(path, {"codec": name, "dataset": dataset, "bits": bits})
    source = source or load_dataset(metadata["dataset"])
    try:
        codec = build_codec(metadata["codec"], source, metadata["bits"], metadata.get("architecture"),
                            decoder_input=metadata.get("decoder_input", "hard"))  # older checkpoints: hard
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {path} does not fit this commsim ({exc})") from None
    try:
        codec.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path} does not fit the {metadata['codec']} network ({str(exc).splitlines()[0][:100]})") from None
    codec.metadata = metadata
    codec.checkpoint_path = Path(path)
    codec.origin = describe_training(metadata)
    return codec.to(resolve_device(device)).eval()


def describe_training(metadata: dict) -> str:
    """``"eps 0.1, 30 epochs, seed 0"`` (BSC) or ``"awgn ebno_db 2, soft decoder input, 30 epochs, seed 0"``:
    the training configuration in a checkpoint's metadata."""
    train = metadata.get("train") or {}
    epochs, seed = train.get("epochs"), train.get("seed", metadata.get("seed"))
    channel, params = record_channel({"eps": metadata.get("train_eps"), **train})
    if channel != "bsc":
        parts = [describe_channel(channel, params)]
    else:
        eps = params.get("eps")
        parts = [f"eps {eps:g}" if isinstance(eps, (int, float)) else "eps unknown"]
    if train.get("decoder_input", "hard") != "hard":
        parts.append(f"{train['decoder_input']} decoder input")
    if epochs is not None:
        parts.append(f"{epochs} epoch{'s' if epochs != 1 else ''}")
    parts.append(f"seed {seed if seed is not None else 'unknown'}")
    return ", ".join(parts)


def _cached_codec(name: str, dataset: str, bits: int, config: TrainConfig, source: ImageSource | None,
                  device: str) -> tuple[LearnedCodec, Path] | None:
    for path in cached_checkpoints(name, dataset, bits, config=config, data=source.identity if source is not None else None):
        try:
            return codec_from_checkpoint(path, name, dataset, bits, source, device), path
        except CheckpointError as exc:
            _ignore(path, exc)
    return None


def cached_or_trained(name: str, dataset: str, bits: int, config: TrainConfig, source: ImageSource | None = None,
                      device: str = "auto", train_if_missing: bool = True, progress: bool = True,
                      notify: Callable[[str], None] | None = None) -> tuple[LearnedCodec, Path, bool]:
    """``(codec, checkpoint path, trained now?)`` for exactly this training configuration: the cached
    checkpoint, else one trained now into the cache.

    Training holds a lock on the cache entry, so processes asking for the same configuration at once
    train it once: the others wait and load its checkpoint. ``notify`` receives a one-line notice
    before a training or a wait starts."""
    learned_codec_class(name).check_bits(bits)
    hit = _cached_codec(name, dataset, bits, config, source, device)
    if hit:
        return (*hit, False)
    if not train_if_missing:
        raise CheckpointError(f"no cached {name} checkpoint for {dataset}, {bits} bits at "
                              f"{describe_training({'train': config.record()})}; run `commsim train` first")
    source = source or load_dataset(dataset)
    path = check_writable(cache_entry(name, source, bits, config))
    with cache.entry_lock(path, notify, doing="training"):  # one training per entry across processes
        hit = _cached_codec(name, dataset, bits, config, source, device)
        if hit:
            return (*hit, False)
        if notify:
            others = [p.name for p in cached_checkpoints(name, dataset, bits, config.eps, data=source.identity)] \
                if config.channel == "bsc" else []
            hint = f" (cached at this eps: {', '.join(others[:3])}; pass their --epochs/--seed to use one)" if others else ""
            notify(f"training {name} for {source.name}, {bits} bits at {describe_training({'train': config.record()})}: "
                   f"no cached checkpoint{hint}")
        codec, _, path = train_and_save(name, source, bits, config, out=path, device=device, progress=progress)
        return codec.eval(), path, True


def load_codec(name: str, dataset: str = "mnist", bits: int = 100, eps: float | None = DEFAULT_TRAIN_EPS, *,
               checkpoint: str | Path | None = None, train_if_missing: bool = True, device: str = "auto",
               source: ImageSource | None = None, progress: bool = True, **train_options) -> LearnedCodec:
    """A trained learned codec: from ``checkpoint``, else the cache entry of this training
    configuration (``eps`` and ``train_options``: the fields of :class:`TrainConfig` — ``epochs``,
    ``seed``, ``recipe``, ``estimator``, ``channel``, ``channel_params``, ``decoder_input``, ...; another
    budget or seed is another entry), else trained now and cached. ``eps`` is the training channel's
    eps (bsc, bec, z; ignored by channels without one); other channels take their parameters in
    ``channel_params``, e.g. ``load_codec("necst", channel="awgn", channel_params={"ebno_db": 2})``."""
    if checkpoint is not None:
        return codec_from_checkpoint(checkpoint, name, dataset, bits, source, device)
    channel = train_options.get("channel", "bsc")
    params = train_options.get("channel_params") or {}
    uses_eps = "eps" in get_channel(channel).params and "eps" not in params
    config = TrainConfig(**{**train_options, "eps": eps if uses_eps else None})
    return cached_or_trained(name, dataset, bits, config, source, device, train_if_missing, progress)[0]
