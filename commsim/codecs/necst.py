"""NECST (Choi et al., ICML 2019): a learned code trained through a simulated BSC.

The BSC is folded into the encoder's sampling: ``q = sigmoid(l) (1 - 2 eps) + eps``,
``y ~ Bernoulli(q)``; the decoder reconstructs from ``y``; the whole is trained with VIMCO
(:mod:`commsim.codecs.vimco`) over K samples per image, plus an L2 penalty on the encoder weights.
``eps`` may be a float or a tensor ``[B, m]`` of per-bit noise levels (ABF uses this).
"""
from __future__ import annotations

import torch
from torch import nn

from commsim.codecs.learned import LearnedCodec
from commsim.codecs.vimco import bernoulli_log_prob, vimco_surrogate
from commsim.registry import register_codec


def noisy_probs(logits: torch.Tensor, eps) -> torch.Tensor:
    """Probability of receiving a 1 through a BSC(eps) when sending Bernoulli(sigmoid(logits))."""
    return torch.sigmoid(logits) * (1 - 2 * eps) + eps


class NECSTObjective(nn.Module):
    """VIMCO loss of NECST. ``forward(codec, x, eps, generator) -> (scalar to minimise, logs)``."""

    def __init__(self, samples: int = 5, weight_decay: float = 1e-4):
        super().__init__()
        self.samples = samples
        self.weight_decay = weight_decay

    def noise_levels(self, codec: LearnedCodec, x, logits, eps, generator):
        """Per-bit channel noise used for training; NECST: the channel's eps everywhere."""
        return eps

    def vimco_loss(self, codec: LearnedCodec, x, logits, eps, generator):
        q = noisy_probs(logits, eps)
        y = (torch.rand((self.samples, *q.shape), generator=generator, device=q.device) < q.detach()).to(q.dtype)
        losses = codec.reconstruction_loss(x, codec.pixel_logits(y))
        surrogate, bound = vimco_surrogate(losses, bernoulli_log_prob(y, q))
        return surrogate, {"bound": float(bound.mean()), "loss": float(losses.detach().mean())}

    def forward(self, codec: LearnedCodec, x, eps, generator):
        logits = codec.logits(x)
        levels = self.noise_levels(codec, x, logits, eps, generator)
        surrogate, logs = self.vimco_loss(codec, x, logits, levels, generator)
        return surrogate + self.weight_decay * codec.encoder_penalty(), logs


@register_codec("necst")
class NECST(LearnedCodec):
    """NECST: MLP/conv encoder and decoder trained by VIMCO through a simulated BSC."""

    name = "necst"
    objective_class = NECSTObjective
