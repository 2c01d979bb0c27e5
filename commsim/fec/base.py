"""The channel-code contract of the separated baselines, its registry and a CRC.

A channel code maps blocks of information bits to codewords and channel LLRs back to bits::

    code.encode(info)         # info [F, k] uint8 {0,1} -> codeword [F, n] uint8 {0,1}
    code.decode(llr)          # llr [F, n] float -> (info_hat [F, k] uint8, ok [F] bool)
    code.decode_tensor(llr)   # the same on torch tensors, on llr's device (what the separated codecs call)

``llr`` follows the one convention of :mod:`commsim.channels.base`: ``llr = log P(b=1|r)/P(b=0|r)``
(positive decides 1, 0 is an erasure). ``ok`` is what the decoder believes: all parity checks hold
(LDPC), the CRC matches (convolutional and repetition codes with ``crc_bits > 0``), else ``True``.

Codes come in *families* registered in :data:`CHANNEL_CODES`; a family offers, for a budget of ``n``
channel bits, several codes of different rates that fit (``code.n <= n``)::

    family = channel_code_family("ldpc")
    codes = family.codes_for(1000)      # list of ChannelCode, highest rate first
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import nn

from commsim.core.registry import Registry

CHANNEL_CODES = Registry("channel code")
"""Families of channel codes by name: ``ldpc``, ``conv``, ``rep``, ``ideal``, ``ideal-fbl``."""

register_channel_code = CHANNEL_CODES.register


class ChannelCode(nn.Module):
    """Base class of channel codes: call ``super().__init__()``, set ``name``, ``k``, ``n``; implement
    ``encode`` and ``decode`` (and ``decode_tensor`` where a torch decoder exists).

    A code is a ``torch.nn.Module``: ``code(llr)`` is :meth:`decode_tensor`, and its tables (buffers)
    move with ``.to(device)`` together with the codec that holds it. The torch decoders themselves
    (:mod:`commsim.fec.decoders`, shared between codes of the same matrix or memory) serve their tables
    on whatever device the LLRs are on, so decoding runs where the LLRs are.

    ``ideal = True`` marks codes that cannot decode noisy bits (capacity stand-ins, see
    :mod:`commsim.fec.ideal`).
    """

    name: str = "code"
    k: int = 0
    n: int = 0
    ideal: bool = False

    @property
    def rate(self) -> float:
        """Information bits per channel bit, ``k / n``."""
        return self.k / self.n

    def encode(self, info: np.ndarray) -> np.ndarray:
        """``info [F, k]`` uint8 {0,1} -> codewords ``[F, n]`` uint8 {0,1}."""
        raise NotImplementedError

    def decode(self, llr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``llr [F, n]`` (logit convention) -> ``(info_hat [F, k] uint8, ok [F] bool)``."""
        raise NotImplementedError

    def decode_tensor(self, llr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``llr [F, n]`` tensor -> ``(info_hat [F, k] uint8, ok [F] bool)`` tensors on ``llr``'s device.

        This default goes through :meth:`decode` (numpy, on the CPU); the codes with torch decoders
        (``ldpc`` and ``conv`` with ``decoder="torch"``, ``rep``) override it and stay on the device."""
        info, ok = self.decode(llr.detach().cpu().numpy().astype(np.float64))
        return (torch.from_numpy(np.asarray(info, np.uint8)).to(llr.device),
                torch.from_numpy(np.asarray(ok, bool)).to(llr.device))

    def decode_iterations(self, llr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """:meth:`decode_tensor` plus the decoder's iterations per frame (``[F]`` int, ``None`` for
        decoders without iterations): what a BER simulation reports as mean iterations."""
        info, ok = self.decode_tensor(llr)
        return info, ok, None

    def forward(self, llr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``llr [F, n]`` -> ``(info_hat [F, k] uint8, ok [F] bool)`` on ``llr``'s device."""
        return self.decode_tensor(llr)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} k={self.k} n={self.n}>"


def channel_code_family(name: str, **options):
    """A family object by registered name, e.g. ``channel_code_family("conv", crc_bits=16)``.

    The family's ``codes_for(n)`` lists the codes it offers that fit ``n`` channel bits; families of
    real (decodable) codes also have ``build(n, k)``: the code of exactly ``n`` channel bits carrying
    ``k`` information bits, or a ``ValueError`` that says which lengths or rates the family has
    (:func:`commsim.fec.specs.build_code` builds one from a spec such as ``"polar(128,64)"``).
    """
    return CHANNEL_CODES.get(name)(**options)


def check_info(info: np.ndarray, k: int) -> np.ndarray:
    """Validate ``info [F, k]`` of 0/1 values; return it as uint8."""
    info = np.asarray(info)
    if info.ndim != 2 or info.shape[1] != k:
        raise ValueError(f"info must have shape [F, {k}], got {list(info.shape)}")
    if info.size and not np.isin(info, (0, 1)).all():
        raise ValueError("info must contain only 0 and 1")
    return info.astype(np.uint8)


def check_llr(llr: np.ndarray, n: int) -> np.ndarray:
    """Validate ``llr [F, n]``; return it as float64."""
    llr = np.asarray(llr, dtype=np.float64)
    if llr.ndim != 2 or llr.shape[1] != n:
        raise ValueError(f"llr must have shape [F, {n}], got {list(llr.shape)}")
    if np.isnan(llr).any():
        raise ValueError("llr must not contain NaN")
    return llr


# CRC ---------------------------------------------------------------------------------------------

CRC_POLYNOMIALS = {6: 0x21, 8: 0x07, 11: 0x621, 16: 0x1021, 24: 0x864CFB, 32: 0x04C11DB7}
"""Default generator polynomial per CRC length (without the leading term): CRC-6 and CRC-11 of 5G NR,
CRC-8 (ATM), CRC-16-CCITT (= 5G CRC16), CRC-24A (LTE / 5G), CRC-32."""

CRC_NAMES = {
    "6": (6, 0x21),           # 38.212 5.1: gCRC6(D)   = D^6 + D^5 + 1
    "11": (11, 0x621),        # 38.212 5.1: gCRC11(D)  = D^11 + D^10 + D^9 + D^5 + 1
    "16": (16, 0x1021),       # 38.212 5.1: gCRC16(D)  = D^16 + D^12 + D^5 + 1
    "24A": (24, 0x864CFB),    # 38.212 5.1: gCRC24A(D) = D^24+D^23+D^18+D^17+D^14+D^11+D^10+D^7+D^6+D^5+D^4+D^3+D+1
    "24B": (24, 0x800063),    # 38.212 5.1: gCRC24B(D) = D^24 + D^23 + D^6 + D^5 + D + 1
    "24C": (24, 0xB2B117),    # 38.212 5.1: gCRC24C(D) = D^24+D^23+D^21+D^20+D^17+D^15+D^13+D^12+D^8+D^4+D^2+D+1
    "8": (8, 0x07), "32": (32, 0x04C11DB7),
}
"""Named CRCs ``name -> (bits, polynomial without the leading term)``: the 5G NR ones of TS 38.212
section 5.1 and the defaults above; ``CRC("24C")`` or ``CRC(24, poly="24C")``."""


@lru_cache(maxsize=64)
def _crc_matrix(k: int, bits: int, poly: int | None = None) -> np.ndarray:
    """``G [k, bits]`` with ``crc(u) = u @ G mod 2`` (zero initial register, MSB first): the remainder
    of ``u(D) D^bits`` divided by ``g(D) = D^bits + poly(D)``, the first bit of ``u`` the highest power."""
    poly, top = (CRC_POLYNOMIALS[bits] if poly is None else poly), 1 << bits
    rows = np.zeros((k, bits), np.float32)
    rem = poly  # x^bits mod g; row i holds x^(k - 1 - i + bits) mod g
    for i in range(k - 1, -1, -1):
        rows[i] = [(rem >> (bits - 1 - j)) & 1 for j in range(bits)]
        rem <<= 1
        if rem & top:
            rem ^= top | poly
    return rows


class CRC:
    """Cyclic redundancy check over ``k`` information bits.

    ``CRC(bits)`` with ``bits`` in 0, 6, 8, 11, 16, 24, 32 uses :data:`CRC_POLYNOMIALS` (24 is CRC-24A);
    ``CRC(name)`` or ``CRC(bits, poly=name)`` a named one of :data:`CRC_NAMES` (e.g. ``"24C"``, ``"11"``,
    ``"6"``), and ``poly`` may also be an int (the polynomial without its leading term).

    ``attach(info [F, k]) -> [F, k + bits]`` appends the check bits;
    ``split(word [F, k + bits]) -> (info [F, k], ok [F])`` strips them and says whether they match.
    ``bits = 0`` is no CRC (``ok`` is always True).
    """

    def __init__(self, bits: int | str = 0, poly: int | str | None = None):
        if isinstance(bits, str):
            if poly is not None:
                raise ValueError(f"give a CRC by name or by bits and poly, not both; got {bits!r} and poly={poly!r}")
            bits, poly = self._named(bits)
        if isinstance(poly, str):
            named_bits, poly = self._named(poly)
            if named_bits != bits:
                raise ValueError(f"CRC {poly:#x} has {named_bits} bits, not {bits}")
        if poly is None and bits not in (0, *CRC_POLYNOMIALS):
            raise ValueError(f"crc_bits must be one of 0, {', '.join(map(str, CRC_POLYNOMIALS))}; got {bits}")
        if poly is not None and not (bits >= 1 and 0 <= int(poly) < (1 << bits) and int(poly) & 1):
            raise ValueError(f"poly must be a {bits}-bit polynomial with its constant term set (odd), got {poly!r}")
        self.bits = int(bits)
        self.poly = None if self.bits == 0 else int(CRC_POLYNOMIALS[self.bits] if poly is None else poly)

    @staticmethod
    def _named(name: str) -> tuple[int, int]:
        key = name.upper().removeprefix("CRC").removeprefix("-")
        if key not in CRC_NAMES:
            raise ValueError(f"unknown CRC {name!r}; known: {', '.join(CRC_NAMES)}")
        return CRC_NAMES[key]

    @property
    def label(self) -> str:
        """``"11"``, ``"24"`` (the default polynomial of that length) or the name of another one (``"24C"``)."""
        if self.bits == 0 or self.poly == CRC_POLYNOMIALS.get(self.bits):
            return str(self.bits)
        named = [name for name, (bits, poly) in CRC_NAMES.items() if (bits, poly) == (self.bits, self.poly)]
        return named[0] if named else f"{self.bits}-{self.poly:x}"

    def __repr__(self) -> str:
        return f"CRC({self.bits}, poly={self.poly:#x})" if self.bits else "CRC(0)"

    def matrix(self, k: int) -> np.ndarray:
        """``G [k, bits]`` float32 0/1 with ``crc(u) = u @ G mod 2``."""
        return _crc_matrix(k, self.bits, self.poly)

    def compute(self, info: np.ndarray) -> np.ndarray:
        if self.bits == 0:
            return np.zeros((info.shape[0], 0), np.uint8)
        return (info.astype(np.float32) @ self.matrix(info.shape[1]) % 2).astype(np.uint8)

    def attach(self, info: np.ndarray) -> np.ndarray:
        return np.concatenate([info, self.compute(info)], axis=1).astype(np.uint8)

    def split(self, word: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = word.shape[1] - self.bits
        info = word[:, :k].astype(np.uint8)
        ok = (self.compute(info) == word[:, k:]).all(axis=1)
        return info, ok

    def split_tensor(self, word: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`split` on a uint8 tensor ``[F, k + bits]``, on its device."""
        k = word.shape[1] - self.bits
        info = word[:, :k]
        if self.bits == 0:
            return info, torch.ones(word.shape[0], dtype=torch.bool, device=word.device)
        matrix = torch.from_numpy(self.matrix(k)).to(word.device)
        check = (info.float() @ matrix).remainder(2).to(torch.uint8)
        return info, (check == word[:, k:]).all(dim=1)
