"""The Markov chain of the IABF paper's eq. 32: x -> noisy code -> x, repeated.

Each step encodes ``x`` into bits, sends them through the channel and decodes; binary data are
re-sampled from the decoder's Bernoulli probabilities, grey data keep the decoder's mean.
"""
from __future__ import annotations

import torch

from commsim.channels.base import Channel
from commsim.learned.codec import LearnedCodec

MAX_CHAIN_STEPS = 100_000
"""Most steps of a ``sample`` chain (each step codes and decodes every chain once)."""
MAX_CHAIN_ROWS = 64
"""Most rows of a chain's grid (64 rows of 64 chains is a PNG of about 5,900 x 5,900 pixels)."""


def check_chain(steps: int, every: int) -> int:
    """The number of rows a chain of ``steps`` kept every ``every`` steps makes (``ValueError`` beyond the limits)."""
    if not 1 <= steps <= MAX_CHAIN_STEPS or every < 1:
        raise ValueError(f"--steps must be in [1, {MAX_CHAIN_STEPS:,}] and --every >= 1")
    rows = steps // every + 1
    if rows > MAX_CHAIN_ROWS:
        raise ValueError(f"--steps: {steps} steps kept every {every} make {rows} rows of images, more than "
                         f"{MAX_CHAIN_ROWS}; raise --every or lower --steps")
    return rows


@torch.no_grad()
def markov_chain(codec: LearnedCodec, channel: Channel, x0: torch.Tensor, steps: int, every: int,
                 generator: torch.Generator, **params) -> list[torch.Tensor]:
    """States ``[n, C, H, W]`` of the chain started at ``x0``, every ``every`` steps (``x0`` first)."""
    if steps < 1 or every < 1:
        raise ValueError("steps and every must be >= 1")
    x, kept = x0, [x0]
    for step in range(1, steps + 1):
        llr = channel(codec.encode(x, generator), generator, **params)
        probs, _ = codec.decode(llr)
        x = (torch.rand(probs.shape, generator=generator, device=probs.device) < probs).float() if codec.binary else probs
        if step % every == 0:
            kept.append(x)
    return kept
