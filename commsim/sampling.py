"""The Markov chain of the IABF paper's eq. 32: x -> noisy code -> x, repeated.

Each step encodes ``x`` into bits, sends them through the channel and decodes; binary data are
re-sampled from the decoder's Bernoulli probabilities, grey data keep the decoder's mean.
"""
from __future__ import annotations

import torch

from commsim.channels.base import Channel
from commsim.learned.codec import LearnedCodec


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
