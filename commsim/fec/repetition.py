"""Repetition codes with an optional CRC.

Bit accounting: ``k`` information bits + ``crc_bits`` CRC bits = ``u`` payload bits, sent ``r`` times
(whole copies one after another, which spreads the copies of a bit ``u`` positions apart for bursty
channels): ``n = r * u``. Decoding sums each bit's ``r`` LLRs and decides 1 where the sum is positive
(ties, e.g. all copies erased, decide 0). With ``crc_bits > 0``, ``ok`` says whether the CRC matches.
"""
from __future__ import annotations

import numpy as np
import torch

from commsim.fec.base import CRC, ChannelCode, check_info, check_llr, register_channel_code


class RepetitionCode(ChannelCode):
    """``k`` information bits (+ CRC) repeated ``repeat`` times."""

    def __init__(self, k: int, repeat: int, crc_bits: int = 0):
        if k < 1 or repeat < 1:
            raise ValueError(f"need k >= 1 and repeat >= 1, got k={k}, repeat={repeat}")
        super().__init__()
        self.k, self.repeat, self.crc = int(k), int(repeat), CRC(crc_bits)
        self.payload = self.k + self.crc.bits
        self.n = self.repeat * self.payload
        crc = f"+crc{self.crc.bits}" if self.crc.bits else ""
        self.name = f"rep{self.repeat}({self.n},{self.k}){crc}"

    def encode(self, info: np.ndarray) -> np.ndarray:
        return np.tile(self.crc.attach(check_info(info, self.k)), (1, self.repeat))

    def decode(self, llr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        llr = check_llr(llr, self.n)
        total = llr.reshape(llr.shape[0], self.repeat, self.payload).sum(axis=1)
        return self.crc.split((total > 0).astype(np.uint8))

    def decode_tensor(self, llr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if llr.dim() != 2 or llr.shape[1] != self.n:
            raise ValueError(f"llr must have shape [F, {self.n}], got {list(llr.shape)}")
        total = llr.double().reshape(llr.shape[0], self.repeat, self.payload).sum(dim=1)
        return self.crc.split_tensor((total > 0).to(torch.uint8))


REPEATS = (1, 3, 5, 7, 9, 11, 15, 21, 31, 41, 51, 75, 101)
"""Repetitions offered (odd, so hard-decision channels never tie; 1 is the uncoded link)."""


@register_channel_code("rep")
class RepetitionFamily:
    """Repetition codes, 1 (uncoded) to 101 copies, with an optional CRC."""

    def __init__(self, crc_bits: int = 0, repeats: tuple[int, ...] = REPEATS):
        self.crc_bits, self.repeats = crc_bits, tuple(repeats)

    def codes_for(self, n: int) -> list[RepetitionCode]:
        fits = [(n // r - self.crc_bits, r) for r in self.repeats]
        return [RepetitionCode(k, r, self.crc_bits) for k, r in fits if k >= 1]

    def build(self, n: int, k: int) -> RepetitionCode:
        """The repetition code of ``k`` bits (+ CRC) sent ``n / (k + crc_bits)`` times."""
        payload = k + self.crc_bits
        if n % payload:
            raise ValueError(f"a repetition code of {k} bits (+{self.crc_bits} CRC) has a length that is a multiple of "
                             f"{payload}, not {n}")
        return RepetitionCode(k, n // payload, self.crc_bits)
