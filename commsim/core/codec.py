"""The codec contract: the encoder and decoder ends of a link.

A codec maps an image batch to channel bits and channel LLRs back to images:

- ``encode(x, generator) -> bits``: ``x`` float32 ``[B, C, H, W]`` in [0, 1] -> ``bits`` float32
  ``[B, m]`` of 0/1 values (``m = codec.bits``). Any randomness (Bernoulli sampling of a learned
  code) draws from ``generator``.
- ``decode(llr, *, x=None, generator=None) -> (x_hat, failures)``: ``llr`` float32 ``[B, m]`` in the
  logit convention of :mod:`commsim.channels.base` -> ``x_hat`` float32 ``[B, C, H, W]`` in [0, 1] and
  ``failures`` bool ``[B]``, the frames the codec knows it failed to decode (separated schemes: channel
  decoder or CRC failure, image that did not fit, payload the source decoder rejects); learned codecs
  return all ``False``. Both are on ``llr``'s device.

  ``x`` (the batch that was encoded) is *the genie: only ideal-code references read it*: an ideal
  channel code (``ideal``, ``ideal-fbl``) is not a code but the payload an optimal code would deliver,
  so its decoder reads the payload from ``x`` instead of the LLRs (and raises ``ValueError`` without
  it); ``generator`` draws the frames ``ideal-fbl`` loses. Every other codec ignores both.
- ``decode_logits(llr)`` (optional, ``has_logits = True``): per-pixel Bernoulli logits
  ``[B, C, H, W]``, used for exact cross-entropy on binary data.

A codec keeps no state between calls: ``decode`` depends only on its arguments (and the codec's
weights or fitted tables). Learned codecs are ``torch.nn.Module``s with weights; the separated
baselines wrap numpy/Pillow source codes and channel codes in the same contract.
"""
from __future__ import annotations

import torch
from torch import nn

MAX_BITS = 1 << 16
"""The most channel bits per image any codec takes: every block of the link holds ``[batch, m]``
tensors, and 65,536 bits are already 80 times the pixels of an MNIST digit."""


def checked_bits(bits: int, limit: int, why: str, name: str) -> int:
    """``bits`` if ``1 <= bits <= limit``, else ``ValueError`` saying that codec ``name`` takes at
    most ``limit`` bits and ``why``."""
    if int(bits) < 1:
        raise ValueError(f"bits must be a positive integer, got {bits}")
    if int(bits) > limit:
        raise ValueError(f"{bits:,} channel bits per image is more than {name} takes ({limit:,} at most: {why})")
    return int(bits)


class Codec(nn.Module):
    """Base class of every codec. Subclasses set ``bits`` and ``image_shape`` and implement
    ``encode`` and ``decode``."""

    name: str = "codec"
    origin: str | None = None
    """Where the codec's weights came from, in words (e.g. a learned codec's training: "eps 0.1, 100
    epochs, seed 0"); ``None`` for codecs built from their parameters alone."""
    has_logits: bool = False
    flags_failures: bool = False
    """Whether ``decode`` can flag failed frames (then ``Pipeline.evaluate`` reports ``failure_rate``)."""

    def __init__(self, bits: int, image_shape: tuple[int, int, int]):
        super().__init__()
        if int(bits) <= 0:
            raise ValueError(f"bits must be a positive integer, got {bits}")
        self.bits = int(bits)
        self.image_shape = tuple(int(s) for s in image_shape)

    @classmethod
    def bits_limit(cls) -> tuple[int, str]:
        """``(most channel bits per image, why)``: the size this codec and memory can hold."""
        return MAX_BITS, "every block of the link holds [batch, m] tensors of channel bits"

    @classmethod
    def check_bits(cls, bits: int) -> int:
        """``bits`` if this codec can take that many channel bits per image, else ``ValueError``
        with the reason (checked before any data, network or code is built)."""
        return checked_bits(bits, *cls.bits_limit(), cls.name)

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, llr: torch.Tensor, *, x: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``llr [B, m]`` -> ``(x_hat [B, C, H, W], failures [B] bool)`` (see the module doc)."""
        raise NotImplementedError

    @staticmethod
    def no_failures(llr: torch.Tensor) -> torch.Tensor:
        """All-``False`` failures ``[B]`` for a batch of LLRs ``[B, m]``, on their device."""
        return torch.zeros(llr.shape[0], dtype=torch.bool, device=llr.device)

    def decode_logits(self, llr: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{self.name} does not produce logits")

    def row_fields(self) -> dict[str, str]:
        """The cells this codec adds to a sweep's CSV row (``checkpoint``, ``train_config``,
        ``channel_code``, ...: see README's column table); none by default."""
        return {}

    def check_images(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            shape = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must have shape [B, {', '.join(map(str, self.image_shape))}], got {shape}")
        return x

    def check_llr(self, llr: torch.Tensor) -> torch.Tensor:
        if not isinstance(llr, torch.Tensor) or llr.dim() != 2 or llr.shape[1] != self.bits:
            shape = list(llr.shape) if isinstance(llr, torch.Tensor) else type(llr).__name__
            raise ValueError(f"llr must have shape [B, {self.bits}], got {shape}")
        return llr
