"""Z-channel (asymmetric: only ones are corrupted)."""
from __future__ import annotations

import torch

from commsim.channels.base import LLR_LIMIT, Channel, Param, uniform
from commsim.core.registry import register_channel


@register_channel("z")
class ZChannel(Channel):
    """Z-channel: a 1 turns into a 0 with probability eps; a 0 always arrives intact.

    Input ``bits [B, m]``; output ``llr [B, m]``: a received 1 is certain (``+LLR_LIMIT``), a received
    0 has ``llr = log(eps / 1)`` (clipped), the posterior log-ratio under a uniform prior.
    """

    params = {"eps": Param(0.0, 1.0, doc="probability that a 1 is received as 0", better="lower")}
    main_param = "eps"

    def transmit(self, bits, generator, eps):
        drop = (uniform(bits.shape, generator, bits.device) < eps).to(bits.dtype)
        received = bits * (1 - drop)
        llr_zero = torch.log(eps).clamp(-LLR_LIMIT, LLR_LIMIT).expand_as(bits)
        return torch.where(received > 0, torch.full_like(bits, LLR_LIMIT), llr_zero)
