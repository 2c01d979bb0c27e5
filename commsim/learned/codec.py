"""Learned codecs: an encoder network giving Bernoulli logits and a decoder network.

``LearnedCodec`` follows the codec contract of :mod:`commsim.core.codec`:
``encode(x [B, C, H, W], generator) -> bits [B, m]`` samples ``Bernoulli(sigmoid(logits))``;
``decode(llr [B, m]) -> (x_hat [B, C, H, W], failures [B])`` feeds the decoder network the
representation it was trained on (``decoder_input``, see :func:`decoder_inputs`): the hard
decisions of the LLRs (``"hard"``, the default: ``{0, 1}``, 0.5 for an erasure) or their posterior
probabilities (``"soft"``: ``sigmoid(llr)``), and returns ``sigmoid(pixel logits)`` with no
failures (all ``False``).

Subclasses registered as codecs (``necst``, ``abf``, ``iabf``) differ only in their training
objective (``objective_class``).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from commsim.channels.base import LLR_LIMIT, hard_decisions
from commsim.core.choices import choice
from commsim.core.codec import MAX_BITS, Codec
from commsim.core.files import file_sha256
from commsim.learned.networks import build_networks, default_architecture

DECODER_INPUTS = ("hard", "soft")
"""What a learned decoder reads from the channel's LLRs: hard decisions or soft probabilities."""


DecoderInput = choice("DecoderInput", "decoder input", DECODER_INPUTS, __name__)
"""The decoder inputs as a :class:`~commsim.core.choices.Choice`."""


def describe_train(train: dict) -> str:
    """A checkpoint's training config as ``key=value;...`` (sorted; nested dicts as ``key.sub=value``):
    the ``train_config`` cell of a sweep's row."""
    flat = {}
    for key, value in train.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return ";".join(f"{k}={flat[k]}" for k in sorted(flat))


def decoder_inputs(llr: torch.Tensor, mode: str = "hard") -> torch.Tensor:
    """The decoder network's input ``[..., m]`` in [0, 1] from LLRs ``llr [..., m]``.

    ``"hard"``: the decided bit, 0.5 for an erasure (:func:`~commsim.channels.base.hard_decisions`).
    ``"soft"``: the posterior probability of a 1, ``sigmoid(llr)``; an erasure (``llr == 0``) gives 0.5
    and a certain LLR (``|llr| >= LLR_LIMIT``) its exact bit, so both modes agree on certain bits.
    """
    if DecoderInput.parse(mode) == "hard":
        return hard_decisions(llr)
    return torch.where(llr.abs() >= LLR_LIMIT, (llr > 0).to(llr.dtype), torch.sigmoid(llr))


class LearnedCodec(Codec):
    has_logits = True
    objective_class = None

    @classmethod
    def bits_limit(cls) -> tuple[int, str]:
        limit = MAX_BITS
        return limit, (f"its networks hold about 1,000 weights per channel bit and training keeps five copies of them "
                       f"(weights, gradients, two Adam moments, the best epoch's), {20 * 1000 * limit / 2**30:.1f} GiB at {limit:,} bits")

    def __init__(self, bits: int, image_shape, binary: bool = False, architecture: str | None = None, seed: int = 0,
                 decoder_input: str = "hard"):
        self.check_bits(bits)
        super().__init__(bits, image_shape)
        self.binary = bool(binary)
        self.decoder_input = DecoderInput.parse(decoder_input)
        self.architecture = architecture or default_architecture(image_shape)
        generator = torch.Generator().manual_seed(int(seed))
        self.encoder, self.decoder = build_networks(self.architecture, self.image_shape, self.bits, generator)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder logits ``[B, m]``, float32 (also under a bf16 autocast); bit probabilities are ``sigmoid(logits)``."""
        return self.encoder(self.check_images(x)).float()

    def encode(self, x, generator=None):
        probs = torch.sigmoid(self.logits(x))
        return (torch.rand(probs.shape, generator=generator, device=probs.device) < probs).to(torch.float32)

    def pixel_logits(self, y: torch.Tensor) -> torch.Tensor:
        """Decoder on channel outputs ``y [..., m]`` in [0, 1] -> flat pixel logits ``[..., C*H*W]``, float32
        (also under a bf16 autocast: the losses are taken in float32)."""
        return self.decoder(y).float()

    def decode_logits(self, llr):
        logits = self.pixel_logits(decoder_inputs(self.check_llr(llr), self.decoder_input))
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

    metadata: dict = {}
    """The checkpoint's metadata once loaded from one (:func:`commsim.learned.zoo.codec_from_checkpoint`)."""
    checkpoint_path = None
    """The checkpoint file it was loaded from, if any."""

    def row_fields(self) -> dict[str, str]:
        """The checkpoint it came from (name and sha256), its training configuration and threads."""
        if self.checkpoint_path is None:
            return {}
        return {"checkpoint": Path(self.checkpoint_path).name, "checkpoint_sha256": file_sha256(self.checkpoint_path),
                "train_config": describe_train({"precision": "fp32", **self.metadata.get("train", {})}),
                "train_threads": self.metadata.get("train_threads", "")}

    def config(self) -> dict:
        return {"codec": self.name, "bits": self.bits, "image_shape": list(self.image_shape),
                "binary": self.binary, "architecture": self.architecture, "decoder_input": self.decoder_input}
