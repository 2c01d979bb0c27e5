"""Binary symmetric channel."""
from __future__ import annotations


from commsim.channels.base import Channel, Param, hard_llr, reliability, uniform
from commsim.core.registry import register_channel


@register_channel("bsc")
class BSC(Channel):
    """Binary symmetric channel: each bit flips independently with probability eps.

    Input ``bits [B, m]`` in {0, 1}; output ``llr [B, m]`` = ``±log((1 - eps) / eps)`` (clipped).
    """

    params = {"eps": Param(0.0, 1.0, doc="crossover probability", better="lower")}
    main_param = "eps"

    def transmit(self, bits, generator, eps):
        flips = (uniform(bits.shape, generator, bits.device) < eps).to(bits.dtype)
        received = (bits + flips) % 2
        return hard_llr(received, reliability(eps))
