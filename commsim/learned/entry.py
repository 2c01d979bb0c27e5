"""The learned codecs' side of the codec protocol (:mod:`commsim.core.protocol`).

``necst``, ``abf`` and ``iabf`` are registered as :class:`LearnedEntry` objects around their codec
classes. The entry owns the rules that were spread over the CLI and the sweep:

- the **training-eps rule** (:meth:`LearnedEntry.training_config`): a codec trains over the BSC at
  ``--train-eps``, else at the request's eps where a codec can be trained at it (<= 0.5), else at 0.1,
  with a notice saying so; or (``train_channel="same"``) over the request's own channel and
  parameters;
- which training channels a codec accepts (ABF / IABF: the BSC only);
- what must exist before a point is evaluated: its checkpoint (:class:`Training`, a cache entry of
  :mod:`commsim.learned.zoo`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from commsim.core.device import resolve_device, resolve_precision
from commsim.core.protocol import DEFAULT_EPOCHS, Budget, Request
from commsim.core.registry import CODECS
from commsim.data import load_dataset
from commsim.data.sources import ImageSource
from commsim.learned.codec import LearnedCodec
from commsim.learned.training import DEFAULT_TRAIN_EPS, MAX_TRAIN_EPS, TrainConfig
from commsim.learned.ensemble import ensemble_key, stack_refusal
from commsim.learned.networks import default_architecture
from commsim.learned.zoo import (cache_entry, cached_checkpoints, cached_or_trained, codec_from_checkpoint, describe_training,
                                 train_and_save, train_and_save_many)

SECONDS_PER_IMAGE = {("necst", "fp32"): 55e-6, ("necst", "bf16"): 31e-6, ("abf", "fp32"): 76e-6, ("abf", "bf16"): 45e-6,
                     ("iabf", "fp32"): 104e-6, ("iabf", "bf16"): 65e-6}
"""Rough training seconds per image seen, one CPU thread of the 2-core development machine (Intel Xeon with
AMX, torch 2.13), batch 250, a pathwise estimator (VIMCO: about twice as long): NECST and IABF measured
(``benchmarks/speed.py``'s commsim rates, 2026-12-02), ABF interpolated between them as its step is; for a
sweep's cost notice. A plateau stop can end a training sooner; smaller batches cost more per image."""
VALIDATION_SECONDS = 0.06
"""Seconds per epoch of validation (3 channel draws over 1,000 images, float32, one thread) on the same machine."""


@dataclass(frozen=True)
class Training:
    """The checkpoint a learned codec needs: ``codec`` trained on ``dataset`` (``data_path``) with
    ``bits`` and ``config`` (a :class:`~commsim.core.protocol.Requirement`)."""

    codec: str
    dataset: str
    data_path: str | None
    bits: int
    config: TrainConfig
    key: str
    device: str = "cpu"

    def with_source(self, source: ImageSource | None) -> "Training":
        """This requirement holding ``source`` in this process (never pickled: workers load the data again)."""
        object.__setattr__(self, "_source", source)
        return self

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_source"}

    def source(self) -> ImageSource:
        source = self.__dict__.get("_source")
        if source is None:
            source = load_dataset(self.dataset, self.data_path)
            object.__setattr__(self, "_source", source)
        return source

    def describe(self) -> str:
        return f"training {self.codec} at {describe_training({'train': self.config.record()})}"

    def cache_path(self) -> Path:
        return cache_entry(self.codec, self.source(), self.bits, self.config)

    def find(self) -> Path | None:
        found = cached_checkpoints(self.codec, self.dataset, self.bits, config=self.config, data=self.source().identity)
        return found[0] if found else None

    def make(self, out: Path | None = None, progress: bool = False,
             notify: Callable[[str], None] | None = None) -> tuple[Path, bool]:
        source = self.source()
        if out is not None:
            return train_and_save(self.codec, source, self.bits, self.config, out=out, device=self.device,
                                  progress=progress)[2], True
        _, path, trained = cached_or_trained(self.codec, self.dataset, self.bits, self.config, source, device=self.device,
                                             progress=progress, notify=notify)
        return path, trained

    def seconds(self) -> float:
        per_image = SECONDS_PER_IMAGE.get((self.codec, self.config.precision), SECONDS_PER_IMAGE["iabf", "fp32"])
        per_epoch = per_image * self.source().size("train") * (2.0 if self.config.estimator == "vimco" else 1.0)
        return (per_epoch + VALIDATION_SECONDS) * self.config.epochs

    @property
    def together(self) -> str | None:
        """Trainings with the same text train as one batched ensemble (:mod:`commsim.learned.ensemble`):
        the same codec, data, bits and device, and configs that differ only in seed, eps and IABF's lam;
        ``None`` (alone) for what an ensemble cannot stack (another channel than the BSC, conv networks)."""
        if stack_refusal(self.config, default_architecture(self.source().image_shape)):
            return None
        return f"{self.codec}|{self.dataset}|{self.data_path}|{self.bits}|{self.device}|{ensemble_key(self.config)}"

    @classmethod
    def make_group(cls, trainings: list["Training"], outs: list[Path] | None = None, progress: bool = False) -> list[Path]:
        """Train ``trainings`` (one :attr:`together` text) as one ensemble into the cache (each entry
        locked) or into ``outs``; their paths, in order."""
        first = trainings[0]
        made = train_and_save_many(first.codec, first.source(), first.bits, [t.config for t in trainings], outs=outs,
                                   device=first.device, progress=progress)
        return [path for _, _, path in made]


class LearnedEntry:
    """The registry entry of a learned codec class (see the module doc)."""

    chains = True

    def __init__(self, codec_class: type[LearnedCodec]):
        self.codec_class = codec_class
        self.name = codec_class.name
        self.__doc__ = codec_class.__doc__

    def __repr__(self) -> str:
        return f"LearnedEntry({self.codec_class.__name__})"

    def __reduce__(self):  # travels to workers by name: they register the same entries on import
        return (_registered_entry, (self.name,))

    def check_bits(self, bits: int) -> int:
        return self.codec_class.check_bits(bits)

    def check(self, request: Request) -> list[str]:
        if request.budget.checkpoint is not None:
            return []
        return self.training_config(request)[1]

    def training_config(self, request: Request, source: ImageSource | None = None) -> tuple[TrainConfig, list[str]]:
        """``(the training configuration of the request, notices)`` (the one training-eps rule, see the
        module doc); a bad budget or channel raises ``ValueError`` before any work. The budget becomes
        epochs for ``source``'s training split (without a source, for the checks only: the epochs given
        or the default), the precision the device's (``auto``: bf16 where it has bf16 units)."""
        config, notes = self._config_and_notes(request, source)
        self.codec_class.objective_class.check_config(config)
        return config, notes

    def _config_and_notes(self, request: Request, source: ImageSource | None) -> tuple[TrainConfig, list[str]]:
        """:meth:`training_config` before the objective's own check."""
        budget, params = request.budget, dict(request.params)
        if budget.config is not None:
            if not isinstance(budget.config, TrainConfig):
                raise ValueError(f"a training config must be a TrainConfig, got {type(budget.config).__name__}")
            return budget.config, []
        epochs = budget.epochs_for(source.size("train")) if source is not None else budget.epochs or DEFAULT_EPOCHS
        options = {"epochs": epochs, "seed": budget.seed, "recipe": budget.recipe, "estimator": budget.estimator,
                   "decoder_input": budget.decoder_input, "patience": budget.patience,
                   "precision": resolve_precision(budget.precision, resolve_device(request.device))}
        if budget.train_channel == "same":
            if budget.train_eps is not None:
                if "eps" not in params:
                    raise ValueError(f"channel {request.channel!r} has no eps to train at; drop --train-eps")
                params["eps"] = budget.train_eps
            return TrainConfig(channel=request.channel, channel_params=params, **options), []
        notes, train_eps = [], budget.train_eps
        if train_eps is None:
            eps = params.get("eps")
            train_eps = eps if eps is not None and eps <= MAX_TRAIN_EPS else DEFAULT_TRAIN_EPS
            if eps is None:
                notes.append(f"note: channel {request.channel} has no eps; using a codec trained over the BSC at eps "
                             f"{train_eps:g} (--train-eps to choose, --train-channel same to train over {request.channel})")
            elif eps > MAX_TRAIN_EPS:
                notes.append(f"note: eps {eps:g} > {MAX_TRAIN_EPS:g}; using a codec trained at eps {train_eps:g} (--train-eps to choose)")
        if not 0 <= train_eps <= MAX_TRAIN_EPS:
            raise ValueError(f"--train-eps must be in [0, {MAX_TRAIN_EPS:g}], got {train_eps:g}")
        return TrainConfig(eps=train_eps, **options), notes

    def train_eps_values(self, param: str, value: float, train_eps: list[float] | None) -> list[float | None]:
        if train_eps is not None:
            return list(train_eps)
        if param != "eps":
            raise ValueError(f"--train-eps same needs an eps channel; give --train-eps values for a {param} sweep")
        return [value]

    def requirement(self, request: Request, source: ImageSource | None = None) -> Training:
        source = source or load_dataset(request.dataset, request.data_path)
        config = self.training_config(request, source)[0]
        key = cache_entry(self.name, source, request.bits, config).name
        training = Training(self.name, request.dataset, request.data_path, request.bits, config, key, request.device)
        return training.with_source(source)

    def codec_for(self, request: Request, source: ImageSource, artifact: Path | None) -> LearnedCodec:
        if artifact is None:
            raise ValueError(f"{self.name} needs a checkpoint; obtain its requirement first")
        return codec_from_checkpoint(artifact, self.name, source.name, request.bits, source, request.device)

    def train(self, request: Request, source: ImageSource, out: str | None = None):
        """``commsim train``: train over the request's channel into ``out`` (or the cache); ``(codec, facts, path)``."""
        config = self.training_config(request.replace(budget=request.budget.replace(train_channel="same")), source)[0]
        codec, result, path = train_and_save(self.name, source, request.bits, config, out=out, device=request.device)
        over = config.describe_channel() + (f", {config.decoder_input} decoder input" if config.decoder_input != "hard" else "")
        summary = f"best epoch {result.best_epoch}/{len(result.history)}, val {result.val_metric} {result.val_value:.4f}"
        return codec, {"over": over, "summary": summary, "seconds": result.seconds}, path


def _registered_entry(name: str) -> LearnedEntry:
    return CODECS.get(name)


__all__ = ["Budget", "LearnedEntry", "Training"]
