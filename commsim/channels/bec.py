"""Binary erasure channel."""
from __future__ import annotations

import torch

from commsim.channels.base import LLR_LIMIT, Channel, Param, hard_llr, uniform
from commsim.core.registry import register_channel


@register_channel("bec")
class BEC(Channel):
    """Binary erasure channel: each bit is erased independently with probability eps.

    Input ``bits [B, m]``; output ``llr [B, m]``: ``±LLR_LIMIT`` for a bit that arrives, 0 for an erasure.
    """

    params = {"eps": Param(0.0, 1.0, doc="erasure probability", better="lower")}
    main_param = "eps"

    def transmit(self, bits, generator, eps):
        erased = uniform(bits.shape, generator, bits.device) < eps
        return torch.where(erased, torch.zeros_like(bits), hard_llr(bits, LLR_LIMIT))
