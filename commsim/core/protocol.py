"""The codec protocol: the questions every registered codec answers, learned or separated.

A registry entry (``CODECS.get(name)``) is a :class:`CodecEntry`. The command line, the sweep, the
Ray executor, plotting and the benchmarks ask the entry, never what kind of codec it is:

1. ``check(request) -> notices``: is this request one the codec can serve? Raises ``ValueError``
   (one line saying what to do) *before any work*, e.g. a checkpoint given to a separated scheme, or
   ABF asked to train over AWGN; returns notices to show the user (e.g. "eps 0.7 > 0.5: using a
   codec trained at eps 0.1").
2. ``train_eps_values(param, value, train_eps) -> [float | None]``: the training eps a sweep pairs with
   the test value ``value`` of the swept ``param`` (``train_eps``: the sweep's list, ``None`` for "the
   test eps"); ``[None]`` for a codec that trains nothing.
3. ``requirement(request, source) -> Requirement | None``: what must exist before the codec can be built
   for the request: nothing (``None``), or a :class:`Requirement` (a trained checkpoint, a fitted
   model): a file in the one cache that the executors obtain once, in parallel, or ship to Ray.
4. ``codec_for(request, source, artifact) -> Codec``: the codec, ready to run, from the artifact
   (the requirement's file, or the budget's ``checkpoint`` when one is given: the factory passes it
   instead of asking for the requirement; ``None`` when there is neither).
5. ``train(request, source, out) -> (codec, facts, path)``: ``commsim train`` over the request's
   channel (``facts``: ``over``, the training channel in words; ``summary``, one line of how it went;
   ``seconds``); an entry that learns nothing raises ``ValueError`` saying so.

Built codecs describe themselves in a sweep's CSV row through :meth:`commsim.core.codec.Codec.row_fields`.

A new kind of codec is one class with these methods, registered with
``commsim.core.registry.register_codec(name)(entry)``: nothing else changes (``tests/test_codec_protocol.py``
runs a toy kind through ``run``, ``sweep`` (local and Ray) and ``plot``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

from commsim.core.choices import choice

DEFAULT_IMAGES = 600_000
"""The one default training budget (``train``, ``run``, ``sweep``, ``sample``), in training images seen:
the same cost whatever the data set's size (75 epochs of the embedded 8,000 digits, where the default
recipe scores what 100 epochs of the earlier one did; 10 of a 60,000-image set). ``Budget(epochs=N)`` /
``--epochs N`` gives epochs instead."""
DEFAULT_EPOCHS = 75
"""A :class:`~commsim.learned.TrainConfig`'s default epochs (the exact API configuration): the default
images budget on the embedded 8,000 training digits."""
MAX_EPOCHS = 1_000_000
"""The largest training budget in epochs (a million epochs of the embedded digits is weeks of CPU)."""
MAX_IMAGES = 10**10
"""The largest training budget in images seen (days of CPU)."""
PRECISIONS = ("auto", "fp32", "bf16")
"""The training precisions a budget takes (``auto``: bf16 where the device has bf16 matrix units, see
:func:`commsim.core.device.resolve_precision`)."""
Precision = choice("Precision", "precision", PRECISIONS, __name__)
"""The precisions as a :class:`~commsim.core.choices.Choice` (the one check of a precision's name)."""


def check_epochs(epochs: int) -> int:
    if not 1 <= int(epochs) <= MAX_EPOCHS:
        raise ValueError(f"epochs must be between 1 and {MAX_EPOCHS:,} (the training budget), got {epochs}")
    return int(epochs)


def parse_images(text: str | int) -> int:
    """A budget in images seen: ``800000``, ``800k``, ``1.2M`` (``ValueError`` saying what to give)."""
    value = str(text).strip().lower().replace("_", "").replace(",", "")
    scale = {"k": 10**3, "m": 10**6}.get(value[-1:], 1)
    try:
        images = float(value[:-1] if scale > 1 else value) * scale
    except ValueError:
        raise ValueError(f"a budget in images is a number such as 800000, 800k or 1.2M, got {text!r}") from None
    if not (images == int(images) and 1 <= images <= MAX_IMAGES):
        raise ValueError(f"the images budget must be a whole number between 1 and {MAX_IMAGES:,}, got {text!r}")
    return int(images)


@dataclass(frozen=True)
class Budget:
    """What may be spent on learning, as the user gave it; each codec reads what applies to it (a
    learned codec all of it, a separated scheme whose source code trains only ``epochs``, the others
    nothing).

    ``checkpoint`` is the explicit "load this file" path: with it nothing is trained or looked up.
    ``train_channel``: ``"bsc"`` (train over the BSC at ``train_eps``) or ``"same"`` (over the
    request's own channel and parameters, ``train_eps`` replacing its eps). ``train_eps=None``: the
    request's eps where a codec can be trained at it (the rule lives with the learned codecs:
    :meth:`commsim.learned.entry.LearnedEntry.training_config`)."""

    epochs: int | None = None
    seed: int = 0
    recipe: str | None = None
    estimator: str | None = None
    decoder_input: str = "hard"
    train_channel: str = "bsc"
    train_eps: float | None = None
    checkpoint: str | None = None
    patience: int | None = None
    config: Any = None
    """An exact training configuration (a :class:`commsim.learned.TrainConfig`, for the Python API) that
    replaces the fields above for a learned codec."""
    images: int | None = None
    """The budget in training images seen (``epochs`` or ``images``, not both; neither:
    :data:`DEFAULT_IMAGES`), made epochs for the data set at hand by :meth:`epochs_for`."""
    precision: str = "auto"
    """``auto``, ``fp32`` or ``bf16`` (:data:`PRECISIONS`), resolved for the device when a training is configured."""

    def __post_init__(self):
        if self.epochs is not None:
            check_epochs(self.epochs)
        if self.images is not None:
            if self.epochs is not None:
                raise ValueError("give the training budget once: epochs or images, not both")
            object.__setattr__(self, "images", parse_images(self.images))
        object.__setattr__(self, "precision", Precision.parse(self.precision))
        if self.train_channel not in ("bsc", "same"):
            raise ValueError(f"train_channel must be 'bsc' or 'same', got {self.train_channel!r}")
        if self.checkpoint is not None and not Path(self.checkpoint).is_file():
            raise ValueError(f"checkpoint {self.checkpoint} does not exist; train one with `commsim train`")

    def replace(self, **changes) -> "Budget":
        return dataclasses.replace(self, **changes)

    def epochs_for(self, train_images: int) -> int:
        """The budget in epochs of a training split of ``train_images`` images: ``epochs`` as given, else
        the images budget rounded up to whole epochs (at least one)."""
        if self.epochs is not None:
            return self.epochs
        images = self.images if self.images is not None else DEFAULT_IMAGES
        return check_epochs(max(1, -(-images // int(train_images))))


@dataclass(frozen=True)
class Request:
    """One point a codec is built for: the data (``dataset`` with its ``data_path``), ``bits`` channel
    bits per image, the channel (a registered name or a user module ``file.py:NAME``) with its
    ``params``, the evaluation ``seed``, the ``budget`` and the ``device``. Plain fields only, so that
    a request travels to worker processes and Ray tasks."""

    dataset: str
    bits: int
    channel: str = "bsc"
    params: dict = field(default_factory=dict)
    seed: int = 0
    budget: Budget = field(default_factory=Budget)
    device: str = "cpu"
    data_path: str | None = None

    def replace(self, **changes) -> "Request":
        return dataclasses.replace(self, **changes)


class NoCodecHere(ValueError):
    """A request a codec cannot serve at this point although it is valid (e.g. no image fits the
    bit budget of a separated scheme): a sweep records the point with this note instead of metrics."""


@runtime_checkable
class Requirement(Protocol):
    """Something a codec needs before it is built: one file in the one cache. Picklable (it travels
    to worker processes and Ray tasks, which load the data again from the request's data set and
    path); equal requirements have equal ``key``."""

    key: str
    """The cache file name (unique per configuration): points with the same key share the file."""

    def describe(self) -> str:
        """``"training necst at eps 0.1"``: what making it does, for progress lines and errors."""

    def find(self) -> Path | None:
        """The cached file, if there is a valid one."""

    def make(self, out: Path | None = None, progress: bool = False,
             notify: Callable[[str], None] | None = None) -> tuple[Path, bool]:
        """Make the file: into the cache (``out=None``: locked, so concurrent processes make it once)
        or into ``out`` (a worker-local file whose bytes go back to the driver). Returns its path and
        whether it was made now (``False``: another process made it while this one waited)."""

    def cache_path(self) -> Path:
        """Where the cache keeps (or will keep) it."""

    def seconds(self) -> float:
        """A rough cost estimate for the sweep's notice (seconds on one CPU thread)."""

    # Optional (a requirement without them is made alone): ``together``, a text equal for the
    # requirements that can be made as one (e.g. trainings stacked into one batched ensemble), and the
    # classmethod ``make_group(requirements, outs=None, progress=False) -> [path]`` that makes them
    # (into the cache, locked, or into ``outs``). See :func:`group_requirements`.


def group_requirements(requirements: list, parts: int = 1, most: int | None = None,
                       together: Callable[[Any], str | None] = lambda r: getattr(r, "together", None)) -> list[list]:
    """``requirements`` as the groups an executor makes, each in one task: those with the same
    ``together(r)`` text (by default their ``together``; ``None``: alone), each such set dealt round-robin
    into up to ``parts`` groups (one per worker slot, so that every slot has work) of at most ``most``
    members. Order: groups in the order of their first requirement."""
    sets: dict[object, list] = {}
    for n, requirement in enumerate(requirements):
        key = together(requirement)
        sets.setdefault(key if key is not None else ("alone", n), []).append(requirement)
    groups = []
    for members in sets.values():
        count = max(min(int(parts), len(members)), -(-len(members) // most) if most else 1)
        groups += [members[i::count] for i in range(count)]
    return groups


@runtime_checkable
class CodecEntry(Protocol):
    """A registered codec (see the module doc).

    Optional: ``budget_reads``, the :class:`Budget` fields whose value can change the codec's results
    (see :func:`budget_reads`; an entry without it is taken to read them all)."""

    name: str
    chains: bool
    """Whether ``commsim sample`` can run its Markov chain on the codec (a decoder with per-pixel
    probabilities, trained to be run repeatedly)."""

    def check_bits(self, bits: int) -> int: ...

    def check(self, request: Request) -> list[str]: ...

    def train_eps_values(self, param: str, value: float, train_eps: list[float] | None) -> list[float | None]: ...

    def requirement(self, request: Request, source: Any) -> Requirement | None: ...

    def codec_for(self, request: Request, source: Any, artifact: Path | None) -> Any: ...

    def train(self, request: Request, source: Any, out: str | None = None) -> tuple[Any, dict, Path]: ...


LEARNING_FIELDS = frozenset(f.name for f in dataclasses.fields(Budget))
"""Every :class:`Budget` field: what a learned codec reads."""


def budget_reads(entry) -> frozenset[str]:
    """The :class:`Budget` fields whose value can change ``entry``'s results (its ``budget_reads``, else
    all of them): a resumed sweep compares a row's settings only in these (a separated scheme's rows do
    not depend on the training epochs of the learned codecs beside it)."""
    return frozenset(getattr(entry, "budget_reads", LEARNING_FIELDS))


class TrainsNothing:
    """Defaults of an entry that needs nothing before it is built (the separated schemes): no
    training eps, no requirement, no checkpoint, nothing to train, no Markov chain."""

    name: str = "codec"
    chains = False
    what = "not a learned codec"
    """What the entry is, in the messages that refuse a checkpoint or a training."""
    budget_reads: frozenset[str] = frozenset()
    """It reads nothing of the budget (a subclass that does names the fields)."""

    def check(self, request: Request) -> list[str]:
        if request.budget.checkpoint is not None:
            raise ValueError(f"codec {self.name!r} is {self.what} and takes no checkpoint")
        return []

    def train_eps_values(self, param: str, value: float, train_eps: list[float] | None) -> list[float | None]:
        return [None]

    def requirement(self, request: Request, source: Any = None) -> Requirement | None:
        return None

    def train(self, request: Request, source: Any, out: str | None = None):
        raise ValueError(f"codec {self.name!r} is {self.what} and needs no training; use `commsim run`")
