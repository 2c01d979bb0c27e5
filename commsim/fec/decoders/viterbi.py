"""Batched Viterbi decoding of convolutional codes in torch.

:class:`ViterbiDecoder` takes a commpy ``Trellis`` (its ``next_state_table`` and ``output_table``)
and decodes a batch of frames at once: one add-compare-select over all frames and all states per
trellis step, survivors kept as a ``[T, S, F]`` tensor, and a traceback of all frames together.
Input LLRs follow :mod:`commsim.channels.base` (``llr = log P(b=1|r)/P(b=0|r)``)::

    trellis = Trellis(np.array([6]), np.array([[0o133, 0o171]]))     # K = 7, rate 1/2
    dec = ViterbiDecoder(trellis)                                    # terminated with K-1 zeros
    info = dec(llr)                                                  # [F, n_coded] -> [F, k_info]
    info = dec.decode(llr_numpy)                                     # numpy in, numpy out

Metric. A path's log-likelihood is, up to a term that is the same for all paths, the correlation
``sum_j c_j * llr_j`` of its code bits ``c_j`` with the LLRs, which is what the decoder maximizes.
Erasures (``llr = 0``, e.g. punctured positions re-inserted as 0) add nothing. With hard input
(``hard_input=True`` or LLRs of ``±1``) the correlation is the number of received bits minus the
Hamming distance, so the decisions are those of minimum-Hamming-distance decoding.

Ties go to the predecessor listed first by ``numpy.where(next_state_table == s)`` (the lower
previous state), as in commpy's ``viterbi_decode``.
"""
from __future__ import annotations

import numpy as np
import torch

from commsim.fec.decoders.tables import DeviceTables

_CPU_CHUNK = 1024
"""Frames decoded together on CPU by default (larger batches gain nothing and need more memory)."""

_RENORM_EVERY = 32
"""Steps between subtractions of the best path metric (keeps float32 metrics small and exact)."""


def _bits_msb_first(values: np.ndarray, width: int) -> np.ndarray:
    """``[..., width]`` binary expansions, most significant bit first (commpy's ``dec2bitarray``)."""
    shifts = np.arange(width - 1, -1, -1)
    return (np.asarray(values)[..., None] >> shifts) & 1


class ViterbiDecoder(DeviceTables):
    """Maximum-likelihood sequence decoder of a convolutional code described by a commpy ``Trellis``.

    Args:
        trellis: a ``commpy.channelcoding.Trellis`` (or any object with ``k``, ``n``,
            ``total_memory``, ``number_states``, ``number_inputs``, ``next_state_table``,
            ``output_table``, ``code_type``) that starts in state 0.
        terminated: the encoder was flushed back to state 0 with ``tail_bits`` zero inputs (commpy's
            ``conv_encode(..., termination="term")`` for a feedforward code): the traceback starts at
            state 0 and the tail is dropped from the output. Otherwise the traceback starts at the
            best final state and every decoded input bit is returned.
        hard_input: decode the signs of the LLRs (``±1``, erasures stay 0) instead of their values.
        chunk_size: frames decoded together (survivors take ``steps * states * chunk`` bytes);
            ``None`` = 1024 on CPU, the whole batch elsewhere. Results do not depend on it.

    Call: ``decoder(llr) -> bits``

    - ``llr``: ``[F, N]`` float tensor, ``N`` a multiple of the code's ``n`` (punctured positions
      given as 0).
    - ``bits``: ``[F, N / n * k - tail_bits]`` uint8 (``tail_bits = 0`` when not terminated).

    No device is fixed at construction: ``.to(device)`` moves the trellis tables, and a call with
    ``llr`` on another device uses a copy of them made for that device.
    """

    def __init__(self, trellis, terminated: bool = True, hard_input: bool = False, chunk_size: int | None = None):
        super().__init__()
        if chunk_size is not None and (int(chunk_size) != chunk_size or chunk_size < 1):
            raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size}")
        self.chunk_size = None if chunk_size is None else int(chunk_size)
        if getattr(trellis, "code_type", "default") == "rsc" and terminated:
            raise ValueError("terminated decoding assumes a feedforward code (zero tail inputs); "
                             "use terminated=False for a recursive code")
        self.k, self.n = int(trellis.k), int(trellis.n)
        self.num_states = int(trellis.number_states)
        self.num_inputs = int(trellis.number_inputs)
        self.total_memory = int(trellis.total_memory)
        self.terminated = bool(terminated)
        self.hard_input = bool(hard_input)
        # commpy's conv_encode appends total_memory + total_memory % k zero inputs.
        self.tail_bits = self.total_memory + self.total_memory % self.k if self.terminated else 0

        next_state = np.asarray(trellis.next_state_table, dtype=np.int64)
        output = np.asarray(trellis.output_table, dtype=np.int64)
        if next_state.shape != (self.num_states, self.num_inputs) or output.shape != next_state.shape:
            raise ValueError("trellis tables must have shape [number_states, number_inputs]")
        preds = [np.argwhere(next_state == s) for s in range(self.num_states)]  # row-major order
        counts = {len(p) for p in preds}
        if len(counts) != 1 or 0 in counts:
            raise ValueError("every trellis state must have the same, nonzero number of predecessors")
        self.num_preds = counts.pop()
        pred = np.stack(preds)  # [S, P, 2] = (previous state, input)
        self.register_buffer("pred_state", torch.from_numpy(pred[..., 0].copy()), persistent=False)
        self.register_buffer("pred_input", torch.from_numpy(pred[..., 1].copy()), persistent=False)
        self.register_buffer("pred_output", torch.from_numpy(output[pred[..., 0], pred[..., 1]]), persistent=False)
        symbols = _bits_msb_first(np.arange(2 ** self.n), self.n).astype(np.float32)  # [2^n, n]
        self.register_buffer("symbol_bits", torch.from_numpy(symbols), persistent=False)
        input_bits = _bits_msb_first(np.arange(self.num_inputs), self.k).astype(np.uint8)  # [2^k, k]
        self.register_buffer("input_bits", torch.from_numpy(input_bits), persistent=False)

    def extra_repr(self) -> str:
        return (f"k={self.k}, n={self.n}, states={self.num_states}, terminated={self.terminated}, "
                f"hard_input={self.hard_input}")


    def output_length(self, coded_length: int) -> int:
        """Number of decoded bits for ``coded_length`` LLRs per frame."""
        return coded_length // self.n * self.k - self.tail_bits

    @torch.no_grad()
    def forward(self, llr: torch.Tensor) -> torch.Tensor:
        if not isinstance(llr, torch.Tensor):
            raise ValueError(f"llr must be a torch.Tensor, got {type(llr).__name__} (use .decode for numpy)")
        if llr.dim() != 2 or llr.shape[1] % self.n:
            raise ValueError(f"llr must have shape [F, N] with N a multiple of {self.n}, got {list(llr.shape)}")
        steps = llr.shape[1] // self.n
        if steps * self.k < self.tail_bits:
            raise ValueError(f"a terminated frame needs at least {self.tail_bits} input bits, got {steps * self.k}")
        if llr.is_floating_point() and bool(torch.isnan(llr).any()):
            raise ValueError("llr must not contain NaN")
        device, frames = llr.device, llr.shape[0]
        if frames == 0 or steps == 0:
            return torch.zeros(frames, max(self.output_length(llr.shape[1]), 0), dtype=torch.uint8, device=device)
        tables = self._tables(device)
        chunk = self.chunk_size or (_CPU_CHUNK if device.type == "cpu" else frames)
        parts = [self._decode_chunk(llr[s:s + chunk], tables) for s in range(0, frames, chunk)]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _decode_chunk(self, llr: torch.Tensor, tables) -> torch.Tensor:
        frames, steps = llr.shape[0], llr.shape[1] // self.n
        dtype = torch.float64 if llr.dtype == torch.float64 else torch.float32
        x = llr.to(dtype)
        if self.hard_input:
            x = torch.sign(x)
        # Correlation of each step's LLRs with every output symbol, frames last: [T, 2^n, F].
        symbol_metric = torch.matmul(x.reshape(frames, steps, self.n), tables["symbol_bits"].to(dtype).t())
        symbol_metric = symbol_metric.permute(1, 2, 0).contiguous()
        survivors, final_metric = self._forward_pass(symbol_metric, tables)
        inputs = self._traceback(survivors, final_metric, tables)  # [T, F]
        bits = tables["input_bits"][inputs.t()].reshape(frames, steps * self.k)
        return bits[:, : steps * self.k - self.tail_bits]

    def _forward_pass(self, symbol_metric: torch.Tensor, tables) -> tuple[torch.Tensor, torch.Tensor]:
        """Add-compare-select over all steps: survivors ``[T, S, F]`` and final metrics ``[S, F]``."""
        steps, _, frames = symbol_metric.shape
        S, P = self.num_states, self.num_preds
        prev = tables["pred_state"].reshape(-1)
        out = tables["pred_output"].reshape(-1)
        metric = torch.full((S, frames), float("-inf"), dtype=symbol_metric.dtype, device=symbol_metric.device)
        metric[0] = 0.0
        survivor_dtype = torch.bool if P == 2 else torch.uint8
        survivors = torch.empty(steps, S, frames, dtype=survivor_dtype, device=symbol_metric.device)
        for t in range(steps):
            candidates = metric.index_select(0, prev).view(S, P, frames)
            candidates += symbol_metric[t].index_select(0, out).view(S, P, frames)
            if P == 2:
                first, second = candidates[:, 0], candidates[:, 1]
                torch.gt(second, first, out=survivors[t])
                metric = torch.maximum(first, second)
            else:
                metric, choice = candidates[:, 0].clone(), torch.zeros(S, frames, dtype=torch.uint8, device=metric.device)
                for p in range(1, P):
                    better = candidates[:, p] > metric
                    metric = torch.where(better, candidates[:, p], metric)
                    choice.masked_fill_(better, p)
                survivors[t] = choice
            if t % _RENORM_EVERY == _RENORM_EVERY - 1:
                metric -= metric.amax(dim=0, keepdim=True)
        return survivors, metric

    def _traceback(self, survivors: torch.Tensor, final_metric: torch.Tensor, tables) -> torch.Tensor:
        steps, _, frames = survivors.shape
        P = self.num_preds
        prev = tables["pred_state"].reshape(-1)
        inp = tables["pred_input"].reshape(-1)
        if self.terminated:
            state = torch.zeros(frames, dtype=torch.long, device=survivors.device)
        else:
            state = final_metric.argmax(dim=0)
        inputs = torch.empty(steps, frames, dtype=torch.long, device=survivors.device)
        for t in range(steps - 1, -1, -1):
            choice = survivors[t].gather(0, state.unsqueeze(0)).squeeze(0).long()
            edge = state * P + choice
            inputs[t] = inp[edge]
            state = prev[edge]
        return inputs

    @torch.no_grad()
    def decode(self, llr, batch_size: int = 4096) -> np.ndarray:
        """Numpy in, numpy out: ``llr [F, N]`` -> decoded bits ``[F, N / n * k - tail_bits]`` uint8.

        Runs on the device of the decoder's buffers, in chunks of ``batch_size`` frames; a single
        frame ``[N]`` gives ``[N / n * k - tail_bits]``.
        """
        array = np.asarray(llr, dtype=np.float32)
        single = array.ndim == 1
        if single:
            array = array[None]
        if array.ndim != 2:
            raise ValueError(f"llr must have shape [F, N], got {list(np.shape(llr))}")
        device = self.pred_state.device
        parts = [self(torch.from_numpy(array[s:s + batch_size]).to(device)).cpu().numpy()
                 for s in range(0, max(array.shape[0], 1), batch_size)]
        bits = np.concatenate(parts) if parts else np.zeros((0, self.output_length(array.shape[1])), np.uint8)
        return bits[0] if single else bits
