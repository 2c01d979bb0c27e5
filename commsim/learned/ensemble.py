"""Batched ensembles: N trainings of one learned codec in one process, as ONE stacked model.

The members (NECST, ABF or IABF with the MLP networks, trained over the BSC) share the codec class,
architecture, recipe and budget, and differ in their seed, their training eps and IABF's ``lam``
(:func:`check_ensemble` names the first field that would differ otherwise). Their networks are
stacked, weights ``[N, in, out]`` multiplied with ``torch.bmm`` / ``torch.baddbmm``
(:class:`StackedMLP`), so one ensemble step costs a few batched matrix products instead of N
trainings' small ones; one fused Adam over the stacked parameters is elementwise, so per member it is
the same algorithm, and the members' losses are summed (never averaged), so each member's gradient is
its own. ``train_ensemble(codecs, source, configs)`` trains them and leaves each codec with its best
weights and a :class:`~commsim.learned.training.TrainResult` like ``train_codec``'s.

What is bit-identical to N single trainings (``train_codec`` of each codec with its config):

- the initial weights (member n is stacked from the codec a single training of its seed starts from;
  IABF's discriminator starts, for every member, from the single one's initialisation);
- the random draws: each member has its own named streams (:func:`~commsim.learned.training.seed_streams`
  of its seed: noise, data, validation), and draws from them the same numbers, in the same shapes and
  order per step, as its single training (:class:`~commsim.learned.members.MemberGenerators`,
  :func:`~commsim.learned.members.uniform`);
- the batch order: each member its own ``torch.randperm`` from its data generator per epoch, as
  :meth:`ImageSource.batches` draws it (and a dynamic binarization's pixels from the same generator);
- the validation: each member's codec (its weights written back) through ``validation_distortion``
  with its own validation seeds; the best epoch, the best weights and the plateau stop per member.

What matches only in distribution: the weights after the first step. The stacked eps (and IABF's
lam) is a float32 tensor where a single training multiplies by a Python float (rounded once, in
double), and ``bmm`` may sum its products in another order than ``mm`` (another kernel, another
thread count or device), so the weights may differ in the last bits after a step and then drift apart
as any two float orders do. Measured on the CPU with one thread, after 2 epochs of 10 steps (16 bits):
NECST st bit-identical, NECST vimco and ABF gumbel equal or within 2e-9, IABF (float lam) within 4e-7;
the first step's loss agrees to 1e-6, the validation distortion after a short training to well within
the spread between seeds. A member's numbers do not depend on the other members' (each batch of
``bmm`` is its own product; tested bit for bit at one position in the stack); its position in the
stack may move the last bits (7e-9 measured), as another kernel path would.

A member that stops early (plateau) is frozen, its result and best weights final, and dropped from
the stack (its weights, Adam moments and random streams), so the others' steps get cheaper.

Speed (``benchmarks/ensemble.py``: 12 NECST members of 100 bits, st, batch 100, on the 2-core CPU machine):
1.1-1.3x the throughput of 12 single trainings at one thread (the products are as large in sum; the gain is
in fewer, larger kernels and less Python per step), 1.7x at two threads (larger products split better
over threads). Validation stays per member.

``torch.func.stack_module_state`` + ``vmap`` was not used: randomness inside ``vmap`` comes from
torch's global generator only (``randomness="different"``), not from per-member ``torch.Generator``
objects, so the members could not draw their single trainings' numbers.

The forward passes run at the members' ``TrainConfig.precision`` (one for all), as in ``train_codec``: each
step is :func:`~commsim.learned.training.train_step` (``commsim.core.device.autocast``; the stacked products
autocast to bfloat16 as ``mm`` does, logits and losses float32).
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from commsim.core.device import denormals_flushed, make_adam, make_generator
from commsim.data.sources import ImageSource
from commsim.learned.codec import LearnedCodec
from commsim.learned.members import MemberGenerators, uniform
from commsim.learned.networks import LEAK
from commsim.learned.training import (TrainConfig, TrainResult, make_objective, make_scheduler, seed_streams, stream_seed,
                                      train_step, validation_distortion, warn_if_stalled)
from commsim.pipeline import distortion_metric

__all__ = ["MemberGenerators", "StackedCodec", "StackedMLP", "check_ensemble", "ensemble_key", "stack_refusal",
           "train_ensemble", "uniform"]

PER_MEMBER_FIELDS = ("seed", "eps", "objective")
"""The :class:`TrainConfig` fields members may differ in (of ``objective``, only ``lam``)."""
PER_MEMBER_OBJECTIVE = ("lam",)


def linear_layers(net: nn.Module) -> list[nn.Linear]:
    """The ``nn.Linear`` layers of an MLP that :class:`StackedMLP` can stack: an optional leading
    ``Flatten``, then Linear layers separated by ``LeakyReLU(0.2)`` (the codecs' MLPs, IABF's discriminator)."""
    leaves = [m for m in net.modules() if not list(m.children())]
    if leaves and isinstance(leaves[0], nn.Flatten):
        leaves = leaves[1:]
    ok = len(leaves) % 2 == 1 and all(isinstance(m, nn.Linear) for m in leaves[::2]) and all(
        isinstance(m, nn.LeakyReLU) and m.negative_slope == LEAK for m in leaves[1::2])
    if not ok:
        raise ValueError(f"cannot stack {type(net).__name__}: only MLPs of Linear layers separated by LeakyReLU({LEAK}) "
                         "stack; train this codec separately")
    return leaves[::2]


class StackedMLP(nn.Module):
    """N MLPs of one structure as one module: ``x [N, ..., in] -> [N, ..., out]``.

    Layer i holds ``weight_i [N, in, out]`` (member n's ``nn.Linear.weight`` transposed) and, where
    the layer has one, ``bias_i [N, 1, out]``; leaky ReLU 0.2 between layers, as in
    :mod:`commsim.learned.networks`."""

    def __init__(self, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor | None]):
        super().__init__()
        self.weights = nn.ParameterList([nn.Parameter(w) for w in weights])
        self.has_bias = [b is not None for b in biases]
        self.biases = nn.ParameterList([nn.Parameter(b) for b in biases if b is not None])

    @classmethod
    def stack(cls, nets: Sequence[nn.Module]) -> "StackedMLP":
        """Member n's weights copied from ``nets[n]`` (they must have one structure)."""
        layers = [linear_layers(net) for net in nets]
        shapes = [[tuple(layer.weight.shape) + (layer.bias is not None,) for layer in ls] for ls in layers]
        if any(s != shapes[0] for s in shapes):
            raise ValueError("cannot stack networks of different shapes; train them separately")
        weights = [torch.stack([ls[i].weight.detach().t() for ls in layers]) for i in range(len(layers[0]))]
        biases = [torch.stack([ls[i].bias.detach() for ls in layers]).unsqueeze(1) if layers[0][i].bias is not None else None
                  for i in range(len(layers[0]))]
        return cls(weights, biases)

    def layers(self):
        """``(weight, bias or None)`` per layer."""
        biases = iter(self.biases)
        return [(w, next(biases) if has else None) for w, has in zip(self.weights, self.has_bias)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, lead = x.shape[0], x.shape[1:-1]
        h = x.reshape(n, -1, x.shape[-1])
        for i, (w, b) in enumerate(self.layers()):
            if i:
                h = F.leaky_relu(h, LEAK)
            h = torch.bmm(h, w) if b is None else torch.bmm(h, w) + b  # not baddbmm: its backward scales by alpha, a copy
        return h.reshape(n, *lead, h.shape[-1])

    @torch.no_grad()
    def unstack(self, member: int, net: nn.Module) -> None:
        """Write member ``member``'s weights into ``net`` (a network of the stacked structure)."""
        for layer, (w, b) in zip(linear_layers(net), self.layers()):
            layer.weight.copy_(w[member].t())
            if b is not None:
                layer.bias.copy_(b[member, 0])


class StackedCodec(nn.Module):
    """N learned codecs' encoders and decoders stacked: the methods the objectives call on a codec,
    with a leading member axis (``x [N, B, C, H, W]``, logits ``[N, B, m]``, codes ``[N, K, B, m]``,
    losses ``[N, K, B]``, penalty ``[N]``)."""

    def __init__(self, codecs: Sequence[LearnedCodec]):
        super().__init__()
        first = codecs[0]
        self.bits, self.binary, self.image_shape = first.bits, first.binary, tuple(first.image_shape)
        self.decoder_input = first.decoder_input
        self.encoder = StackedMLP.stack([c.encoder for c in codecs])
        self.decoder = StackedMLP.stack([c.decoder for c in codecs])

    @property
    def device(self) -> torch.device:
        return self.encoder.weights[0].device

    @property
    def members(self) -> int:
        return self.encoder.weights[0].shape[0]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``x [N, B, C, H, W]`` -> encoder logits ``[N, B, m]``, float32 (as :meth:`LearnedCodec.logits`)."""
        return self.encoder(x.flatten(2)).float()

    def pixel_logits(self, y: torch.Tensor) -> torch.Tensor:
        """Decoder inputs ``[N, ..., m]`` -> flat pixel logits ``[N, ..., C*H*W]``, float32."""
        return self.decoder(y).float()

    def reconstruction_loss(self, x: torch.Tensor, pixel_logits: torch.Tensor) -> torch.Tensor:
        """:meth:`LearnedCodec.reconstruction_loss` per member: ``x [N, B, C, H, W]``,
        ``pixel_logits [N, ..., B, C*H*W]`` -> ``[N, ..., B]``."""
        n, b = x.shape[:2]
        target = x.flatten(2).reshape(n, *[1] * (pixel_logits.dim() - 3), b, -1).expand_as(pixel_logits)
        if self.binary:
            return F.binary_cross_entropy_with_logits(pixel_logits, target, reduction="none").sum(-1)
        return (torch.sigmoid(pixel_logits) - target).pow(2).sum(-1)

    def encoder_penalty(self) -> torch.Tensor:
        """``sum(W^2) / 2`` over each member's encoder weight matrices, ``[N]`` (``w * w``: the same numbers
        as ``pow(2)``, and its backward is twice as fast on a stacked ``[N, 784, 500]``)."""
        return sum((w * w).sum((1, 2)) for w in self.encoder.weights) / 2

    def unstack(self, member: int, codec: LearnedCodec) -> None:
        """Write member ``member``'s weights into ``codec``."""
        self.encoder.unstack(member, codec.encoder)
        self.decoder.unstack(member, codec.decoder)


class StackedDiscriminator(nn.Module):
    """IABF's discriminator stacked: codes ``[N, B, m]`` -> logits ``[N, B]``
    (:class:`commsim.learned.iabf.Discriminator` per member)."""

    def __init__(self, discriminator: nn.Module, members: int):
        super().__init__()
        self.net = StackedMLP.stack([discriminator.net] * members)

    def forward(self, codes):
        return self.net(codes).squeeze(-1).float()


def stack_refusal(config: TrainConfig, architecture: str) -> str | None:
    """Why a training of ``config`` with ``architecture`` networks cannot be an ensemble's member (``None``: it can)."""
    if architecture != "mlp":
        return f"ensembles stack MLP codecs only, not architecture {architecture!r}"
    if config.channel != "bsc":
        return f"ensembles train over the BSC only, not over {config.channel!r}"
    return None


def ensemble_key(config: TrainConfig) -> str:
    """What members of one ensemble share: the config's record less the per-member fields (seed, eps,
    the objective's lam), as canonical JSON; equal keys (and codec, data, bits) pass :func:`check_ensemble`."""
    record = {k: v for k, v in config.record().items() if k not in PER_MEMBER_FIELDS}
    record["objective"] = {k: v for k, v in sorted(config.objective.items()) if k not in PER_MEMBER_OBJECTIVE}
    return json.dumps(record, sort_keys=True)


def check_ensemble(codecs: Sequence[LearnedCodec], configs: Sequence[TrainConfig]) -> None:
    """Refuse (one-line ``ValueError``) members that cannot share one stacked model, naming the first
    field that differs: they may differ only in ``seed``, ``eps`` and the objective's ``lam``."""
    if len(codecs) != len(configs) or not codecs:
        raise ValueError(f"an ensemble takes one config per codec (at least one), got {len(codecs)} codecs and {len(configs)} configs")
    if len({id(c) for c in codecs}) != len(codecs):
        raise ValueError("an ensemble's codecs must be distinct objects (each receives its member's weights); build one per member")
    first, base = codecs[0], configs[0]
    for n, (codec, config) in enumerate(zip(codecs, configs)):
        refusal = stack_refusal(config, codec.architecture)
        if refusal:
            raise ValueError(f"member {n}: {refusal}; train it separately")
        if codec.decoder_input != config.decoder_input:
            raise ValueError(f"member {n}'s codec reads {codec.decoder_input} decoder input but its config trains "
                             f"{config.decoder_input}; build it with decoder_input=config.decoder_input")
        codec_fields = {"codec class": (type(codec), type(first)), "bits": (codec.bits, first.bits),
                        "image shape": (tuple(codec.image_shape), tuple(first.image_shape)),
                        "binary": (codec.binary, first.binary), "device": (codec.device, first.device)}
        config_fields = {f.name: (getattr(config, f.name), getattr(base, f.name))
                         for f in dataclasses.fields(TrainConfig) if f.name not in PER_MEMBER_FIELDS}
        keys = set(config.objective) | set(base.objective)
        objective_fields = {f"objective {k}": (config.objective.get(k), base.objective.get(k))
                            for k in sorted(keys - set(PER_MEMBER_OBJECTIVE))}
        for name, (mine, theirs) in {**codec_fields, **config_fields, **objective_fields}.items():
            if mine != theirs:
                raise ValueError(f"ensemble members 0 and {n} differ in {name} ({theirs!r} vs {mine!r}); members share one "
                                 f"stacked model (only seed, eps and lam may differ): train them separately")
        codec.objective_class.check_config(config)


def _keep_members(stacks: Sequence[nn.Module], optimizers: Sequence[torch.optim.Optimizer], keep: list[int]) -> None:
    """Drop all but the members ``keep`` from stacked modules in place: their parameters (the same
    ``Parameter`` objects, so the optimizers and scheduler keep them) and the optimizers' per-element
    state (Adam's moments; the step count is shared)."""
    index = torch.tensor(keep)
    for optimizer in optimizers:
        for state in optimizer.state.values():
            for key, value in state.items():
                if torch.is_tensor(value) and value.dim() > 0:  # not the step count (0-d)
                    state[key] = value[index.to(value.device)]
    for module in stacks:
        for p in module.parameters():
            p.data = p.data[index.to(p.device)]
            p.grad = None


def train_ensemble(codecs: Sequence[LearnedCodec], source: ImageSource, configs: Sequence[TrainConfig],
                   progress: bool = True, val_limit: int | None = None,
                   on_epoch: Sequence[Callable[[LearnedCodec, dict], dict | None] | None] | None = None) -> list[TrainResult]:
    """Train ``codecs[n]`` with ``configs[n]`` on ``source``, all in one stacked model; each codec ends
    with its best validation epoch's weights. Returns one :class:`TrainResult` per member, as
    :func:`~commsim.learned.training.train_codec` gives it.

    History rows have train_codec's entries; the ensemble's epoch is shared, so a member's
    ``train_seconds`` (and the training part of ``cpu_seconds``) is its share: the epoch's time over
    the members training in it. ``val_seconds`` is its own validation's. ``seconds`` sums its rows.
    ``on_epoch``, one hook (or ``None``) per member, is train_codec's per-epoch hook: it runs after the
    member's validation with the member's current weights (unstacked into ``codecs[n]``); what it returns
    is added to the member's row, and its time counts in no seconds. A stopped member's hook runs no more.
    Runs with denormals flushed, as train_codec."""
    check_ensemble(codecs, configs)
    if on_epoch is not None and len(on_epoch) != len(codecs):
        raise ValueError(f"give one on_epoch hook (or None) per member: {len(on_epoch)} hooks for {len(codecs)} members")
    with denormals_flushed():
        return _train_ensemble(list(codecs), source, list(configs), progress, val_limit,
                               list(on_epoch) if on_epoch is not None else [None] * len(codecs))


def _train_ensemble(codecs: list[LearnedCodec], source: ImageSource, configs: list[TrainConfig], progress: bool,
                    val_limit: int | None, hooks: list[Callable | None]) -> list[TrainResult]:
    base, device, members = configs[0], codecs[0].device, len(codecs)
    streams = [seed_streams(c.seed) for c in configs]
    noise = MemberGenerators([make_generator(stream_seed(s["noise"]), device) for s in streams])
    data = [make_generator(stream_seed(s["data"])) for s in streams]
    val_seeds = [s["validation"].generate_state(c.val_draws) for s, c in zip(streams, configs)]
    stacked = StackedCodec(codecs).to(device)
    objective = make_objective(codecs[0], base)
    if hasattr(objective, "lam"):  # IABF: one lam per member (each member's objective gives its own, default or not)
        lams = [float(codec.objective_class.from_config(c).lam) for codec, c in zip(codecs, configs)]
        objective.lam = torch.tensor(lams, device=device)
    stacks, optimizers = [stacked], [make_adam(stacked.parameters(), base.lr)]
    if hasattr(objective, "critic_loss"):  # IABF: every member's discriminator starts as the single one
        objective._ensure_critic(stacked.bits, device)
        objective.discriminator = StackedDiscriminator(objective.discriminator, members).to(device)
        objective.critic_optimizer = make_adam(objective.discriminator.parameters(), objective.critic_lr)
        stacks.append(objective.discriminator)
        optimizers.append(objective.critic_optimizer)
    eps = torch.tensor([float(c.eps) for c in configs], device=device).reshape(-1, 1, 1)
    optimizer = optimizers[0]
    n_train = source.size("train")
    steps_per_epoch = math.ceil(n_train / base.batch_size)
    scheduler = make_scheduler(optimizer, base, steps_per_epoch * base.epochs)
    metric = distortion_metric(source)
    active = list(range(members))
    best = [(float("inf"), 0, None)] * members
    history: list[list[dict]] = [[] for _ in range(members)]
    stops = ["budget"] * members
    threads = torch.get_num_threads()

    def finish(n: int, position: int) -> None:
        stacked.unstack(position, codecs[n])
        if best[n][2] is not None:
            codecs[n].load_state_dict(best[n][2])
        codecs[n].eval()

    bar = tqdm(range(1, base.epochs + 1), desc=f"train {members} x {codecs[0].name}", unit="epoch",
               disable=not progress, leave=False)
    for epoch in bar:
        stacked.train()
        epoch_start, epoch_cpu = time.perf_counter(), time.process_time()
        # each member's batches as its single training's: ImageSource.batches from its own data generator
        batches = zip(*(source.batches("train", base.batch_size, shuffle=True, generator=data[n], device=device)
                        for n in active))
        totals = torch.zeros(len(active), dtype=torch.float64)
        steps = 0
        for members_batch in batches:
            x = torch.stack([x for x, _ in members_batch])
            logs = train_step(stacked, objective, optimizer, x, eps, noise, base.precision)
            if scheduler is not None:
                scheduler.step()
            totals += torch.tensor(logs["loss"], dtype=torch.float64)
            steps += 1
        lr = optimizer.param_groups[0]["lr"]
        train_share = (time.perf_counter() - epoch_start) / len(active)
        cpu_share = (time.process_time() - epoch_cpu) / len(active)
        stopping = []
        for position, n in enumerate(active):
            val_start, val_cpu = time.perf_counter(), time.process_time()
            stacked.unstack(position, codecs[n])
            val = validation_distortion(codecs[n], source, configs[n], val_seeds[n], val_limit)
            row = {"epoch": epoch, "train_loss": float(totals[position]) / steps, f"val_{metric}": val,
                   "lr": lr, "train_seconds": train_share, "val_seconds": time.perf_counter() - val_start,
                   "cpu_seconds": cpu_share + time.process_time() - val_cpu}
            if hooks[n] is not None:  # after the row's times: the hook counts in no seconds
                row.update(hooks[n](codecs[n], dict(row)) or {})
                if torch.get_num_threads() != threads:
                    torch.set_num_threads(threads)
            history[n].append(row)
            if val < best[n][0]:
                best[n] = (val, epoch, {k: v.detach().clone() for k, v in codecs[n].state_dict().items()})
            patience = configs[n].patience
            if patience and epoch - best[n][1] >= patience and epoch < base.epochs:
                stops[n] = "plateau"
                stopping.append(position)
        bar.set_postfix(training=len(active) - len(stopping), best=f"{min(b[0] for b in best):.4g}")
        if stopping:
            for position in stopping:
                finish(active[position], position)
            keep = [p for p in range(len(active)) if p not in stopping]
            active = [active[p] for p in keep]
            if not active:
                break
            _keep_members(stacks, optimizers, keep)
            noise, eps = noise.select(keep), eps[keep]
            if hasattr(objective, "lam"):
                objective.lam = objective.lam[keep]
    for position, n in enumerate(active):
        finish(n, position)
    results = [TrainResult(best[n][1], metric, best[n][0], history[n],
                           sum(r["train_seconds"] + r["val_seconds"] for r in history[n]), stops[n],
                           sum(r["cpu_seconds"] for r in history[n]), threads) for n in range(members)]
    for n, result in enumerate(results):
        warn_if_stalled(result, f"ensemble member {n} ({codecs[n].name} over {configs[n].describe_channel()}, "
                                f"seed {configs[n].seed})")
    return results
