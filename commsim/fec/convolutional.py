"""Terminated convolutional codes with soft Viterbi decoding, puncturing, repetition and a CRC.

Bit accounting of one codeword (``n`` channel bits)::

    k information bits + crc_bits CRC bits                         = u payload bits
    u + memory zero tail bits (back to state 0)                   -> 2 (u + memory) mother-code bits
    puncturing (rate 2/3 or 3/4 patterns; none at rate 1/2)       -> p bits
    the p bits sent ``repeat`` times (copies one after another)   -> n = repeat * p channel bits

The trellis is commpy's ``Trellis(memory, g_matrix)`` (rate 1/2; ``memory=2``: generators (7, 5),
``memory=6``: (133, 171) in commpy's notation). Encoding walks its tables for all frames at once.
Decoding is maximum-likelihood (Viterbi) over the terminated trellis: it maximises the correlation
``sum_j c_j llr_j`` (the log-likelihood up to a constant in our ``log P1/P0`` convention), with the
punctured positions at LLR 0, the copies' LLRs summed, and traceback from state 0. Decoders:

- ``decoder="torch"`` (default): the batched torch :class:`~commsim.fec.decoders.ViterbiDecoder`
  (float32, ~2000x commpy for K = 7, see ``benchmarks/results/decoders.md``), one per memory
  (:func:`torch_viterbi`).
- ``decoder="numpy"``: a float64 numpy Viterbi over all frames at once (:meth:`ConvCode.viterbi`),
  the reference the tests compare with.
- ``decoder="commpy"``: commpy's ``viterbi_decode(..., decoding_type="soft")`` frame by frame (slow,
  pure Python; a sliding traceback of ``5 * memory`` steps, so not always the terminated ML path). Its
  soft mode takes ``log P(1)/P(0)`` like us (its branch metric is ``log(1 + e^r) - r c``), the
  opposite of commpy's LDPC decoder; the tests pin both.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from commsim.fec.base import CRC, ChannelCode, check_info, check_llr, register_channel_code
from commsim.fec.decoders import ViterbiDecoder

GENERATORS = {2: (0o7, 0o5), 6: (0o133, 0o171)}
"""Rate-1/2 generators by encoder memory (constraint length K = memory + 1), commpy notation."""

PUNCTURE = {"1/2": (1, 1), "2/3": (1, 1, 1, 0), "3/4": (1, 1, 0, 1, 1, 0)}
"""Kept (1) / punctured (0) positions of the mother stream ``x1 y1 x2 y2 ...``, repeated cyclically
(of the patterns of each period, the ones with the lowest simulated BSC frame error rate)."""


def trellis(memory: int):
    """commpy's rate-1/2 feedforward trellis with the generators of :data:`GENERATORS`."""
    from commpy.channelcoding.convcode import Trellis

    if memory not in GENERATORS:
        raise ValueError(f"memory must be one of {sorted(GENERATORS)}, got {memory}")
    return Trellis(np.array([memory]), np.array([GENERATORS[memory]]))


@lru_cache(maxsize=None)
def torch_viterbi(memory: int):
    """The torch :class:`~commsim.fec.decoders.ViterbiDecoder` of :func:`trellis` ``(memory)``
    (terminated), built once per memory."""
    return ViterbiDecoder(trellis(memory), terminated=True)


DECODERS = ("torch", "numpy", "commpy")


class ConvCode(ChannelCode):
    """Terminated rate-1/2 convolutional code carrying ``k`` information bits (see the module doc).

    ``puncture``: ``"1/2"``, ``"2/3"`` or ``"3/4"``; ``repeat``: copies of the punctured codeword;
    ``crc_bits``: 0 (``ok`` always True), 8, 16, 24 or 32; ``decoder``: ``"torch"`` (default),
    ``"numpy"`` or ``"commpy"`` (see the module doc).
    """

    def __init__(self, k: int, memory: int = 6, puncture: str = "1/2", repeat: int = 1, crc_bits: int = 0,
                 decoder: str = "torch"):
        if k < 1 or repeat < 1:
            raise ValueError(f"need k >= 1 and repeat >= 1, got k={k}, repeat={repeat}")
        super().__init__()
        if puncture not in PUNCTURE:
            raise ValueError(f"puncture must be one of {sorted(PUNCTURE)}, got {puncture!r}")
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        self.k, self.memory, self.puncture, self.repeat = int(k), int(memory), puncture, int(repeat)
        self.crc, self.decoder = CRC(crc_bits), decoder
        self.trellis = trellis(memory)
        self.payload = self.k + self.crc.bits            # u
        self.steps = self.payload + self.memory          # trellis steps, tail included
        self.keep = np.resize(np.array(PUNCTURE[puncture], bool), 2 * self.steps)
        self.punctured_length = int(self.keep.sum())     # p
        self.register_buffer("keep_mask", torch.from_numpy(self.keep), persistent=False)
        self.n = self.repeat * self.punctured_length
        self.tail_bits = self.memory
        crc = f"+crc{self.crc.bits}" if self.crc.bits else ""
        self.name = f"conv{memory + 1}({self.n},{self.k}){crc}"
        # tables: next state and the 2 output bits of (state, input); predecessors of each state
        self.next_state = self.trellis.next_state_table
        out = self.trellis.output_table
        self.out_bits = np.stack([(out >> 1) & 1, out & 1], axis=-1).astype(np.uint8)  # [S, 2, 2], MSB first
        states = np.arange(self.trellis.number_states)
        prev = [np.argwhere(self.next_state == s) for s in states]
        if any(len(p) != 2 for p in prev):
            raise ValueError("expected a rate-1/2 trellis with two branches into every state")
        self.pred_state = np.array([p[:, 0] for p in prev])  # [S, 2]
        self.pred_input = np.array([p[:, 1] for p in prev])  # [S, 2]

    @staticmethod
    def length(k: int, memory: int, puncture: str, repeat: int, crc_bits: int) -> int:
        """Channel bits ``n`` of the code with these settings."""
        steps = k + crc_bits + memory
        return repeat * int(np.resize(np.array(PUNCTURE[puncture], bool), 2 * steps).sum())

    def mother_encode(self, payload: np.ndarray) -> np.ndarray:
        """``payload [F, u]`` -> terminated rate-1/2 stream ``[F, 2 (u + memory)]``."""
        frames = payload.shape[0]
        inputs = np.concatenate([payload, np.zeros((frames, self.memory), np.uint8)], axis=1).astype(np.int64)
        state = np.zeros(frames, np.int64)
        stream = np.empty((frames, self.steps, 2), np.uint8)
        for t in range(self.steps):
            stream[:, t] = self.out_bits[state, inputs[:, t]]
            state = self.next_state[state, inputs[:, t]]
        return stream.reshape(frames, -1)

    def encode(self, info: np.ndarray) -> np.ndarray:
        info = check_info(info, self.k)
        stream = self.mother_encode(self.crc.attach(info))
        return np.tile(stream[:, self.keep], (1, self.repeat))

    def mother_llr(self, llr: np.ndarray) -> np.ndarray:
        """Channel ``llr [F, n]`` -> LLRs of the mother stream ``[F, 2 steps]`` (copies summed,
        punctured positions 0)."""
        combined = llr.reshape(llr.shape[0], self.repeat, self.punctured_length).sum(axis=1)
        mother = np.zeros((llr.shape[0], 2 * self.steps))
        mother[:, self.keep] = combined
        return mother

    def viterbi(self, mother: np.ndarray) -> np.ndarray:
        """Reference (numpy, float64) maximum-likelihood terminated path for ``mother [F, 2 steps]``
        -> inputs ``[F, steps]`` (frames in chunks that keep the survivor memory near 32 MB)."""
        chunk = max(1, 2**25 // (self.steps * self.trellis.number_states))
        if mother.shape[0] > chunk:
            return np.concatenate([self.viterbi(mother[i: i + chunk]) for i in range(0, mother.shape[0], chunk)])
        frames, states = mother.shape[0], self.trellis.number_states
        branch_bits = self.out_bits.reshape(states * 2, 2).T.astype(np.float64)  # [2, S*2]
        into = self.pred_state * 2 + self.pred_input                              # [S, 2]
        metric = np.full((frames, states), -np.inf)
        metric[:, 0] = 0.0
        choice = np.empty((self.steps, frames, states), np.uint8)
        for t in range(self.steps):
            branch = mother[:, 2 * t: 2 * t + 2] @ branch_bits                    # [F, S*2]
            candidates = metric[:, self.pred_state] + branch[:, into]              # [F, S, 2]
            choice[t] = candidates.argmax(axis=2)
            metric = candidates.max(axis=2)
        inputs = np.empty((frames, self.steps), np.uint8)
        state, rows = np.zeros(frames, np.int64), np.arange(frames)
        for t in range(self.steps - 1, -1, -1):
            j = choice[t, rows, state]
            inputs[:, t] = self.pred_input[state, j]
            state = self.pred_state[state, j]
        return inputs

    def commpy_viterbi(self, mother: np.ndarray) -> np.ndarray:
        from commpy.channelcoding.convcode import viterbi_decode

        return np.stack([viterbi_decode(row, self.trellis, decoding_type="soft") for row in mother]).astype(np.uint8)

    def decode(self, llr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mother = self.mother_llr(check_llr(llr, self.n))
        if self.decoder == "torch":
            payload = torch_viterbi(self.memory).decode(mother)  # the tail is dropped already
        else:
            inputs = self.viterbi(mother) if self.decoder == "numpy" else self.commpy_viterbi(mother)
            payload = inputs[:, : self.payload]
        return self.crc.split(payload)

    def decode_tensor(self, llr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.decoder != "torch":
            return super().decode_tensor(llr)
        if llr.dim() != 2 or llr.shape[1] != self.n:
            raise ValueError(f"llr must have shape [F, {self.n}], got {list(llr.shape)}")
        combined = llr.double().reshape(llr.shape[0], self.repeat, self.punctured_length).sum(dim=1)
        mother = torch.zeros(llr.shape[0], 2 * self.steps, dtype=torch.float64, device=llr.device)
        mother[:, self.keep_mask.to(llr.device)] = combined
        return self.crc.split_tensor(torch_viterbi(self.memory)(mother.float()))  # the tail is dropped already


CONV_CONFIGS = [("3/4", 1), ("2/3", 1), ("1/2", 1)] + [("1/2", r) for r in (2, 3, 4, 6, 8, 12, 16, 24)]
"""(puncturing, repetition) pairs offered: rates 3/4, 2/3, 1/2, then 1/4 ... 1/48."""


@register_channel_code("conv")
class ConvFamily:
    """Terminated K=7 (133, 171) convolutional codes, punctured to 2/3, 3/4 or repeated down to 1/48."""

    def __init__(self, memory: int = 6, crc_bits: int = 0, decoder: str = "torch"):
        self.memory, self.crc_bits, self.decoder = memory, crc_bits, decoder

    def largest_k(self, n: int, puncture: str, repeat: int) -> int:
        """The most information bits that fit ``n`` channel bits (0 if none)."""
        rate = {"1/2": 1 / 2, "2/3": 2 / 3, "3/4": 3 / 4}[puncture]
        k = int(n * rate / repeat) + 2
        while k > 0 and ConvCode.length(k, self.memory, puncture, repeat, self.crc_bits) > n:
            k -= 1
        return k

    def codes_for(self, n: int) -> list[ConvCode]:
        codes = []
        for puncture, repeat in CONV_CONFIGS:
            k = self.largest_k(n, puncture, repeat)
            if k >= 1:
                codes.append(ConvCode(k, self.memory, puncture, repeat, self.crc_bits, self.decoder))
        return codes

    def build(self, n: int, k: int) -> ConvCode:
        """The code of ``k`` bits whose (puncturing, repetition) gives exactly ``n`` channel bits."""
        lengths = {}
        for puncture, repeat in CONV_CONFIGS:
            lengths[(puncture, repeat)] = ConvCode.length(k, self.memory, puncture, repeat, self.crc_bits)
            if lengths[(puncture, repeat)] == n:
                return ConvCode(k, self.memory, puncture, repeat, self.crc_bits, self.decoder)
        options = ", ".join(sorted({str(v) for v in lengths.values()}, key=int))
        raise ValueError(f"a terminated conv code of {k} bits (memory {self.memory}, CRC {self.crc_bits}) is {options} "
                         f"bits long, not {n}")
