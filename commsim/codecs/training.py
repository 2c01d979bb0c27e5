"""Training loop shared by the learned codecs.

Adam over the codec's parameters on the objective of its class (``codec.objective_class``), batches
of the training split, and model selection by validation distortion with channel noise on (one BSC
sample per image at the training eps, fixed seed). All randomness flows from ``config.seed``.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field

import torch
from tqdm.auto import tqdm

from commsim.channels.bsc import BSC
from commsim.codecs.learned import LearnedCodec
from commsim.data.sources import ImageSource
from commsim.device import make_generator
from commsim.pipeline import Pipeline, distortion_metric


DEFAULT_EPOCHS = 30
"""The default training budget (and that of on-demand training in ``commsim run`` / ``sweep``):
about two minutes of IABF on two CPU cores."""


@dataclass
class TrainConfig:
    """Everything that determines a trained codec (it names the checkpoint)."""

    eps: float = 0.1
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = 100
    lr: float = 1e-3
    samples: int = 5
    weight_decay: float = 1e-4
    seed: int = 0
    patience: int | None = None
    objective: dict = field(default_factory=dict)

    def __post_init__(self):
        if not 0.0 <= float(self.eps) <= 0.5:
            raise ValueError(f"eps must be in [0, 0.5] for training, got {self.eps}")
        if int(self.epochs) < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")


@dataclass
class TrainResult:
    best_epoch: int
    val_metric: str
    val_value: float
    history: list[dict]
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


def train_codec(codec: LearnedCodec, source: ImageSource, config: TrainConfig, progress: bool = True,
                val_limit: int | None = None) -> TrainResult:
    """Train ``codec`` in place on ``source``; keep the weights of the best validation epoch."""
    device = codec.device
    generator = make_generator(config.seed, device)
    data_generator = make_generator(config.seed + 1)
    objective = codec.objective_class(samples=config.samples, weight_decay=config.weight_decay, **config.objective).to(device)
    optimizer = torch.optim.Adam(codec.parameters(), lr=config.lr)
    metric = distortion_metric(source)
    pipeline = Pipeline(source, codec, BSC())
    best = (float("inf"), 0, copy.deepcopy(codec.state_dict()))
    history: list[dict] = []
    start = time.perf_counter()
    bar = tqdm(range(1, config.epochs + 1), desc=f"train {codec.name} eps={config.eps:g}", unit="epoch",
               disable=not progress, leave=False)
    for epoch in bar:
        codec.train()
        total, steps = 0.0, 0
        for x, _ in source.batches("train", config.batch_size, shuffle=True, generator=data_generator):
            x = x.to(device)
            if hasattr(objective, "update_critic"):
                objective.update_critic(codec, x, config.eps, generator)
            loss, logs = objective(codec, x, config.eps, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += logs["loss"]
            steps += 1
        val = pipeline.evaluate("val", seed=10_000 + config.seed, limit=val_limit, eps=config.eps).metrics[metric].mean
        history.append({"epoch": epoch, "train_loss": total / steps, f"val_{metric}": val})
        if val < best[0]:
            best = (val, epoch, copy.deepcopy(codec.state_dict()))
        bar.set_postfix(loss=f"{total / steps:.3g}", val=f"{val:.4g}", best=f"{best[0]:.4g}")
        if config.patience and epoch - best[1] >= config.patience:
            break
    codec.load_state_dict(best[2])
    codec.eval()
    return TrainResult(best[1], metric, best[0], history, time.perf_counter() - start)
