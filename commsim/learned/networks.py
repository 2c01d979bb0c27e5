"""Encoder and decoder networks of the learned codecs.

- MLP (NECST reference, MNIST / Omniglot): encoder ``[B, C, H, W] -> 500 -> m`` logits (leaky ReLU
  0.2, last layer without bias); decoder ``[B, m] -> 500 -> 500 -> C*H*W`` pixel logits (leaky ReLU,
  no biases, as in the reference).
- Conv (NECST reference, 32x32 RGB): encoder three blocks of [3x3 conv (64, 32, 16), batch norm,
  ReLU, 2x2 max-pool] -> 256 -> linear to m without bias; decoder linear to 256 -> 16x4x4 -> three
  blocks of [3x3 conv (16, 32, 64), batch norm, ReLU, x2 upsample] -> 3x3 conv to 3 channels.

Decoders return logits; grey images are ``sigmoid(logits)``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

LEAK = 0.2


def init_parameters(module: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """Glorot-uniform weights and zero biases (TensorFlow's defaults, as in the reference), drawn
    from ``generator`` so that a seed fixes the initial network."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(layer.weight, generator=generator)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module


class MLPEncoder(nn.Module):
    """``x [B, C, H, W] -> logits [B, m]``."""

    def __init__(self, image_shape, bits: int, hidden: int = 500):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(math.prod(image_shape), hidden), nn.LeakyReLU(LEAK), nn.Linear(hidden, bits, bias=False)
        )

    def forward(self, x):
        return self.net(x)


class MLPDecoder(nn.Module):
    """``y [..., m] -> pixel logits [..., C*H*W]`` (flat; the codec reshapes)."""

    def __init__(self, image_shape, bits: int, hidden: tuple[int, ...] = (500, 500)):
        super().__init__()
        layers, width = [], bits
        for h in hidden:
            layers += [nn.Linear(width, h, bias=False), nn.LeakyReLU(LEAK)]
            width = h
        layers.append(nn.Linear(width, math.prod(image_shape), bias=False))
        self.net = nn.Sequential(*layers)

    def forward(self, y):
        return self.net(y)


class ConvEncoder(nn.Module):
    """32x32 RGB ``x [B, 3, 32, 32] -> logits [B, m]``."""

    def __init__(self, image_shape, bits: int, widths=(64, 32, 16)):
        super().__init__()
        channels, blocks = image_shape[0], []
        for w in widths:
            blocks += [nn.Conv2d(channels, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2)]
            channels = w
        side = image_shape[1] // 2 ** len(widths)
        self.net = nn.Sequential(*blocks, nn.Flatten(), nn.Linear(channels * side * side, bits, bias=False))

    def forward(self, x):
        return self.net(x)


class ConvDecoder(nn.Module):
    """``y [..., m] -> pixel logits [..., 3*32*32]`` (flat)."""

    def __init__(self, image_shape, bits: int, widths=(16, 32, 64)):
        super().__init__()
        self.image_shape = tuple(image_shape)
        side = image_shape[1] // 2 ** len(widths)
        self.seed_shape = (widths[0], side, side)
        self.fc = nn.Linear(bits, math.prod(self.seed_shape), bias=False)
        blocks, channels = [], widths[0]
        for w in widths:
            blocks += [nn.Conv2d(channels, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.Upsample(scale_factor=2)]
            channels = w
        self.net = nn.Sequential(*blocks, nn.Conv2d(channels, image_shape[0], 3, padding=1))

    def forward(self, y):
        lead = y.shape[:-1]
        h = self.fc(y.reshape(-1, y.shape[-1])).reshape(-1, *self.seed_shape)
        return self.net(h).reshape(*lead, -1)


def default_architecture(image_shape) -> str:
    """``"conv"`` for 32x32 RGB images, else ``"mlp"``."""
    return "conv" if tuple(image_shape) == (3, 32, 32) else "mlp"


def build_networks(architecture: str, image_shape, bits: int, generator: torch.Generator | None = None) -> tuple[nn.Module, nn.Module]:
    """Encoder and decoder, initialised from ``generator`` (on the CPU)."""
    if architecture == "mlp":
        encoder, decoder = MLPEncoder(image_shape, bits), MLPDecoder(image_shape, bits)
    elif architecture == "conv":
        if tuple(image_shape[1:]) != (32, 32):
            raise ValueError(f"architecture 'conv' needs 32x32 images, got {list(image_shape)}")
        encoder, decoder = ConvEncoder(image_shape, bits), ConvDecoder(image_shape, bits)
    else:
        raise ValueError(f"unknown architecture {architecture!r}; choose 'mlp' or 'conv'")
    return init_parameters(encoder, generator), init_parameters(decoder, generator)
