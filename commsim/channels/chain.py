"""Cascades of channels."""
from __future__ import annotations

import torch

from commsim.channels.base import Channel, LLR_LIMIT, check_bits


class Bound(Channel):
    """A channel with some parameters fixed: ``Bound(BSC(), eps=0.1)(bits)``.

    The fixed parameters are no longer parameters of the bound channel (passing one is an error).
    """

    def __init__(self, channel: Channel, **fixed):
        super().__init__()
        unknown = set(fixed) - set(channel.params)
        if unknown:
            raise ValueError(f"{type(channel).__name__} has no parameter {sorted(unknown)[0]!r}")
        self.channel = channel
        self.fixed = fixed
        self.params = {k: v for k, v in channel.params.items() if k not in fixed}
        self.main_param = channel.main_param if channel.main_param in self.params else None

    def forward(self, bits, generator=None, **params):
        bound = set(params) & set(self.fixed)
        if bound:
            raise ValueError(f"parameter {sorted(bound)[0]!r} is bound to {self.fixed[sorted(bound)[0]]} and cannot be passed")
        return self.channel(bits, generator, **self.fixed, **params)


class Chain(Channel):
    """Channels in cascade: ``Chain(Bound(BSC(), eps=0.1), BEC())``.

    Each stage sees the hard decisions of the previous one (an erasure enters the next stage as 0,
    with reliability 0). The output LLR combines the stages by the tanh rule,
    ``tanh(L/2) = tanh(|L_1|/2) * ... * tanh(L_n/2)``, which is exact for cascaded binary-symmetric
    reliabilities. A parameter given at call time goes to every stage that has a parameter of that
    name; bind stage-specific values with :class:`Bound`.
    Input ``bits [B, m]``; output ``llr [B, m]``.
    """

    def __init__(self, *stages: Channel):
        super().__init__()
        if not stages:
            raise ValueError("Chain needs at least one channel")
        self.stages = torch.nn.ModuleList(stages)
        self.params = {}
        for stage in stages:
            self.params.update(stage.params)
        self.main_param = stages[0].main_param

    def forward(self, bits, generator=None, **params):
        check_bits(bits)
        unknown = set(params) - set(self.params)
        if unknown:
            raise ValueError(f"Chain takes no parameter {sorted(unknown)[0]!r}; its parameters are: {', '.join(self.params)}")
        current = bits
        # float64, and |llr| == LLR_LIMIT counted as certain (factor 1): in float32 tanh(15) rounds to 1 and
        # the old clamp(max=1 - 1e-7) capped every composite reliability at 16.6 instead of LLR_LIMIT
        product = torch.ones_like(bits, dtype=torch.float64)
        llr = None
        for stage in self.stages:
            llr = stage(current, generator, **{k: v for k, v in params.items() if k in stage.params})
            magnitude = llr.abs().to(torch.float64)
            product = product * torch.where(magnitude >= LLR_LIMIT, torch.ones_like(magnitude), torch.tanh(magnitude / 2))
            current = (llr > 0).to(bits.dtype)
        # sign of the last stage, magnitude from all stages
        magnitude = torch.where(product >= 1, torch.full_like(product, LLR_LIMIT), 2 * torch.atanh(product.clamp(max=1 - 1e-15)))
        out = torch.sign(llr).to(torch.float64) * magnitude
        return out.clamp(-LLR_LIMIT, LLR_LIMIT).to(torch.float32)
