"""IABF — infomax adversarial bit flip (Song et al., AAAI 2020, eqs. 10–14, 27 and Algorithm 1).

ABF plus an infomax term that the encoder maximises:

    ``I_hat = sum_d [H(Y_d) - H(Y_d | X)] - TC_hat(Y)``

with ``H(Y_d) = h(mean over the batch of p_d)``, ``H(Y_d | X) = mean over the batch of h(p_d)``
(``h`` the binary entropy in nats) and the total correlation estimated by the density-ratio trick:
a discriminator ``C_psi`` learns to tell codes of the batch (label 1) from codes whose every
dimension is independently permuted across the batch (label 0), and
``TC_hat = E[log C / (1 - C)]`` = the mean discriminator logit on the real codes.

``p_d`` are the encoder's clean bit probabilities ``sigmoid(l)`` by default (eq. 11 of the paper:
the information between the image and its code); ``infomax_on="noisy"`` uses the probabilities of
the *received* bits at the training eps instead, ``q = sigmoid(l)(1 - 2 eps) + eps`` (what this
package did before; the code as the channel delivers it). The discriminator is fed the same
probabilities, which gives the encoder a pathwise gradient through ``TC_hat``. Algorithm 1 order:
each step first updates ``psi`` on the classification loss (codes detached), then ``theta, phi`` on
``L_rec - lambda * I_hat``, with ``L_rec`` under any estimator of
:mod:`commsim.learned.estimators`. The discriminator is a training-time helper and is not part of the
checkpoint.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from commsim.core.choices import choice
from commsim.learned.abf import ABFObjective
from commsim.learned.codec import LearnedCodec
from commsim.learned.members import uniform
from commsim.learned.necst import noisy_probs
from commsim.learned.networks import init_parameters
from commsim.core.device import make_adam


INFOMAX_ON = ("clean", "noisy")
InfomaxOn = choice("InfomaxOn", "infomax_on", INFOMAX_ON, __name__)
"""IABF's own option (which bit probabilities the infomax term reads), checked by IABF's objective."""
"""What the infomax term is computed on: the clean ``sigmoid(l)`` (the paper) or the received ``q``."""


def binary_entropy_nats(p: torch.Tensor, floor: float = 1e-7) -> torch.Tensor:
    """``h(p) = -p ln p - (1-p) ln (1-p)`` in nats, with ``p`` clamped to ``[floor, 1 - floor]``."""
    p = p.clamp(floor, 1 - floor)
    return -(p * torch.log(p) + (1 - p) * torch.log1p(-p))


def permute_dimensions(codes: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Permute every column of ``codes [B, m]`` independently across the batch (axis -2; an ensemble's
    ``[N, B, m]`` with :class:`~commsim.learned.members.MemberGenerators`: each member its own).

    Each column keeps its multiset of values (its marginal), while the dependence between columns
    is destroyed: samples from the product of the marginals.
    """
    order = torch.argsort(uniform(codes.shape[-2:], generator, codes.device), dim=-2)
    return torch.gather(codes, -2, order)


def marginal_information(p: torch.Tensor) -> torch.Tensor:
    """``sum_d [h(mean_b p_bd) - mean_b h(p_bd)]`` for bit probabilities ``p [B, m]`` (``[N, B, m]`` -> ``[N]``)."""
    return (binary_entropy_nats(p.mean(-2)) - binary_entropy_nats(p).mean(-2)).sum(-1)


class Discriminator(nn.Module):
    """``C_psi``: codes ``[B, m]`` -> logit that they come from the joint (not the permuted) batch."""

    def __init__(self, bits: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(bits, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                                 nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def forward(self, codes):
        return self.net(codes).squeeze(-1).float()


def discriminator_loss(disc: Discriminator, codes: torch.Tensor, generator) -> torch.Tensor:
    """Binary cross-entropy of telling ``codes`` (1) from their dimension-wise permutation (0), the mean
    over the batch (an ensemble's stacked discriminator on ``[N, B, m]``: one loss per member, ``[N]``)."""
    real, fake = disc(codes), disc(permute_dimensions(codes, generator))
    return batch_mean_bce(real, torch.ones_like(real)) + batch_mean_bce(fake, torch.zeros_like(fake))


def batch_mean_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits, the mean over the batch (the last axis): a scalar for ``[B]``
    (torch's ``"mean"`` reduction, whose gradient one training has always used), ``[N]`` for ``[N, B]``."""
    if logits.dim() == 1:
        return F.binary_cross_entropy_with_logits(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(-1)


class IABFObjective(ABFObjective):
    """ABF's loss minus ``lam`` times the infomax estimate ``I_hat``.

    In an ensemble (:mod:`commsim.learned.ensemble`) ``lam`` is a tensor ``[N]`` (one per member) and
    ``discriminator`` a stack of N discriminators, each initialised as the single one."""

    def __init__(self, samples: int | None = None, weight_decay: float = 1e-4, estimator: str = "vimco",
                 vimco: str = "paper", temperature: float = 1.0, lam: float = 0.01, critic_lr: float = 1e-3,
                 infomax_on: str = "clean", **channel_options):
        """``channel_options``: the training channel's, as :class:`~commsim.learned.necst.NECSTObjective` takes them."""
        super().__init__(samples, weight_decay, estimator, vimco, temperature, **channel_options)
        self.infomax_on = InfomaxOn.parse(infomax_on)
        self.lam = lam
        self.critic_lr = critic_lr
        self.discriminator: Discriminator | None = None
        self.critic_optimizer = None

    def _ensure_critic(self, bits: int, device):
        if self.discriminator is None:
            self.discriminator = init_parameters(Discriminator(bits), torch.Generator().manual_seed(bits)).to(device)
            self.critic_optimizer = make_adam(self.discriminator.parameters(), self.critic_lr)

    @classmethod
    def config_options(cls, config) -> dict:
        return {**super().config_options(config), "infomax_on": config.infomax_on}

    def infomax_codes(self, logits: torch.Tensor, eps) -> torch.Tensor:
        """The bit probabilities ``[B, m]`` the infomax term is computed on (``infomax_on``)."""
        return torch.sigmoid(logits) if self.infomax_on == "clean" else noisy_probs(logits, eps)

    def critic_loss(self, codec: LearnedCodec, x, eps, generator, logits: torch.Tensor | None = None) -> torch.Tensor:
        """Algorithm 1, first half: the classification loss of ``psi`` (codes detached), which the
        training step minimises with :attr:`critic_optimizer` before the codec's own step. ``logits``:
        the encoder's ``codec.logits(x)`` if the step has them (the step's one encoder pass; the
        critic's update leaves the encoder as it is, so the codec's loss reads the same logits)."""
        self._ensure_critic(codec.bits, x.device)
        with torch.no_grad():
            codes = self.infomax_codes(codec.logits(x) if logits is None else logits.detach(), eps)
        return discriminator_loss(self.discriminator, codes, generator)

    def information(self, codes: torch.Tensor) -> torch.Tensor:
        """``I_hat`` for bit probabilities ``codes [B, m]`` (differentiable in ``codes``; ``[N, B, m]`` -> ``[N]``)."""
        self._ensure_critic(codes.shape[-1], codes.device)
        tc = self.discriminator(codes).mean(-1)
        return marginal_information(codes) - tc

    def forward(self, codec, x, eps, generator, logits: torch.Tensor | None = None):
        logits = codec.logits(x) if logits is None else logits
        levels = self.noise_levels(codec, x, logits, eps, generator)
        surrogate, logs = self.code_loss(codec, x, logits, levels, generator)
        info = self.information(self.infomax_codes(logits, eps))
        logs["info"] = info.detach().tolist()
        return surrogate - self.lam * info + self.weight_decay * codec.encoder_penalty(), logs


class IABF(LearnedCodec):
    """IABF: ABF plus the infomax term (marginal entropies minus a discriminator's total correlation)."""

    name = "iabf"
    objective_class = IABFObjective
