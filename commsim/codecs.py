"""One factory for every registered codec, learned or separated.

Example::

    from commsim.codecs import make_codec
    made = make_codec("jpeg+ldpc", source, bits=2000, channel="bsc", params={"eps": 0.1}, seed=0)
    made = make_codec("necst", source, bits=100, channel="bsc", params={"eps": 0.1}, seed=0,
                      budget=TrainConfig(eps=0.1, epochs=30))       # cached, else trained now
    x_hat, llr, bits = Pipeline(source, made.codec, get_channel("bsc"))(x, eps=0.1)

``budget`` is what may be spent on learning: for a learned codec a :class:`TrainConfig` (its cache
entry, trained now if missing) or a checkpoint path; ``None`` means the default training budget at the
channel's ``eps`` (0.1 above 0.5 or for channels without one) and ``seed``. For a separated codec a
:class:`TrainConfig`'s ``epochs`` train the ``neural`` source code (the other source codes learn nothing
that takes epochs); a checkpoint is refused.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple

from commsim.core.codec import Codec
from commsim.core.device import resolve_device
from commsim.core.registry import CODECS
from commsim.data.sources import ImageSource
from commsim.learned import TrainConfig
from commsim.learned.zoo import cached_or_trained, codec_from_checkpoint
from commsim.separated import SEPARATED_CODECS  # noqa: F401  (registers the separated codecs)


class MadeCodec(NamedTuple):
    """What :func:`make_codec` returns: the codec ready to run, and for a learned codec the checkpoint
    it came from (``None`` for separated codecs) and whether it was trained just now."""

    codec: Codec
    checkpoint: Path | None
    trained: bool


def default_budget(channel: str, params: dict, seed: int) -> TrainConfig:
    """The training budget when none is given: the default epochs at the channel's ``eps``."""
    eps = params.get("eps")
    return TrainConfig(eps=float(eps) if eps is not None and eps <= 0.5 else 0.1, seed=seed)


def make_codec(name: str, source: ImageSource, bits: int, channel: str = "bsc", params: dict | None = None,
               seed: int = 0, budget: TrainConfig | str | Path | None = None, *, device: str = "cpu",
               dataset: str | None = None, notify: Callable[[str], None] | None = None,
               progress: bool = True) -> MadeCodec:
    """The registered codec ``name`` for ``source``'s images, ``bits`` channel bits, ``channel`` with
    ``params`` and ``seed``, within ``budget`` (see the module doc). ``dataset`` names the cache entry
    of a learned codec (default ``source.name``); ``notify`` gets a line before a training starts."""
    entry = CODECS.get(name)
    params = dict(params or {})
    entry.check_bits(bits)
    if not getattr(entry, "learned", False):
        if isinstance(budget, (str, Path)):
            raise ValueError(f"codec {name!r} is a separated scheme and takes no checkpoint")
        options = {"epochs": budget.epochs} if isinstance(budget, TrainConfig) and entry.source_name == "neural" else {}
        codec = entry.build(source, bits=bits, channel=channel, params=params, seed=seed, source_options=options)
        return MadeCodec(codec.to(resolve_device(device)), None, False)
    dataset = dataset or source.name
    if isinstance(budget, (str, Path)):
        return MadeCodec(codec_from_checkpoint(budget, name, dataset, bits, source, device), Path(budget), False)
    config = budget if budget is not None else default_budget(channel, params, seed)
    codec, path, trained = cached_or_trained(name, dataset, bits, config, source, device, notify=notify, progress=progress)
    return MadeCodec(codec, path, trained)
