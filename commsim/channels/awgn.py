"""Additive white Gaussian noise channel with BPSK."""
from __future__ import annotations

import math

import torch

from commsim.channels.base import LLR_LIMIT, Channel, Param
from commsim.core.registry import register_channel


def noise_variance(ebno_db: torch.Tensor | None, snr_db: torch.Tensor | None, rate: torch.Tensor) -> torch.Tensor:
    """Per-dimension noise variance for unit-energy BPSK: ``sigma^2 = 1 / (2 Es/N0)``.

    ``Es/N0 = rate * Eb/N0`` when ``ebno_db`` is given, else ``snr_db`` is Es/N0 itself.
    """
    esn0 = rate * 10.0 ** (ebno_db / 10.0) if ebno_db is not None else 10.0 ** (snr_db / 10.0)
    return 1.0 / (2.0 * esn0)


@register_channel("awgn")
class AWGN(Channel):
    """BPSK over AWGN with soft output: bit b is sent as ``x = 2b - 1``, ``r = x + n``.

    Give exactly one of ``ebno_db`` (Eb/N0 in dB per information bit; ``rate`` = information bits per
    channel bit, 1 for uncoded or learned codes) or ``snr_db`` (Es/N0 in dB per channel bit).
    Input ``bits [B, m]``; output ``llr [B, m] = 2 r / sigma^2`` (clipped to ±LLR_LIMIT).
    Hard-decision bit error rate at rate 1: ``Q(sqrt(2 Eb/N0))``.
    """

    params = {
        "ebno_db": Param(-50.0, 60.0, default=math.nan, doc="Eb/N0 in dB", better="higher"),
        "snr_db": Param(-50.0, 60.0, default=math.nan, doc="Es/N0 in dB (instead of ebno_db)", better="higher"),
        "rate": Param(1e-6, 1.0, default=1.0, doc="information bits per channel bit"),
    }
    main_param = "ebno_db"

    def check_params(self, params, bits):
        given = [k for k in ("ebno_db", "snr_db") if params.get(k) is not None]
        if len(given) != 1:
            raise ValueError("awgn needs exactly one of ebno_db or snr_db")
        other = "snr_db" if given[0] == "ebno_db" else "ebno_db"
        checked = super().check_params({**params, other: 0.0}, bits)
        checked[other] = None
        return checked

    def transmit(self, bits, generator, ebno_db, snr_db, rate):
        sigma2 = noise_variance(ebno_db, snr_db, rate)
        noise = torch.randn(bits.shape, generator=generator, device=bits.device)
        received = (2.0 * bits - 1.0) + torch.sqrt(sigma2) * noise
        return (2.0 * received / sigma2).clamp(-LLR_LIMIT, LLR_LIMIT)
