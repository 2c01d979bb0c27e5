"""Gilbert–Elliott bursty channel: a two-state Markov chain of BSCs."""
from __future__ import annotations

import torch

from commsim.channels.base import Channel, Param, hard_llr, reliability, uniform
from commsim.core.registry import register_channel


def stationary_bad(p_gb: torch.Tensor, p_bg: torch.Tensor) -> torch.Tensor:
    """Long-run probability of the bad state, ``p_gb / (p_gb + p_bg)`` (0 where both are 0)."""
    total = p_gb + p_bg
    return torch.where(total > 0, p_gb / total.clamp_min(1e-30), torch.zeros_like(total))


def long_run_error_rate(p_gb, p_bg, eps_good, eps_bad) -> torch.Tensor:
    """Closed-form long-run bit error rate ``pi_G eps_good + pi_B eps_bad``."""
    p_gb, p_bg, eps_good, eps_bad = (torch.as_tensor(v, dtype=torch.float64) for v in (p_gb, p_bg, eps_good, eps_bad))
    pi_bad = stationary_bad(p_gb, p_bg)
    return (1 - pi_bad) * eps_good + pi_bad * eps_bad


def per_sample(value: torch.Tensor, shape) -> torch.Tensor:
    if value.dim() == 2 and value.shape[1] != 1:
        raise ValueError("gilbert_elliott parameters are per sample ([B]), not per bit")
    return value.reshape(-1, 1).expand(shape) if value.dim() else value.expand(shape)


@register_channel("gilbert_elliott")
class GilbertElliott(Channel):
    """Bursty BSC: a hidden good/bad state evolves along the m bits of each sample.

    The state moves good -> bad with probability ``p_gb`` and bad -> good with ``p_bg`` between
    consecutive bits, and starts from the stationary distribution. A bit flips with probability
    ``eps_good`` or ``eps_bad`` in the current state. Input ``bits [B, m]``; output ``llr [B, m]``
    with the reliability of the long-run error rate (the memoryless view a decoder without state
    tracking would take).
    """

    params = {
        "p_gb": Param(0.0, 1.0, default=0.05, doc="good -> bad transition probability"),
        "p_bg": Param(0.0, 1.0, default=0.25, doc="bad -> good transition probability"),
        "eps_good": Param(0.0, 1.0, default=0.01, doc="flip probability in the good state", better="lower"),
        "eps_bad": Param(0.0, 1.0, default=0.3, doc="flip probability in the bad state", better="lower"),
    }
    main_param = "eps_bad"

    def transmit(self, bits, generator, p_gb, p_bg, eps_good, eps_bad):
        batch, m = bits.shape
        shape = (batch, 1)
        p_gb, p_bg, eps_good, eps_bad = (per_sample(v, shape) for v in (p_gb, p_bg, eps_good, eps_bad))
        draws = uniform((batch, m + 1), generator, bits.device)
        flips_u = uniform((batch, m), generator, bits.device)
        bad = draws[:, :1] < stationary_bad(p_gb, p_bg)
        states = torch.empty((batch, m), dtype=torch.bool, device=bits.device)
        for i in range(m):
            states[:, i] = bad[:, 0]
            leave = torch.where(bad, p_bg, p_gb)
            switch = draws[:, i + 1 : i + 2] < leave
            bad = bad ^ switch
        flip_prob = torch.where(states, eps_bad, eps_good)
        received = (bits + (flips_u < flip_prob).to(bits.dtype)) % 2
        return hard_llr(received, reliability(long_run_error_rate(p_gb, p_bg, eps_good, eps_bad).to(torch.float32)))
