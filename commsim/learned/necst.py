"""NECST (Choi et al., ICML 2019): a learned code trained through a simulated BSC.

The BSC is folded into the encoder's sampling: ``q = sigmoid(l) (1 - 2 eps) + eps``,
``y ~ Bernoulli(q)``; the decoder reconstructs from ``y``; the whole is trained with a gradient
estimator of :mod:`commsim.learned.estimators` (VIMCO over K samples per image as in the paper, or a
pathwise straight-through / Gumbel estimator), plus an L2 penalty on the encoder weights.
``eps`` may be a float or a tensor ``[B, m]`` of per-bit noise levels (ABF uses this).
"""
from __future__ import annotations

import torch
from torch import nn

from commsim.learned.estimators import bernoulli_draws, check_estimator, pathwise_codes
from commsim.learned.codec import LearnedCodec
from commsim.learned.vimco import bernoulli_log_prob, check_form, vimco_surrogate
from commsim.core.registry import register_codec


def noisy_probs(logits: torch.Tensor, eps) -> torch.Tensor:
    """Probability of receiving a 1 through a BSC(eps) when sending Bernoulli(sigmoid(logits))."""
    return torch.sigmoid(logits) * (1 - 2 * eps) + eps


class NECSTObjective(nn.Module):
    """NECST's loss. ``forward(codec, x, eps, generator) -> (scalar to minimise, logs)``.

    ``estimator``: ``"vimco"`` (K = ``samples`` >= 2 draws, VIMCO of the given ``vimco`` form) or a
    pathwise one, ``"st"`` / ``"gumbel"`` (mean loss over ``samples`` draws, 1 by default);
    ``temperature`` is the Gumbel relaxation's.
    """

    def __init__(self, samples: int | None = None, weight_decay: float = 1e-4, estimator: str = "vimco",
                 vimco: str = "paper", temperature: float = 1.0):
        super().__init__()
        self.estimator = check_estimator(estimator)
        self.vimco = check_form(vimco)
        self.samples = int(samples) if samples is not None else (5 if estimator == "vimco" else 1)
        if self.samples < (2 if estimator == "vimco" else 1):
            raise ValueError(f"estimator {estimator!r} needs at least {2 if estimator == 'vimco' else 1} samples, got {self.samples}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.weight_decay = weight_decay
        self.temperature = float(temperature)

    @classmethod
    def config_options(cls, config) -> dict:
        """The keyword arguments a :class:`~commsim.learned.training.TrainConfig` gives this objective
        (besides ``config.objective``, passed as is)."""
        return {"samples": config.samples, "weight_decay": config.weight_decay, "estimator": config.estimator,
                "vimco": config.vimco, "temperature": config.temperature}

    @classmethod
    def from_config(cls, config) -> "NECSTObjective":
        return cls(**cls.config_options(config), **config.objective)

    def noise_levels(self, codec: LearnedCodec, x, logits, eps, generator):
        """Per-bit channel noise used for training; NECST: the channel's eps everywhere."""
        return eps

    def code_loss(self, codec: LearnedCodec, x, logits, eps, generator):
        """The estimator's surrogate loss (its gradient is the estimator's) for codes sent at noise ``eps``."""
        q = noisy_probs(logits, eps)
        if self.estimator == "vimco":
            y = bernoulli_draws(q, self.samples, generator)
            losses = codec.reconstruction_loss(x, codec.pixel_logits(y))
            surrogate, bound = vimco_surrogate(losses, bernoulli_log_prob(y, q), self.vimco)
            return surrogate, {"bound": float(bound.mean()), "loss": float(losses.detach().mean())}
        y = pathwise_codes(self.estimator, q, self.samples, generator, self.temperature)
        loss = codec.reconstruction_loss(x, codec.pixel_logits(y)).mean()
        return loss, {"loss": float(loss.detach())}

    def forward(self, codec: LearnedCodec, x, eps, generator):
        logits = codec.logits(x)
        levels = self.noise_levels(codec, x, logits, eps, generator)
        surrogate, logs = self.code_loss(codec, x, logits, levels, generator)
        return surrogate + self.weight_decay * codec.encoder_penalty(), logs


@register_codec("necst")
class NECST(LearnedCodec):
    """NECST: MLP/conv encoder and decoder trained through a simulated BSC (VIMCO or pathwise)."""

    name = "necst"
    objective_class = NECSTObjective
