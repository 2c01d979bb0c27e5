"""NECST (Choi et al., ICML 2019): a learned code trained through a simulated channel.

The BSC (the default training channel) is folded into the encoder's sampling:
``q = sigmoid(l) (1 - 2 eps) + eps``, ``y ~ Bernoulli(q)``; the decoder reconstructs from ``y``; the
whole is trained with a gradient estimator of :mod:`commsim.learned.estimators` (VIMCO over K samples
per image as in the paper, or a pathwise straight-through / Gumbel estimator), plus an L2 penalty on
the encoder weights. ``eps`` may be a float or a tensor ``[B, m]`` of per-bit noise levels (ABF uses
this).

Any other registered channel (``channel="awgn"``, ``"bec"``, ``"z"``, ``"gilbert_elliott"``) is not
folded: the encoder's bits ``b ~ Bernoulli(sigmoid(l))`` are sampled (K per image), sent through the
channel block with fresh noise per sample, and the decoder reads its LLRs
(:func:`~commsim.learned.codec.decoder_inputs`). VIMCO's score function is then over the encoder's
bits, the channel noise being part of each sample; the pathwise estimators (``st``, ``gumbel``) pass
their gradient straight through the channel (the decoder input's gradient is taken as that of the
sent bit ``b``), the straight-through form on the sent bit.

With ``decoder_input="soft"`` the decoder reads ``sigmoid(llr)`` instead of hard decisions; over the
BSC that is ``y (1 - 2 eps) + eps`` for the received bit ``y`` (the folded sampling is unchanged and
the gradient passes straight through to ``y``).
"""
from __future__ import annotations

import torch
from torch import nn

from commsim.channels import get_channel
from commsim.channels.base import hard_llr, reliability
from commsim.learned.estimators import Estimator, bernoulli_draws, pathwise_codes
from commsim.learned.codec import DecoderInput, LearnedCodec, decoder_inputs
from commsim.learned.vimco import VimcoForm, bernoulli_log_prob, vimco_surrogate


def noisy_probs(logits: torch.Tensor, eps) -> torch.Tensor:
    """Probability of receiving a 1 through a BSC(eps) when sending Bernoulli(sigmoid(logits))."""
    return torch.sigmoid(logits) * (1 - 2 * eps) + eps


class NECSTObjective(nn.Module):
    """NECST's loss. ``forward(codec, x, eps, generator) -> (scalar to minimise, logs)``.

    On an ensemble's stacked codec (:mod:`commsim.learned.ensemble`: ``x [N, B, C, H, W]``, ``eps``
    a tensor ``[N, 1, 1]``, :class:`~commsim.learned.members.MemberGenerators`) the loss is ``[N]``,
    one per member, and each log a list of N floats.

    ``estimator``: ``"vimco"`` (K = ``samples`` >= 2 draws, VIMCO of the given ``vimco`` form) or a
    pathwise one, ``"st"`` / ``"gumbel"`` (mean loss over ``samples`` draws, 1 by default);
    ``temperature`` is the Gumbel relaxation's. ``channel``: the training channel's registered name
    (``"bsc"``: folded, at the ``eps`` given to ``forward``), with its parameters ``channel_params``
    (for other channels; ``forward``'s ``eps`` is then unused); ``decoder_input``: ``"hard"`` / ``"soft"``.
    """

    folds_bsc_only = False
    """``True`` for objectives whose channel noise is BSC flips by construction (ABF, IABF)."""

    def __init__(self, samples: int | None = None, weight_decay: float = 1e-4, estimator: str = "vimco",
                 vimco: str = "paper", temperature: float = 1.0, channel: str = "bsc",
                 channel_params: dict | None = None, decoder_input: str = "hard"):
        super().__init__()
        if channel != "bsc" and self.folds_bsc_only:
            raise ValueError(f"{type(self).__name__.removesuffix('Objective').lower()} trains over the BSC only (its "
                             f"adversarial noise is bit flips at the training eps), not {channel!r}; "
                             "train necst over other channels")
        self.channel_name = channel
        self.channel = None if channel == "bsc" else get_channel(channel)
        self.channel_params = dict(channel_params or {})
        self.decoder_input = DecoderInput.parse(decoder_input)
        self.estimator = Estimator.parse(estimator)
        self.vimco = VimcoForm.parse(vimco)
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
                "vimco": config.vimco, "temperature": config.temperature, "channel": config.channel,
                "channel_params": config.channel_kwargs(), "decoder_input": config.decoder_input}

    @classmethod
    def from_config(cls, config) -> "NECSTObjective":
        return cls(**cls.config_options(config), **config.objective)

    @classmethod
    def check_config(cls, config) -> None:
        """Refuse (``ValueError``), before any work, a configuration this objective cannot train: each
        objective checks its own options when it is made (cheap: no network is built), e.g. IABF's
        ``infomax_on`` and the BSC-only rule of ABF / IABF."""
        cls.from_config(config)

    def noise_levels(self, codec: LearnedCodec, x, logits, eps, generator):
        """Per-bit channel noise used for training; NECST: the channel's eps everywhere."""
        return eps

    def code_loss(self, codec: LearnedCodec, x, logits, eps, generator):
        """The estimator's surrogate loss (its gradient is the estimator's) for codes sent at noise ``eps``
        (the BSC) or through the training channel."""
        if self.channel is None:
            q = noisy_probs(logits, eps)
            sample_probs, received = q, lambda y: self.bsc_decoder_input(y, eps)
        else:
            sample_probs, received = torch.sigmoid(logits), lambda b: self.channel_decoder_input(b, generator)
        if self.estimator == "vimco":
            y = bernoulli_draws(sample_probs, self.samples, generator)
            losses = codec.reconstruction_loss(x, codec.pixel_logits(received(y)))
            surrogate, bound = vimco_surrogate(losses, bernoulli_log_prob(y, sample_probs), self.vimco)
            return surrogate, {"bound": bound.mean(-1).tolist(), "loss": losses.detach().mean((-2, -1)).tolist()}
        y = pathwise_codes(self.estimator, sample_probs, self.samples, generator, self.temperature)
        loss = codec.reconstruction_loss(x, codec.pixel_logits(received(y))).mean((-2, -1))
        return loss, {"loss": loss.detach().tolist()}

    def bsc_decoder_input(self, y: torch.Tensor, eps) -> torch.Tensor:
        """Decoder input ``[K, B, m]`` for received bits ``y`` of the folded BSC: ``y`` itself (hard), or
        the soft value of its LLR ``±log((1 - eps) / eps)`` with ``y``'s gradient passed straight through."""
        if self.decoder_input == "hard":
            return y
        eps = torch.as_tensor(eps, dtype=y.dtype, device=y.device)
        eps = eps.unsqueeze(-3) if eps.dim() >= 2 else eps  # levels [B, m] or [N, 1, 1] / [N, B, m] meet y [(N,) K, B, m]
        return decoder_inputs(hard_llr(y.detach(), reliability(eps)), "soft") + (y - y.detach())

    def channel_decoder_input(self, b: torch.Tensor, generator) -> torch.Tensor:
        """Decoder input ``[K, B, m]`` for sent bits ``b [K, B, m]``: each sample through the channel
        block (fresh noise from ``generator``), its LLRs as the decoder reads them, and ``b``'s gradient
        passed straight through."""
        k, batch, m = b.shape
        llr = self.channel(b.detach().reshape(k * batch, m), generator, **self.channel_params).reshape(k, batch, m)
        return decoder_inputs(llr, self.decoder_input) + (b - b.detach())

    def forward(self, codec: LearnedCodec, x, eps, generator, logits: torch.Tensor | None = None):
        """``logits``: the encoder's ``codec.logits(x)`` if the step already has them (with their gradient)."""
        logits = codec.logits(x) if logits is None else logits
        levels = self.noise_levels(codec, x, logits, eps, generator)
        surrogate, logs = self.code_loss(codec, x, logits, levels, generator)
        return surrogate + self.weight_decay * codec.encoder_penalty(), logs


class NECST(LearnedCodec):
    """NECST: MLP/conv encoder and decoder trained through a simulated BSC (VIMCO or pathwise)."""

    name = "necst"
    objective_class = NECSTObjective
