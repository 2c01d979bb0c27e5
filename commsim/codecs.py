"""The one codec factory: every registered codec, whatever its kind, through the codec protocol
(:mod:`commsim.core.protocol`).

Example::

    from commsim.codecs import make_codec
    made = make_codec("jpeg+ldpc", source, bits=2000, channel="bsc", params={"eps": 0.1}, seed=0)
    made = make_codec("necst", source, bits=100, channel="bsc", params={"eps": 0.1}, seed=0,
                      training=Budget(epochs=30))              # cached, else trained now
    made = make_codec("necst", source, bits=100, checkpoint="necst.safetensors")   # this file, never trained
    x_hat, llr, bits = Pipeline(source, made.codec, get_channel("bsc"))(x, eps=0.1)

``training`` is what may be spent on learning: a :class:`~commsim.core.protocol.Budget` (the
defaults when ``None``: 100 epochs at the channel's eps, see
:meth:`commsim.learned.entry.LearnedEntry.training_config`) or an exact
:class:`~commsim.learned.TrainConfig`. ``checkpoint`` loads that file instead (learned codecs only;
a separated scheme refuses it). :func:`build` does the same from a :class:`~commsim.core.protocol.Request`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple

from commsim.core.codec import Codec
from commsim.core.protocol import Budget, Request, Requirement
from commsim.core.registry import CODECS
from commsim.data.sources import ImageSource
from commsim.learned import TrainConfig  # noqa: F401  (registers the learned codecs)
from commsim.separated import SEPARATED_CODECS  # noqa: F401  (registers the separated codecs)


class MadeCodec(NamedTuple):
    """What :func:`make_codec` returns: the codec ready to run, the file it was built from (a
    checkpoint; ``None`` when it needed none) and whether that file was made just now."""

    codec: Codec
    checkpoint: Path | None
    trained: bool


def entry(name: str):
    """The registry entry of codec ``name`` (an unknown name lists the registered ones)."""
    return CODECS.get(name)


def obtain(requirement: Requirement, notify: Callable[[str], None] | None = None,
           progress: bool = True) -> tuple[Path, bool]:
    """``(file, made now?)`` of a requirement: the cached file, else made now into the cache."""
    found = requirement.find()
    if found is not None:
        return found, False
    return requirement.make(progress=progress, notify=notify)


def check(name: str, request: Request) -> list[str]:
    """Everything about ``request`` that codec ``name`` can check before any work (``ValueError``);
    returns its notices."""
    codec = entry(name)
    codec.check_bits(request.bits)
    return codec.check(request)


def build(name: str, source: ImageSource, request: Request, notify: Callable[[str], None] | None = None,
          progress: bool = True) -> MadeCodec:
    """Codec ``name`` for ``request`` on ``source``: checked, its requirement obtained (from the cache
    or made now), then built."""
    for line in check(name, request):
        if notify:
            notify(line)
    path, made = (Path(request.budget.checkpoint), False) if request.budget.checkpoint else (None, False)
    if path is None:  # a given checkpoint is the file; else the codec's requirement, cached or made now
        requirement = entry(name).requirement(request, source)
        if requirement is not None:
            path, made = obtain(requirement, notify, progress)
    return MadeCodec(entry(name).codec_for(request, source, path), path, made)


def make_codec(name: str, source: ImageSource, bits: int, channel: str = "bsc", params: dict | None = None, seed: int = 0,
               *, training: Budget | TrainConfig | None = None, checkpoint: str | Path | None = None, device: str = "cpu",
               notify: Callable[[str], None] | None = None) -> MadeCodec:
    """The registered codec ``name`` for ``source``'s images, ``bits`` channel bits, ``channel`` with
    ``params`` and ``seed``, within ``training`` or from ``checkpoint`` (see the module doc);
    ``notify`` gets a line before a training starts."""
    if isinstance(training, TrainConfig):
        training = Budget(config=training, seed=training.seed)
    budget = training or Budget(seed=seed)
    if checkpoint is not None:
        budget = budget.replace(checkpoint=str(checkpoint))
    request = Request(dataset=source.name, bits=bits, channel=channel, params=dict(params or {}), seed=seed, budget=budget,
                      device=device)
    return build(name, source, request, notify)
