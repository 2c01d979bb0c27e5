"""Learned codecs: an encoder network giving Bernoulli logits and a decoder network.

``LearnedCodec`` follows the codec contract of :mod:`commsim.core.codec`:
``encode(x [B, C, H, W], generator) -> bits [B, m]`` samples ``Bernoulli(sigmoid(logits))``;
``decode(llr [B, m]) -> (x_hat [B, C, H, W], failures [B])`` feeds the decoder network the hard
decisions of the LLRs (``{0, 1}``, 0.5 for an erasure) — the representation it was trained on — and
returns ``sigmoid(pixel logits)`` with no failures (all ``False``).

Subclasses registered as codecs (``necst``, ``abf``, ``iabf``) differ only in their training
objective (``objective_class``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from commsim.channels.base import hard_decisions
from commsim.core.codec import MAX_BITS, Codec
from commsim.learned.networks import build_networks, default_architecture


class LearnedCodec(Codec):
    learned = True
    has_logits = True
    objective_class = None

    @classmethod
    def bits_limit(cls) -> tuple[int, str]:
        limit = MAX_BITS
        return limit, (f"its networks hold about 1,000 weights per channel bit and training keeps five copies of them "
                       f"(weights, gradients, two Adam moments, the best epoch's), {20 * 1000 * limit / 2**30:.1f} GiB at {limit:,} bits")

    def __init__(self, bits: int, image_shape, binary: bool = False, architecture: str | None = None, seed: int = 0):
        self.check_bits(bits)
        super().__init__(bits, image_shape)
        self.binary = bool(binary)
        self.architecture = architecture or default_architecture(image_shape)
        generator = torch.Generator().manual_seed(int(seed))
        self.encoder, self.decoder = build_networks(self.architecture, self.image_shape, self.bits, generator)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder logits ``[B, m]``; bit probabilities are ``sigmoid(logits)``."""
        return self.encoder(self.check_images(x))

    def encode(self, x, generator=None):
        probs = torch.sigmoid(self.logits(x))
        return (torch.rand(probs.shape, generator=generator, device=probs.device) < probs).to(torch.float32)

    def pixel_logits(self, y: torch.Tensor) -> torch.Tensor:
        """Decoder on channel outputs ``y [..., m]`` in [0, 1] -> flat pixel logits ``[..., C*H*W]``."""
        return self.decoder(y)

    def decode_logits(self, llr):
        logits = self.pixel_logits(hard_decisions(self.check_llr(llr)))
        return logits.reshape(llr.shape[0], *self.image_shape)

    def decode(self, llr, *, x=None, generator=None):
        return torch.sigmoid(self.decode_logits(llr)), self.no_failures(llr)

    def reconstruction_loss(self, x: torch.Tensor, pixel_logits: torch.Tensor) -> torch.Tensor:
        """Per-image loss to minimise, ``[..., B]``: squared error summed over pixels of
        ``sigmoid(logits)`` for grey data, Bernoulli cross-entropy summed over pixels for binary data.
        ``x [B, C, H, W]``, ``pixel_logits [..., B, C*H*W]``."""
        target = x.flatten(1).expand_as(pixel_logits)
        if self.binary:
            return F.binary_cross_entropy_with_logits(pixel_logits, target, reduction="none").sum(-1)
        return (torch.sigmoid(pixel_logits) - target).pow(2).sum(-1)

    def encoder_penalty(self) -> torch.Tensor:
        """``sum(W^2) / 2`` over the encoder's weight matrices (the reference's L2 regulariser)."""
        return sum(p.pow(2).sum() for n, p in self.encoder.named_parameters() if p.dim() > 1) / 2

    def config(self) -> dict:
        return {"codec": self.name, "bits": self.bits, "image_shape": list(self.image_shape),
                "binary": self.binary, "architecture": self.architecture}
