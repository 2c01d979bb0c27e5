"""Training loop shared by the learned codecs.

Adam over the codec's parameters on the objective of its class (``codec.objective_class``, built
by its ``from_config``), batches of the training split, a learning-rate schedule, and model
selection by validation distortion with channel noise on (the training channel, averaged over
``val_draws`` fixed channel draws so that the choice of the best epoch is not noise).

The training channel is any registered channel block (``TrainConfig(channel="awgn",
channel_params={"ebno_db": 2})``); the BSC is the default, ``TrainConfig(eps=0.1)``, and is folded
into the sampling as before (see :mod:`commsim.learned.necst`). A BSC configuration with hard
decoder input keeps the record, hence the checkpoint name and hash, it had before channels were
configurable, so existing caches stay valid.
Training stops at the budget (``epochs``) or when the validation distortion has not improved for
``patience`` epochs; the weights of the best validation epoch are kept.

Recipes (``TrainConfig(recipe=...)``) set the schedule and the defaults of ``lr``, ``batch_size``,
``patience`` and ``val_draws``:

- ``"paper"``: the reference's set-up, constant Adam 1e-3 for the whole budget, one validation draw,
  no plateau stop.
- ``"onecycle"``: one-cycle (Smith & Topin 2019) via :class:`torch.optim.lr_scheduler.OneCycleLR`:
  cosine warm-up from ``lr / 25`` to the peak ``lr`` (3e-3) over 30 % of the budget, cosine decay to
  ``lr / 25e4``, Adam's beta1 cycled 0.95 -> 0.85 -> 0.95; batches of 100.
- ``"onecycle250"`` (the default): the same schedule on batches of 250 at a peak of 1e-2, chosen by
  time-to-quality (``benchmarks/results/batch_recipe.md``): with 75 epochs it scores what onecycle
  does with 100 (NECST eps 0.1 test l2 14.36 vs 14.34, IABF eps 0.2 23.41 vs 23.40, fp32, seed 0)
  in about half the training time (a step of 250 images costs far less than 2.5 steps of 100).
- ``"cosine"``: warm-up (cosine-shaped, from ``lr / 25``) over 5 % of the budget, then cosine decay
  to ``lr / 25e4``; beta1 fixed.

The peak rates come from an LR range test (``benchmarks/lr_range.py``; its findings are in
``benchmarks/results/lr_range.md``). All randomness flows from ``config.seed`` through three named
streams (training noise, data order, validation draws).
"""
from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from commsim.channels import get_channel
from commsim.learned.estimators import ESTIMATORS, Estimator
from commsim.learned.codec import DECODER_INPUTS, DecoderInput, LearnedCodec
from commsim.learned.vimco import VimcoForm
from commsim.core.choices import choice
from commsim.data.sources import ImageSource
from commsim.core.device import autocast, denormals_flushed, make_adam, make_generator
from commsim.core.files import StalledTrainingWarning
from commsim.core.protocol import DEFAULT_EPOCHS, MAX_EPOCHS, check_epochs  # the one default budget
from commsim.pipeline import Pipeline, distortion_metric




@dataclass(frozen=True)
class Recipe:
    """How to optimise: the schedule and the defaults it brings."""

    schedule: str          # "constant", "onecycle" or "cosine"
    lr: float              # the constant rate, or the peak of a schedule
    warmup: float          # fraction of the budget spent rising to the peak
    patience: int          # epochs without validation gain before stopping; 0 = never stop early
    val_draws: int         # channel draws the validation distortion is averaged over
    cycle_momentum: bool = False
    batch_size: int = 100  # images per step


RECIPES = {
    "paper": Recipe("constant", lr=1e-3, warmup=0.0, patience=0, val_draws=1),
    "onecycle": Recipe("onecycle", lr=3e-3, warmup=0.3, patience=20, val_draws=3, cycle_momentum=True),
    "onecycle250": Recipe("onecycle", lr=1e-2, warmup=0.3, patience=20, val_draws=3, cycle_momentum=True, batch_size=250),
    "cosine": Recipe("cosine", lr=3e-3, warmup=0.05, patience=20, val_draws=3),
}
DEFAULT_RECIPE = "onecycle250"
DEFAULT_ESTIMATOR = "st"
"""The defaults: at an equal budget of 70 epochs, onecycle + st reached test l2 14.7 on NECST at
eps 0.1 in half the time that paper + vimco took to reach 17.5 (``benchmarks/results/recipes.md``);
onecycle250 reaches onecycle's scores in about half its time (``benchmarks/results/batch_recipe.md``)."""


MAX_TRAIN_EPS = 0.5
"""The largest BSC eps a codec trains at (above it the channel is a better BSC with its bits flipped)."""
DEFAULT_TRAIN_EPS = 0.1
"""The training eps when none applies: a channel with an eps but none given, a test eps above 0.5
(:meth:`commsim.learned.entry.LearnedEntry.training_config`) or a channel without one."""


RecipeName = choice("RecipeName", "recipe", RECIPES, __name__)
"""The recipes' names as a :class:`~commsim.core.choices.Choice`."""




@dataclass
class TrainConfig:
    """Everything that determines a trained codec (it names the checkpoint and goes into its metadata).

    ``None`` fields take their defaults from the recipe (``lr``, ``batch_size``, ``patience``, ``val_draws``) or
    the estimator (``samples``: 5 for VIMCO, 1 for the pathwise ones) when the config is made, so
    the stored config always holds the values used. ``patience=0`` never stops early.
    ``vimco`` (``"paper"`` / ``"official"``, see :mod:`commsim.learned.vimco`), ``infomax_on``
    (``"clean"`` / ``"noisy"``, IABF only, see :mod:`commsim.learned.iabf`) and ``temperature``
    (Gumbel only) select the variants of the objectives.

    The training channel: ``channel`` (a registered name, default ``"bsc"``) with ``eps`` (for the
    channels that have one: bsc, bec, z; default 0.1; ``None`` for the others) and the channel's other
    parameters in ``channel_params`` (e.g. ``{"ebno_db": 2.0}`` for awgn). An ``"eps"`` given in
    ``channel_params`` moves to ``eps``, so ``TrainConfig(eps=0.1)`` and
    ``TrainConfig(channel="bsc", channel_params={"eps": 0.1})`` are the same config.
    ``decoder_input``: ``"hard"`` (decisions) or ``"soft"`` (``sigmoid(llr)``), see
    :func:`commsim.learned.codec.decoder_inputs`. ``precision``: ``"fp32"`` or ``"bf16"`` (the forward
    passes under :func:`commsim.core.device.autocast`: matrix products in bfloat16, losses, bit
    probabilities, Adam's state and the master weights in float32; evaluation is always float32).
    """

    eps: float | None = None
    epochs: int = DEFAULT_EPOCHS
    batch_size: int | None = None
    lr: float | None = None
    samples: int | None = None
    weight_decay: float = 1e-4
    seed: int = 0
    patience: int | None = None
    objective: dict = field(default_factory=dict)
    recipe: str | None = None
    estimator: str | None = None
    vimco: str = "paper"
    infomax_on: str = "clean"
    temperature: float = 1.0
    val_draws: int | None = None
    channel: str = "bsc"
    channel_params: dict = field(default_factory=dict)
    decoder_input: str = "hard"
    precision: str = "fp32"

    def __post_init__(self):
        self._check_channel()
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"a training precision is 'fp32' or 'bf16', got {self.precision!r} "
                             "(commsim.core.device.resolve_precision turns 'auto' into one for a device)")
        self.decoder_input = DecoderInput.parse(self.decoder_input)
        check_epochs(self.epochs)
        self.recipe = RecipeName.parse(self.recipe if self.recipe is not None else DEFAULT_RECIPE)
        self.batch_size = int(self.batch_size if self.batch_size is not None else RECIPES[self.recipe].batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        self.estimator = Estimator.parse(self.estimator if self.estimator is not None else DEFAULT_ESTIMATOR)
        self.vimco = VimcoForm.parse(self.vimco)
        recipe = RECIPES[self.recipe]
        self.lr = float(self.lr if self.lr is not None else recipe.lr)
        self.patience = int(self.patience if self.patience is not None else recipe.patience)
        self.val_draws = int(self.val_draws if self.val_draws is not None else recipe.val_draws)
        self.samples = int(self.samples if self.samples is not None else (5 if self.estimator == "vimco" else 1))
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0 (0 = no plateau stop), got {self.patience}")
        if self.val_draws < 1:
            raise ValueError(f"val_draws must be >= 1, got {self.val_draws}")
        if self.samples < (2 if self.estimator == "vimco" else 1):
            raise ValueError(f"estimator {self.estimator!r} needs samples >= {2 if self.estimator == 'vimco' else 1}, got {self.samples}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")

    def _check_channel(self) -> None:
        """Canonical channel fields (eps in ``eps``, floats, sorted), checked against the channel block."""
        block = get_channel(self.channel)  # a registered name or a user module file.py:NAME; an unknown name lists the registered ones
        if not isinstance(self.channel_params, dict):
            raise ValueError(f"channel_params must be a dict of channel parameters, got {type(self.channel_params).__name__}")
        params = dict(self.channel_params)
        if "eps" in params:
            if self.eps is not None and float(self.eps) != float(params["eps"]):
                raise ValueError(f"eps given twice ({self.eps} and channel_params eps={params['eps']}); give it once")
            self.eps = params.pop("eps")
        if "eps" in block.params:
            self.eps = float(self.eps) if self.eps is not None else DEFAULT_TRAIN_EPS
        elif self.eps is not None:
            raise ValueError(f"channel {self.channel!r} has no eps; its parameters are {', '.join(block.params)}")
        if self.channel == "bsc" and not 0.0 <= self.eps <= MAX_TRAIN_EPS:
            raise ValueError(f"eps must be in [0, 0.5] for training, got {self.eps:g}")
        for name, value in params.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"channel parameter {name} must be a number, got {value!r}")
        self.channel_params = {k: float(params[k]) for k in sorted(params)}
        block.check_params(self.channel_kwargs(), torch.zeros(1, 1))  # unknown names, ranges, required ones

    def channel_kwargs(self) -> dict[str, float]:
        """The training channel's parameters as its call takes them, e.g. ``{"eps": 0.1}``."""
        return {**({"eps": self.eps} if self.eps is not None else {}), **self.channel_params}

    def describe_channel(self) -> str:
        """``"bsc eps 0.1"``, ``"awgn ebno_db 2"``: the training channel in words."""
        return describe_channel(self.channel, self.channel_kwargs())

    def record(self) -> dict:
        """The config as a checkpoint stores it (``metadata["train"]``) and as its hash is taken: every
        field, less the channel fields of a BSC with hard decoder input (the record before the
        training channel became configurable, so those checkpoints keep their names)."""
        record = json.loads(json.dumps(vars(self)))
        if self.channel == "bsc":
            del record["channel"], record["channel_params"]
        if self.decoder_input == "hard":
            del record["decoder_input"]
        if self.precision == "fp32":  # the record before precisions (fp32 checkpoints keep their names)
            del record["precision"]
        return record


def describe_channel(name: str, params: dict) -> str:
    """``"awgn ebno_db 2"``: a channel and its parameters in words."""
    return " ".join([name, *(f"{k} {v:g}" for k, v in params.items() if v is not None)])


def record_channel(record: dict) -> tuple[str, dict]:
    """``(channel, parameters)`` of a stored training record (a record without them is the BSC)."""
    params = {**({"eps": record["eps"]} if record.get("eps") is not None else {}), **(record.get("channel_params") or {})}
    return record.get("channel", "bsc"), params


@dataclass
class TrainResult:
    best_epoch: int
    val_metric: str
    val_value: float
    history: list[dict]
    seconds: float
    stop: str = "budget"
    """Why training ended: ``"budget"`` (all epochs run) or ``"plateau"`` (``patience`` epochs without gain)."""
    cpu_seconds: float = 0.0
    """This process's CPU time over the training (all its threads; equal to ``seconds`` with one thread on an
    uncontended core). Neither counts the ``on_epoch`` hook."""
    threads: int = 1
    """torch's CPU threads for the whole training: fixed when it starts (the same seed, thread count and
    device give bit-identical weights; another thread count sums in another order)."""

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def stalled(self) -> bool:
        """Whether validation never improved after the first epoch of a run of at least
        :data:`STALL_EPOCHS` epochs (the weights kept are the epoch-1 ones)."""
        return self.best_epoch == 1 and len(self.history) >= STALL_EPOCHS


STALL_EPOCHS = 5
"""The fewest epochs after which a best epoch of 1 is reported as a stalled training."""


def warn_if_stalled(result: TrainResult, what: str) -> None:
    """One :class:`~commsim.core.files.StalledTrainingWarning` if ``result`` :attr:`~TrainResult.stalled`
    (``what``: the training, in words, e.g. ``"necst over bsc eps 0.2, seed 1"``)."""
    if result.stalled:
        warnings.warn(f"{what}: validation never improved after epoch 1 of {len(result.history)} "
                      f"({result.val_metric} {result.val_value:.4g}), so the model is its epoch-1 weights; train "
                      "longer (--images / --epochs) or with a lower peak rate (--recipe onecycle)",
                      StalledTrainingWarning, stacklevel=2)


def make_objective(codec: LearnedCodec, config: TrainConfig) -> torch.nn.Module:
    """The training objective of ``codec``'s class for ``config``, on the codec's device."""
    return codec.objective_class.from_config(config).to(codec.device)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int):
    """The recipe's per-step learning-rate schedule over ``total_steps`` (``None``: constant)."""
    recipe = RECIPES[config.recipe]
    if recipe.schedule == "constant":
        return None
    # OneCycleLR needs more than one step in each phase: tiny budgets get the shortest valid phases
    # (and a schedule a few steps longer than the run).
    total_steps = max(int(total_steps), 4)
    pct_start = min(max(recipe.warmup, 1.5 / total_steps), 1.0 - 1.5 / total_steps)
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=total_steps, pct_start=pct_start, anneal_strategy="cos",
        cycle_momentum=recipe.cycle_momentum, base_momentum=0.85, max_momentum=0.95, div_factor=25.0,
        final_div_factor=1e4)


def train_step(codec: LearnedCodec, objective: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
               eps: float, generator: torch.Generator, precision: str = "fp32") -> dict:
    """One optimisation step on the batch ``x [B, C, H, W]`` (the critic's first, if the objective has one),
    the forward passes at ``precision`` (the backward passes follow them); an ensemble's
    (:mod:`commsim.learned.ensemble`) on ``x [N, B, C, H, W]``, its members' losses summed (each member's
    gradient is its own). The encoder runs once per step: a critic reads its logits detached, the
    codec's loss with their gradient (the critic's update does not touch the encoder)."""
    logits = None
    if hasattr(objective, "critic_loss"):
        with autocast(x.device, precision):
            logits = codec.logits(x)
            critic_loss = objective.critic_loss(codec, x, eps, generator, logits)
        objective.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.sum().backward()
        objective.critic_optimizer.step()
    with autocast(x.device, precision):
        loss, logs = objective(codec, x, eps, generator, logits=logits)
    optimizer.zero_grad(set_to_none=True)
    loss.sum().backward()
    optimizer.step()
    return logs


def validation_distortion(codec: LearnedCodec, source: ImageSource, config: TrainConfig | float, seeds,
                          limit: int | None = None) -> float:
    """The data set's distortion on the validation split through the training channel of ``config``
    (a float: a BSC at that eps), averaged over one channel (and encoder sampling) draw per seed in
    ``seeds``; the same seeds give the same number."""
    if not isinstance(config, TrainConfig):
        config = TrainConfig(eps=float(config))
    pipeline = Pipeline(source, codec, get_channel(config.channel))
    metric = distortion_metric(source)
    params = config.channel_kwargs()
    values = [pipeline.evaluate("val", seed=int(s), limit=limit, **params).metrics[metric].mean for s in seeds]
    return float(np.mean(values))


def seed_streams(seed: int) -> dict[str, np.random.SeedSequence]:
    """The named random streams of a training run: ``noise`` (encoder sampling and channel noise),
    ``data`` (batch order) and ``validation`` (one seed per validation draw)."""
    noise, data, validation = np.random.SeedSequence(int(seed)).spawn(3)
    return {"noise": noise, "data": data, "validation": validation}


def stream_seed(sequence: np.random.SeedSequence) -> int:
    """A ``torch.Generator`` seed (63 bits) drawn from a named stream."""
    return int(sequence.generate_state(1, dtype=np.uint64)[0] >> 1)


def train_codec(codec: LearnedCodec, source: ImageSource, config: TrainConfig, progress: bool = True,
                val_limit: int | None = None,
                on_epoch: Callable[[LearnedCodec, dict], dict | None] | None = None) -> TrainResult:
    """Train ``codec`` in place on ``source``; keep the weights of the best validation epoch.

    Each epoch adds a row to ``history``: ``train_loss``, the validation distortion, ``lr``, and the wall
    (``train_seconds``, ``val_seconds``) and CPU (``cpu_seconds``: this process's, training and validation)
    time of the epoch. ``on_epoch(codec, row)``, if given, runs after the epoch's validation with the current
    (not the best) weights, e.g. for a test-set learning curve; the entries of the dict it returns are added
    to the row, and its time counts in no seconds (it must not draw from the training's random streams,
    which it cannot reach anyway).

    The training runs with denormal floats flushed to zero on the CPU (:class:`commsim.core.device.denormals_flushed`;
    the thread's previous setting is restored after).
    """
    with denormals_flushed():
        return _train_codec(codec, source, config, progress, val_limit, on_epoch)


def _train_codec(codec: LearnedCodec, source: ImageSource, config: TrainConfig, progress: bool = True,
                val_limit: int | None = None,
                on_epoch: Callable[[LearnedCodec, dict], dict | None] | None = None) -> TrainResult:
    """:func:`train_codec` without the floating-point setting."""
    device = codec.device
    streams = seed_streams(config.seed)
    generator = make_generator(stream_seed(streams["noise"]), device)
    data_generator = make_generator(stream_seed(streams["data"]))
    val_seeds = streams["validation"].generate_state(config.val_draws)
    objective = make_objective(codec, config)
    optimizer = make_adam(codec.parameters(), config.lr)
    steps_per_epoch = math.ceil(source.size("train") / config.batch_size)
    scheduler = make_scheduler(optimizer, config, steps_per_epoch * config.epochs)
    metric = distortion_metric(source)
    best_value, best_epoch, best_state = float("inf"), 0, None
    history: list[dict] = []
    stop = "budget"
    start, cpu_start, hook_seconds, hook_cpu = time.perf_counter(), time.process_time(), 0.0, 0.0
    fixed_threads = torch.get_num_threads()  # fixed for the whole training: the same seed gives the same weights
    if codec.decoder_input != config.decoder_input:
        raise ValueError(f"the codec reads {codec.decoder_input} decoder input but the config trains {config.decoder_input}; "
                         "build it with decoder_input=config.decoder_input")
    bar = tqdm(range(1, config.epochs + 1), desc=f"train {codec.name} {config.describe_channel()}", unit="epoch",
               disable=not progress, leave=False)
    for epoch in bar:
        codec.train()
        total, steps = 0.0, 0
        epoch_start, epoch_cpu = time.perf_counter(), time.process_time()
        for x, _ in source.batches("train", config.batch_size, shuffle=True, generator=data_generator, device=device):
            logs = train_step(codec, objective, optimizer, x, config.eps, generator, config.precision)
            if scheduler is not None:
                scheduler.step()
            total += logs["loss"]
            steps += 1
        lr = optimizer.param_groups[0]["lr"]
        val_start = time.perf_counter()
        val = validation_distortion(codec, source, config, val_seeds, val_limit)
        row = {"epoch": epoch, "train_loss": total / steps, f"val_{metric}": val, "lr": lr,
               "train_seconds": val_start - epoch_start, "val_seconds": time.perf_counter() - val_start,
               "cpu_seconds": time.process_time() - epoch_cpu}
        if on_epoch is not None:
            hook_start, hook_cpu_start = time.perf_counter(), time.process_time()
            row.update(on_epoch(codec, dict(row)) or {})
            codec.train()
            hook_seconds += time.perf_counter() - hook_start
            hook_cpu += time.process_time() - hook_cpu_start
        history.append(row)
        if val < best_value:
            best_value, best_epoch = val, epoch
            best_state = {k: v.detach().clone() for k, v in codec.state_dict().items()}
        if torch.get_num_threads() != fixed_threads:  # e.g. an on_epoch hook changed it: back to the training's count
            torch.set_num_threads(fixed_threads)
        bar.set_postfix(loss=f"{total / steps:.3g}", val=f"{val:.4g}", best=f"{best_value:.4g}")
        if config.patience and epoch - best_epoch >= config.patience and epoch < config.epochs:
            stop = "plateau"
            break
    if best_state is not None:
        codec.load_state_dict(best_state)
    codec.eval()
    result = TrainResult(best_epoch, metric, best_value, history, time.perf_counter() - start - hook_seconds, stop,
                         time.process_time() - cpu_start - hook_cpu, fixed_threads)
    warn_if_stalled(result, f"{codec.name} over {config.describe_channel()}, seed {config.seed}")
    return result


__all__ = ["DECODER_INPUTS", "DEFAULT_EPOCHS", "ESTIMATORS", "RECIPES", "Recipe", "TrainConfig", "TrainResult", "make_objective",
           "describe_channel", "make_scheduler", "record_channel", "train_codec", "train_step", "validation_distortion"]
