"""Ideal channel codes: the payload an optimal code would deliver, as a reference for real codes.

- ``ideal``: a capacity-achieving code, ``k = floor(n C)`` bits delivered without error.
- ``ideal-fbl``: the finite-blocklength normal approximation at frame error rate ``p_error``
  (Polyanskiy, Poor, Verdu 2010), for the BSC (and BEC):
  ``log2 M = n C - sqrt(n V) Q^-1(p_error) + 1/2 log2 n`` with ``V = eps (1 - eps) log2^2((1-eps)/eps)``
  (BEC: ``V = eps (1 - eps)``, no ``log2 n`` term); ``k = floor`` of it, clipped to ``[0, n]``.

These codes cannot decode noisy bits: they carry ``ideal = True``, ``encode`` pads the information to
``n`` bits and ``decode`` raises. The separated pipeline checks ``getattr(code, "ideal", False)`` and
delivers the payload of ``code.capacity_bits(n, channel, **params)`` bits without a channel.

Capacities (bits per channel use), by channel name and the channel's own parameters:
``bsc(eps) = 1 - h(eps)``, ``bec(eps) = 1 - eps``,
``z(eps) = log2(1 + (1 - eps) eps^(eps / (1 - eps)))`` (a 1 turns into 0 with probability eps), and
``awgn(snr_db | ebno_db, rate=1)``: BPSK-input capacity ``1 - E[log2(1 + e^-L)]`` with the LLR of the
sent bit ``L ~ N(4 Es/N0, 8 Es/N0)``, integrated numerically; ``Es/N0 = rate Eb/N0`` (rate 1 by
default: Eb/N0 is counted per channel bit, as for the awgn channel block at its default rate).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import integrate, optimize, special

from commsim.fec.base import ChannelCode, check_info, register_channel_code


def binary_entropy_bits(p):
    """``h(p) = -p log2 p - (1-p) log2 (1-p)`` in bits (0 at p = 0 and 1)."""
    p = np.asarray(p, dtype=np.float64)
    return special.entr(p) / math.log(2) + special.entr(1 - p) / math.log(2)


def bsc_capacity(eps):
    """Capacity of the BSC(eps): ``1 - h(eps)`` (float or array, like ``eps``)."""
    return 1.0 - binary_entropy_bits(eps)


def z_capacity(eps: float) -> float:
    """Capacity of the Z-channel whose 1s turn into 0s with probability ``eps``."""
    if eps >= 1.0:
        return 0.0
    if eps <= 0.0:
        return 1.0
    return math.log2(1.0 + (1.0 - eps) * eps ** (eps / (1.0 - eps)))


def awgn_capacity(snr_db: float | None = None, ebno_db: float | None = None, rate: float = 1.0) -> float:
    """BPSK-input AWGN capacity at Es/N0 = ``snr_db`` or at ``rate`` * Eb/N0 = ``ebno_db`` (dB)."""
    if (snr_db is None) == (ebno_db is None):
        raise ValueError("awgn capacity needs exactly one of snr_db or ebno_db")
    esn0 = 10 ** (snr_db / 10) if snr_db is not None else rate * 10 ** (ebno_db / 10)
    mean = 4.0 * esn0  # LLR of the sent bit: L ~ N(mean, 2 mean)
    if mean == 0.0:
        return 0.0
    std = math.sqrt(2.0 * mean)
    loss = integrate.quad(
        lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi) * np.logaddexp(0.0, -(mean + std * z)) / math.log(2),
        -np.inf, np.inf, epsabs=1e-12,
    )[0]
    return float(min(max(1.0 - loss, 0.0), 1.0))


def capacity(channel_name: str, **params) -> float:
    """Capacity in bits per channel use of ``bsc``, ``bec``, ``z`` (``eps``) or ``awgn``."""
    if channel_name == "awgn":
        return awgn_capacity(**params)
    if channel_name not in ("bsc", "bec", "z"):
        raise ValueError(f"ideal codes know the capacity of bsc, bec, z and awgn; not of {channel_name!r}")
    if set(params) != {"eps"}:
        raise ValueError(f"{channel_name} capacity takes eps only, got {sorted(params)}")
    eps = float(params["eps"])
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"eps must be in [0, 1], got {eps}")
    if channel_name == "bsc":
        return float(bsc_capacity(eps))
    return 1.0 - eps if channel_name == "bec" else z_capacity(eps)


def normal_approximation_bits(n: int, eps: float, p_error: float = 1e-3, channel_name: str = "bsc") -> int:
    """Information bits of the best ``n``-bit code at frame error rate ``p_error`` on the BSC(eps)
    (or BEC(eps)) by the normal approximation; floored and clipped to ``[0, n]``."""
    if not 0.0 < p_error < 1.0:
        raise ValueError(f"p_error must be in (0, 1), got {p_error}")
    if channel_name == "bsc":
        eps = min(eps, 1.0 - eps)
        if eps == 0.0:
            return int(n)
        if eps == 0.5:
            return 0
        cap, log_term = 1.0 - float(binary_entropy_bits(eps)), 0.5 * math.log2(n)
        disp = eps * (1 - eps) * math.log2((1 - eps) / eps) ** 2
    elif channel_name == "bec":
        cap, disp, log_term = 1.0 - eps, eps * (1 - eps), 0.0
    else:
        raise ValueError(f"the normal approximation is implemented for bsc and bec, not {channel_name!r}")
    bits = n * cap - math.sqrt(n * disp) * special.ndtri(1.0 - p_error) + log_term
    return int(min(max(math.floor(bits), 0), n))


class IdealCode(ChannelCode):
    """A stand-in for an optimal code of ``n`` channel bits (see the module doc).

    ``k`` is the payload; it depends on the channel, so it is ``n`` (a placeholder) until set, e.g. by
    :meth:`for_channel`. ``finite_blocklength=True`` uses the normal approximation at ``p_error``.
    """

    ideal = True

    def __init__(self, n: int, k: int | None = None, finite_blocklength: bool = False, p_error: float = 1e-3):
        super().__init__()
        self.n = int(n)
        self.k = self.n if k is None else int(k)
        self.finite_blocklength, self.p_error = finite_blocklength, p_error
        self.name = f"{'ideal-fbl' if finite_blocklength else 'ideal'}({self.n},{self.k})"

    def capacity_bits(self, n: int, channel_name: str, **params) -> int:
        """Payload in bits of an ideal ``n``-bit code on ``channel_name`` with these parameters."""
        if self.finite_blocklength:
            if set(params) != {"eps"}:
                raise ValueError(f"ideal-fbl takes eps only, got {sorted(params)}")
            return normal_approximation_bits(n, float(params["eps"]), self.p_error, channel_name)
        return int(min(math.floor(n * capacity(channel_name, **params) + 1e-9), n))

    def for_channel(self, channel_name: str, **params) -> "IdealCode":
        """The same code with ``k`` set for this channel."""
        k = self.capacity_bits(self.n, channel_name, **params)
        return IdealCode(self.n, k, self.finite_blocklength, self.p_error)

    def encode(self, info: np.ndarray) -> np.ndarray:
        info = check_info(info, self.k)
        return np.pad(info, ((0, 0), (0, self.n - self.k)))

    def decode(self, llr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise RuntimeError(
            f"{self.name} is an ideal code and cannot decode channel outputs: the separated pipeline "
            "delivers an ideal code's payload (capacity_bits) without a channel"
        )


@register_channel_code("ideal")
class IdealFamily:
    """A capacity-achieving code: k = floor(n C) bits delivered error-free (reference only)."""

    finite_blocklength = False

    def __init__(self, p_error: float = 1e-3):
        self.p_error = p_error

    def codes_for(self, n: int, channel: str | None = None, **params) -> list[IdealCode]:
        """``[IdealCode(n)]``; with ``channel`` and its parameters, its ``k`` set for that channel."""
        code = IdealCode(n, finite_blocklength=self.finite_blocklength, p_error=self.p_error)
        return [code.for_channel(channel, **params) if channel is not None else code]


@register_channel_code("ideal-fbl")
class IdealFiniteBlocklengthFamily(IdealFamily):
    """The normal approximation of the best n-bit code at frame error rate p_error (BSC, BEC)."""

    finite_blocklength = True


# Normal approximation of the block error rate of the best (n, k) code ---------------------------

def _biawgn_information(esn0: float) -> tuple[float, float]:
    """``(C, V)``: capacity and dispersion (bits, bits^2 per channel use) of BPSK on AWGN at Es/N0
    ``esn0`` (linear). The information density of a use is ``i = 1 - log2(1 + e^-L)`` with the LLR
    of the sent bit ``L ~ N(4 Es/N0, 8 Es/N0)``: ``C = E[i]``, ``V = Var[i]`` (Gauss-Hermite, 200
    nodes: exact to ~1e-12 over the range of interest)."""
    mean = 4.0 * esn0
    if mean == 0.0:
        return 0.0, 0.0
    nodes, weights = np.polynomial.hermite_e.hermegauss(200)
    weights = weights / weights.sum()
    loss = np.logaddexp(0.0, -(mean + math.sqrt(2.0 * mean) * nodes)) / math.log(2)
    info = 1.0 - loss
    cap = float(weights @ info)
    return cap, float(weights @ (info - cap) ** 2)


def channel_information(channel_name: str, **params) -> tuple[float, float]:
    """``(C, V)``, capacity and dispersion per channel use, of ``bsc`` / ``bec`` (``eps``) or ``awgn``
    (``snr_db`` = Es/N0, or ``ebno_db`` with ``rate``: Es/N0 = rate Eb/N0), for the normal approximation."""
    if channel_name == "awgn":
        snr_db, ebno_db = params.get("snr_db"), params.get("ebno_db")
        if (snr_db is None) == (ebno_db is None):
            raise ValueError("awgn needs exactly one of snr_db or ebno_db")
        esn0 = 10 ** (snr_db / 10) if snr_db is not None else float(params.get("rate", 1.0)) * 10 ** (ebno_db / 10)
        return _biawgn_information(esn0)
    eps = float(params["eps"])
    if channel_name == "bsc":
        eps = min(eps, 1.0 - eps)
        if eps == 0.0:
            return 1.0, 0.0
        return 1.0 - float(binary_entropy_bits(eps)), eps * (1 - eps) * math.log2((1 - eps) / eps) ** 2
    if channel_name == "bec":
        return 1.0 - eps, eps * (1 - eps)
    raise ValueError(f"the normal approximation is implemented for bsc, bec and awgn, not {channel_name!r}")


def normal_approximation_bler(n: int, k: int, channel_name: str = "awgn", **params) -> float:
    """Block error rate of the best ``(n, k)`` code by the normal approximation (Polyanskiy, Poor,
    Verdu 2010): ``Q((n C - k + 1/2 log2 n) / sqrt(n V))`` (BEC: no ``log2 n`` term), with ``(C, V)``
    of :func:`channel_information`. An approximation of what an optimal code achieves, not a bound;
    the usual yardstick of short codes (e.g. (128, 64) on BI-AWGN: BLER 1e-3 at Eb/N0 ~ 2.48 dB)."""
    if not 0 < k <= n:
        raise ValueError(f"need 0 < k <= n, got n={n}, k={k}")
    cap, disp = channel_information(channel_name, **params)
    log_term = 0.0 if channel_name == "bec" else 0.5 * math.log2(n)
    margin = n * cap - k + log_term
    if disp == 0.0:
        return 0.0 if margin >= 0 else 1.0
    return float(special.ndtr(-margin / math.sqrt(n * disp)))


def normal_approximation_ebno_db(n: int, k: int, bler: float = 1e-3) -> float:
    """Eb/N0 in dB (``Es/N0 = (k/n) Eb/N0``) at which the normal approximation of the best ``(n, k)``
    code on BI-AWGN reaches block error rate ``bler`` (solved for ``Q^-1(bler)`` in the standard
    normal's scale, which stays finite where the BLER underflows)."""
    if not 0.0 < bler < 1.0:
        raise ValueError(f"bler must be in (0, 1), got {bler}")
    if not 0 < k <= n:
        raise ValueError(f"need 0 < k <= n, got n={n}, k={k}")
    target = -float(special.ndtri(bler))  # margin / sqrt(n V) needed

    def excess(ebno_db: float) -> float:
        cap, disp = channel_information("awgn", ebno_db=ebno_db, rate=k / n)
        return (n * cap - k + 0.5 * math.log2(n)) / math.sqrt(n * max(disp, 1e-300)) - target

    return float(optimize.brentq(excess, -10.0, 20.0, xtol=1e-6))
