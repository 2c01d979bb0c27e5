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
        product = torch.ones_like(bits)
        llr = None
        for stage in self.stages:
            llr = stage(current, generator, **{k: v for k, v in params.items() if k in stage.params})
            product = product * torch.tanh(llr.abs() / 2)
            current = (llr > 0).to(bits.dtype)
        # sign of the last stage, magnitude from all stages
        out = torch.sign(llr) * 2 * torch.atanh(product.clamp(max=1 - 1e-7))
        return out.clamp(-LLR_LIMIT, LLR_LIMIT)
