"""5G NR LDPC codes (3GPP TS 38.212 Sections 5.2.2, 5.3.2, 5.4.2, 7.2.2), one code block, BP-decoded.

A code of ``k`` information bits sent on ``n = E`` channel bits::

    code = NRLDPCCode(64, 128)                 # base graph 2, Z = 11, rate 1/2
    words = code.encode(info)                  # info [F, 64] uint8 -> [F, 128] uint8
    info_hat, ok = code.decode_tensor(llr)     # llr [F, 128] (log P1/P0) -> [F, 64] uint8, [F] bool
    channel_code_family("nrldpc").codes_for(1000)   # rates 8/9 ... 1/8, each code.n = 1000

The chain, following the standard:

- **CRC** (optional, ``crc_bits`` 0/16/24; 5G uses CRC-16 for payloads up to 3824 bits and CRC-24A
  above): ``B = k + crc_bits`` bits, one code block (``B <= K_cb``: 8448 for BG1, 3840 for BG2; longer
  payloads would need code-block segmentation, which is not implemented: ``ValueError``).
- **Base graph** (Section 7.2.2): BG2 if ``k <= 292``, or ``k <= 3824`` and ``R <= 0.67``, or
  ``R <= 0.25``; else BG1 (``R = k / n``). BG1 is 46 x 68 with 22 information columns, BG2 42 x 52
  with 10; their shift coefficients for the 8 lifting sets are :mod:`commsim.fec.nr_tables`.
- **Lifting** (Section 5.2.2): ``K_b = 22`` (BG1) or 10/9/8/6 for ``B`` above 640/560/192/else
  (BG2); ``Z`` is the smallest lifting size of Table 5.3.2-1 with ``K_b Z >= B``; ``K = 22 Z`` or
  ``10 Z``. Bits ``B .. K-1`` are **filler bits** (known zeros).
- **Parity-check matrix**: each base entry ``V`` becomes the ``Z x Z`` identity cyclically shifted by
  ``V mod Z`` (row ``i`` has its 1 at column ``(i + V) mod Z``); :func:`parity_check_matrix` is the
  lifted ``H [m_b Z, n_b Z]`` as ``scipy.sparse`` CSR.
- **Encoding** (Section 5.3.2): systematic; the 4 ``Z`` core parity bits by the double-diagonal
  structure (the sum of the 4 core rows leaves one circulant on the first parity block, inverted by a
  cyclic shift; then the others one by one), the extension parity bits each from its own row
  (:class:`LiftedEncoder`). The first ``2 Z`` systematic bits are never sent (punctured):
  ``N = 66 Z`` (BG1) or ``50 Z`` (BG2) bits ``d`` go to rate matching.
- **Rate matching** (Section 5.4.2): circular buffer of length ``N_cb = N`` (no limited buffer),
  start ``k0`` of redundancy version ``rv`` (0 by default), bits read in order skipping filler bits
  and wrapping around (repetition) until ``E`` are taken; then the bit interleaver of modulation
  order ``qm`` (1 = none, BPSK).
- **Decoding**: the received LLRs are added into the lifted codeword's positions (repeated bits
  summed), punctured and unsent bits get LLR 0, and sum-product BP runs on ``H`` by the shared torch
  decoder (:func:`commsim.fec.ldpc.torch_bp_decoder`: layered schedule, early stop,
  ``max_iters = 20`` by default). Filler bits are known zeros: their LLR is "certainly 0"
  (``-inf`` in our convention), which is applied exactly by deleting their columns from the decoding
  matrix (a known 0 adds nothing to any check), so BP never touches them. Extension rows whose parity
  block is not transmitted at all are deleted too (each such parity bit is a degree-1 erased variable:
  its check says nothing about the other bits), which makes high-rate codes much cheaper to decode.
  ``ok``: all parity checks hold (and the CRC matches, if any).

Checked (``tests/test_nrldpc.py``) against AFF3CT's published 5G LDPC FER points (BG2, (40, 20) and
(1024, 512), layered SPA 10 iterations and flooding SPA 20 iterations: the same Z, K and N), within
Clopper-Pearson intervals. ``benchmarks/results/nrldpc.md``: with BP-20, (128, 64) reaches BLER 1e-3
at Eb/N0 = 3.83 dB (1.36 dB from the normal approximation) and (1024, 512) at 1.90 dB (0.78 dB).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import scipy.sparse as sp
import torch

from commsim.fec.base import CRC, ChannelCode, check_info, check_llr, register_channel_code
from commsim.fec.decoders import OSDDecoder, generator_matrix
from commsim.fec.ldpc import torch_bp_decoder
from commsim.fec.nr_tables import BG1, BG2

BASE_GRAPH_SHAPE = {1: (46, 68, 22), 2: (42, 52, 10)}
"""``(rows m_b, columns n_b, information columns)`` of base graphs 1 and 2."""

MAX_BLOCK = {1: 8448, 2: 3840}
"""Largest code block ``K_cb`` per base graph (TS 38.212 Section 5.2.2)."""

LIFTING_SET_BASES = (2, 3, 5, 7, 9, 11, 13, 15)
"""TS 38.212 Table 5.3.2-1: lifting set ``i_LS`` holds ``a * 2^j <= 384`` for its ``a``."""

LIFTING_SETS = {i: tuple(a << j for j in range(8) if a << j <= 384) for i, a in enumerate(LIFTING_SET_BASES)}
"""Lifting sizes ``Z`` of each lifting-set index ``i_LS`` (51 sizes in all, 2 ... 384)."""

LIFTING_SIZES = tuple(sorted(z for sizes in LIFTING_SETS.values() for z in sizes))

MIN_RATE = 1 / 16
MAX_RATE = 0.95
"""Code rates ``k / n`` accepted: 0.95 is the highest the standard asks a receiver to decode; below the
mother rate (1/3 BG1, 1/5 BG2) bits are repeated."""

RV_START = {1: (0, 17, 33, 56), 2: (0, 13, 25, 43)}
"""``k0 / Z`` of redundancy versions 0..3 with ``N_cb = N`` (TS 38.212 Table 5.4.2.1-2): the
table's ``floor(c N_cb / (66 Z)) Z`` (BG1) and ``floor(c N_cb / (50 Z)) Z`` (BG2) are ``c Z`` then."""


def lifting_set(z: int) -> int:
    """Lifting-set index ``i_LS`` of lifting size ``z``."""
    for i, sizes in LIFTING_SETS.items():
        if z in sizes:
            return i
    raise ValueError(f"Z = {z} is not a 5G NR lifting size (TS 38.212 Table 5.3.2-1: a * 2^j <= 384, "
                     f"a in {LIFTING_SET_BASES})")


@lru_cache(maxsize=2)
def base_graph(bg: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows [nnz], cols [nnz], V [nnz, 8])`` of base graph ``bg`` (1 or 2): the position of every
    nonzero entry and its shift coefficient for lifting sets 0..7 (Tables 5.3.2-2 / 5.3.2-3)."""
    if bg not in (1, 2):
        raise ValueError(f"base graph must be 1 or 2, got {bg!r}")
    rows, cols, values, row = [], [], [], -1
    for line in (BG1 if bg == 1 else BG2).splitlines():
        fields = line.split(";")
        if fields[0]:
            row = int(fields[0])
        rows.append(row)
        cols.append(int(fields[1]))
        values.append([int(v) for v in fields[2:10]])
    return np.array(rows), np.array(cols), np.array(values)


def select_base_graph(k: int, rate: float) -> int:
    """Base graph for payload ``k`` (bits before the CRC) at code rate ``rate`` (TS 38.212 Section 7.2.2)."""
    if k <= 292 or (k <= 3824 and rate <= 0.67) or rate <= 0.25:
        return 2
    return 1


def information_columns(bg: int, block: int) -> int:
    """``K_b``: base columns that must hold a code block of ``block`` bits (TS 38.212 Section 5.2.2)."""
    if bg == 1:
        return 22
    return 10 if block > 640 else 9 if block > 560 else 8 if block > 192 else 6


def lifting_size(bg: int, block: int) -> int:
    """Smallest ``Z`` of Table 5.3.2-1 with ``K_b Z >= block``."""
    kb = information_columns(bg, block)
    for z in LIFTING_SIZES:
        if kb * z >= block:
            return z
    raise ValueError(f"a code block of {block} bits does not fit base graph {bg} (at most {MAX_BLOCK[bg]} bits)")


@lru_cache(maxsize=64)
def parity_check_matrix(bg: int, z: int) -> sp.csr_matrix:
    """Lifted ``H [m_b Z, n_b Z]`` (uint8 CSR) of base graph ``bg`` with lifting size ``z``."""
    rows, cols, values = base_graph(bg)
    shifts = values[:, lifting_set(z)] % z
    i = np.arange(z)
    r = (rows[:, None] * z + i).ravel()
    c = (cols[:, None] * z + (i + shifts[:, None]) % z).ravel()
    m, n, _ = BASE_GRAPH_SHAPE[bg]
    return sp.csr_matrix((np.ones(r.size, np.uint8), (r, c)), shape=(m * z, n * z))


class LiftedEncoder:
    """Systematic encoder of the lifted code: ``c [F, K]`` (0/1, fillers as 0) -> ``[F, n_b Z]`` full
    codeword ``[c, p_core (4 Z), p_extension]`` with ``H @ codeword = 0``.

    With ``lambda_r`` the syndrome of the information part in base row ``r``: the four core rows sum
    to ``P^b p_0 = sum_r lambda_r`` (the other core parity blocks appear twice with the same shift and
    cancel), so ``p_0`` is ``sum_r lambda_r`` cyclically shifted back by ``b``; rows 0, 1, 2 then give
    ``p_1, p_2, p_3`` (each enters its row unshifted); every extension row ``r >= 4`` gives its own
    parity block (an identity) as the sum of the rest of the row.
    """

    def __init__(self, bg: int, z: int):
        self.bg, self.z = bg, z
        m, n, kb = BASE_GRAPH_SHAPE[bg]
        self.m, self.n, self.kb = m, n, kb
        rows, cols, values = base_graph(bg)
        shifts = values[:, lifting_set(z)] % z
        H = parity_check_matrix(bg, z).astype(np.float32)
        self.H_info = H[:, : kb * z].tocsr()                  # [m Z, K]
        self.H_ext = H[4 * z:, kb * z: (kb + 4) * z].tocsr()  # extension rows on the core parity
        core = {(int(r), int(c)): int(s) for r, c, s in zip(rows, cols, shifts) if r < 4 and kb <= c < kb + 4}
        first = [core[(r, kb)] for r in range(4) if (r, kb) in core]
        odd = [s for s in set(first) if first.count(s) % 2]
        if len(odd) != 1:
            raise ValueError(f"base graph {bg}: the core parity part is not double-diagonal as expected")
        self.first_shift = odd[0]
        self.core = core
        for r in range(3):
            if core.get((r, kb + r + 1)) != 0:
                raise ValueError(f"base graph {bg}: core row {r} does not enter parity block {r + 1} unshifted")

    def encode(self, c: np.ndarray) -> np.ndarray:
        f, z, kb = c.shape[0], self.z, self.kb
        lam = (self.H_info @ c.T.astype(np.float32)).T.astype(np.int64) % 2  # [F, m Z]
        lam = lam.reshape(f, self.m, z)
        p = np.zeros((f, 4, z), np.int64)
        p[:, 0] = np.roll(lam[:, :4].sum(axis=1) % 2, self.first_shift, axis=1)  # inverse of P^b
        for r in range(3):
            acc = lam[:, r].copy()
            for j in range(r + 1):
                s = self.core.get((r, kb + j))
                if s is not None:
                    acc += np.roll(p[:, j], -s, axis=1)  # P^s x = x shifted left by s
            p[:, r + 1] = acc % 2
        core = p.reshape(f, 4 * z)
        ext = (lam[:, 4:].reshape(f, -1) + (self.H_ext @ core.T.astype(np.float32)).T.astype(np.int64)) % 2
        return np.concatenate([c.astype(np.uint8), core.astype(np.uint8), ext.astype(np.uint8)], axis=1)


@lru_cache(maxsize=64)
def lifted_encoder(bg: int, z: int) -> LiftedEncoder:
    """:class:`LiftedEncoder` of ``(bg, z)``, built once."""
    return LiftedEncoder(bg, z)


class NRLDPCCode(ChannelCode):
    """5G NR LDPC code: ``k`` information bits (+ ``crc_bits`` CRC) on ``n = E`` channel bits.

    Args:
        k: information bits (one code block: ``k + crc_bits <= 8448`` for BG1, ``<= 3840`` for BG2).
        n: transmitted bits ``E`` (``MIN_RATE <= k / n <= MAX_RATE``).
        crc_bits: 0 (default) or a CRC of :class:`~commsim.fec.base.CRC` (5G LDPC uses 16 and 24 = CRC-24A).
        base_graph: 1 or 2; ``None`` picks it by TS 38.212 Section 7.2.2 from ``k`` and ``k / n``.
        max_iters: most BP iterations (default 20).
        schedule: ``"layered"`` (default) or ``"flooding"`` BP schedule.
        decoder: ``"bp"`` (default) or ``"osd"``: ordered-statistics decoding of order ``osd_order``
            (:class:`~commsim.fec.decoders.OSDDecoder` of the generator matrix of the transmitted bits;
            ``ok`` is then always True, as OSD always returns a codeword; sensible for short codes).
        rv: redundancy version 0..3 (start of the circular buffer; default 0).
        qm: modulation order of the bit interleaver (1 = no interleaving; ``n`` must be a multiple).

    Attributes: ``bg``, ``z`` (lifting size), ``K`` (lifted information length), ``N`` (circular
    buffer), ``fillers`` (``K - k - crc_bits``), ``H`` (lifted CSR), ``H_dec`` (the decoding matrix,
    see the module doc), ``tx_cols`` (``[n]`` lifted-codeword column sent at each position).

    Shapes: ``encode(info [F, k] uint8) -> [F, n] uint8``; ``decode_tensor(llr [F, n]) ->
    (info [F, k] uint8, ok [F] bool)`` on ``llr``'s device; ``decode`` is the numpy version.
    """

    def __init__(self, k: int, n: int, crc_bits: int = 0, base_graph: int | None = None, max_iters: int = 20,
                 rv: int = 0, qm: int = 1, schedule: str = "layered", decoder: str = "bp", osd_order: int = 2):
        super().__init__()
        k, n = int(k), int(n)
        if k < 1 or n < 1:
            raise ValueError(f"NR LDPC needs k >= 1 and n >= 1, got k={k}, n={n}")
        if not MIN_RATE <= k / n <= MAX_RATE:
            raise ValueError(f"NR LDPC rate k/n = {k}/{n} = {k / n:.3f} is outside [{MIN_RATE:.4f}, {MAX_RATE}]: "
                             f"choose n between {math.ceil(k / MAX_RATE)} and {math.floor(k / MIN_RATE)}")
        if rv not in (0, 1, 2, 3):
            raise ValueError(f"rv must be 0, 1, 2 or 3, got {rv!r}")
        if qm < 1 or n % qm:
            raise ValueError(f"n = {n} must be a multiple of the modulation order qm = {qm}")
        if int(max_iters) < 1:
            raise ValueError(f"max_iters must be >= 1, got {max_iters}")
        if schedule not in ("layered", "flooding"):
            raise ValueError(f"schedule must be 'layered' or 'flooding', got {schedule!r}")
        self.schedule = schedule
        if decoder not in ("bp", "osd"):
            raise ValueError(f"decoder must be 'bp' or 'osd', got {decoder!r}")
        if int(osd_order) != osd_order or not 0 <= osd_order <= k:
            raise ValueError(f"osd_order must be an integer in [0, k = {k}], got {osd_order}")
        self.decoder, self.osd_order = decoder, int(osd_order)
        self.crc = CRC(crc_bits)
        self.k, self.n, self.max_iters, self.rv, self.qm = k, n, int(max_iters), rv, int(qm)
        self.block = k + self.crc.bits
        bg = select_base_graph(k, k / n) if base_graph is None else int(base_graph)
        if bg not in (1, 2):
            raise ValueError(f"base_graph must be 1, 2 or None, got {base_graph!r}")
        if self.block > MAX_BLOCK[bg]:
            raise ValueError(f"NR LDPC: k + crc_bits = {self.block} exceeds the base graph {bg} code block of "
                             f"{MAX_BLOCK[bg]} bits (code-block segmentation is not implemented): use a smaller k"
                             + (" or a rate above 1/4 (base graph 1)" if bg == 2 and base_graph is None else ""))
        self.bg, self.z = bg, lifting_size(bg, self.block)
        m_b, n_b, kb = BASE_GRAPH_SHAPE[bg]
        z = self.z
        self.K, self.N = kb * z, (n_b - 2) * z
        self.fillers = self.K - self.block
        self.H = parity_check_matrix(bg, z)
        self.encoder = lifted_encoder(bg, z)

        # rate matching: circular buffer d = codeword[2Z:], fillers skipped, from k0, wrapping around
        is_filler = np.zeros(self.N, bool)
        is_filler[max(self.block - 2 * z, 0): self.K - 2 * z] = True
        start = RV_START[bg][rv] * z
        order = (np.arange(self.N) + start) % self.N
        valid = order[~is_filler[order]]
        picked = np.resize(valid, n)  # repeats the buffer when n exceeds it
        picked = picked.reshape(self.qm, n // self.qm).T.reshape(-1)  # bit interleaver (TS 38.212 5.4.2.2)
        self.tx_cols = picked + 2 * z
        self.repeated = n > valid.size

        # decoding matrix: drop filler columns and extension blocks that carry no transmitted bit
        sent_blocks = np.zeros(n_b, bool)
        sent_blocks[np.unique(self.tx_cols // z)] = True
        keep_rows = np.concatenate([np.arange(4), 4 + np.flatnonzero(sent_blocks[kb + 4:])])
        keep_blocks = np.concatenate([np.arange(kb + 4), kb + keep_rows[4:]])
        cols = (keep_blocks[:, None] * z + np.arange(z)).ravel()
        cols = cols[(cols < self.block) | (cols >= self.K)]
        rows = (keep_rows[:, None] * z + np.arange(z)).ravel()
        self.H_dec = self.H[rows][:, cols].tocsr()
        self.dec_cols = cols
        self.register_buffer("tx_index", torch.from_numpy(np.searchsorted(cols, self.tx_cols)), persistent=False)
        self.register_buffer("info_index", torch.arange(self.block), persistent=False)  # c[:block] come first
        crc = f"+crc{self.crc.bits}" if self.crc.bits else ""
        osd = f"+osd{self.osd_order}" if decoder == "osd" else ""
        self.name = f"nrldpc({n},{k}){crc}{osd}"
        self._decoder = {}

    def extra_repr(self) -> str:
        return (f"k={self.k}, n={self.n}, bg={self.bg}, Z={self.z}, K={self.K}, fillers={self.fillers}, "
                f"N={self.N}, rv={self.rv}, max_iters={self.max_iters}, schedule={self.schedule}")

    def codewords(self, info: np.ndarray) -> np.ndarray:
        """``info [F, k]`` -> full lifted codewords ``[F, n_b Z]`` (CRC attached, fillers 0)."""
        info = check_info(info, self.k)
        c = np.zeros((info.shape[0], self.K), np.uint8)
        c[:, : self.block] = self.crc.attach(info)
        return self.encoder.encode(c)

    def encode(self, info: np.ndarray) -> np.ndarray:
        return self.codewords(info)[:, self.tx_cols]

    def bp_decoder(self):
        """The shared torch BP decoder of :attr:`H_dec` (built on first use)."""
        if "bp" not in self._decoder:
            self._decoder["bp"] = torch_bp_decoder(self.H_dec, self.max_iters, self.schedule)
        return self._decoder["bp"]

    def decoder_llr(self, llr: torch.Tensor) -> torch.Tensor:
        """``llr [F, n]`` -> ``[F, H_dec columns]``: received LLRs summed into their positions, 0 elsewhere."""
        if llr.dim() != 2 or llr.shape[1] != self.n:
            raise ValueError(f"llr must have shape [F, {self.n}], got {list(llr.shape)}")
        dtype = torch.float64 if llr.dtype == torch.float64 else torch.float32
        full = torch.zeros(llr.shape[0], self.dec_cols.size, dtype=dtype, device=llr.device)
        return full.index_add_(1, self.tx_index.to(llr.device), llr.to(dtype))

    def decode_tensor(self, llr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decode_iterations(llr)[:2]

    def osd_decoder(self) -> OSDDecoder:
        """The OSD decoder of this code's generator matrix (built on first use)."""
        if "osd" not in self._decoder:
            self._decoder["osd"] = OSDDecoder(generator_matrix(self), order=self.osd_order)
        return self._decoder["osd"]

    def decode_iterations(self, llr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """:meth:`decode_tensor` plus the BP iterations run per frame (``[F]`` int32; ``None`` for OSD)."""
        if self.decoder == "osd":
            if llr.dim() != 2 or llr.shape[1] != self.n:
                raise ValueError(f"llr must have shape [F, {self.n}], got {list(llr.shape)}")
            _, info = self.osd_decoder()(llr)
            return info, torch.ones(llr.shape[0], dtype=torch.bool, device=llr.device), None
        bits, converged, iterations = self.bp_decoder()(self.decoder_llr(llr))
        word = bits[:, self.info_index.to(llr.device)]
        info, crc_ok = self.crc.split_tensor(word)
        return info, converged & crc_ok, iterations

    def decode(self, llr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        llr = check_llr(llr, self.n)
        info, ok = self.decode_tensor(torch.from_numpy(llr.astype(np.float32)))
        return info.numpy(), ok.numpy()


FAMILY_RATES = (8 / 9, 5 / 6, 3 / 4, 2 / 3, 1 / 2, 2 / 5, 1 / 3, 1 / 4, 1 / 5, 1 / 6, 1 / 8)
"""Rates that :class:`NRLDPCFamily` offers (1/6 and 1/8 repeat bits when the block uses BG2 with K_b = 10)."""
MIN_LENGTH = 32
MAX_LENGTH = 8 * MAX_BLOCK[2]
MAX_LENGTH_REASON = (f"NR LDPC codes here are one code block (no segmentation): at most {MAX_BLOCK[1]} bits with "
                     f"base graph 1 (rates above 1/4) and {MAX_BLOCK[2]} with base graph 2, so n is at most "
                     f"{MAX_LENGTH} (rate 1/8)")


@register_channel_code("nrldpc")
class NRLDPCFamily:
    """5G NR LDPC codes of ``n`` channel bits at the rates of :data:`FAMILY_RATES` that fit one code
    block, highest rate first; built once per ``(k, n)`` and cached."""

    max_length = MAX_LENGTH
    max_length_reason = MAX_LENGTH_REASON

    def __init__(self, crc_bits: int | str = 0, max_iters: int = 20, rates: tuple = FAMILY_RATES, decoder: str = "bp",
                 osd_order: int = 2):
        """``decoder="osd"`` decodes by OSD of order ``osd_order`` (short codes), see :class:`NRLDPCCode`."""
        if decoder not in ("bp", "osd"):
            raise ValueError(f"decoder must be 'bp' or 'osd', got {decoder!r}")
        self.decoder, self.osd_order = decoder, int(osd_order)
        self.crc_bits, self.crc = crc_bits, CRC(crc_bits)  # validates
        self.max_iters, self.rates = int(max_iters), tuple(sorted(rates, reverse=True))
        self._codes: dict[tuple, NRLDPCCode] = {}

    def code(self, k: int, n: int) -> NRLDPCCode:
        """The (cached) code of ``k`` information bits on ``n`` channel bits."""
        key = (int(k), int(n))
        if key not in self._codes:
            self._codes[key] = NRLDPCCode(k, n, crc_bits=self.crc_bits, max_iters=self.max_iters, decoder=self.decoder,
                                          osd_order=self.osd_order)
        return self._codes[key]

    def build(self, n: int, k: int) -> NRLDPCCode:
        """The code of ``k`` information bits (+ CRC) in exactly ``n`` channel bits (e.g. for ``commsim ber``);
        ``ValueError`` (from :class:`NRLDPCCode`) outside the rates and block sizes it supports."""
        return self.code(k, n)

    def codes_for(self, n: int) -> list[NRLDPCCode]:
        if not MIN_LENGTH <= n <= MAX_LENGTH:
            raise ValueError(f"NR LDPC codes need {MIN_LENGTH} <= n <= {MAX_LENGTH} channel bits, got n = {n}: "
                             + MAX_LENGTH_REASON)
        out, seen = [], set()
        for rate in self.rates:
            k = int(math.floor(rate * n + 1e-9))
            if k in seen or k < 1:
                continue
            bg = select_base_graph(k, k / n)
            if k + self.crc.bits > MAX_BLOCK[bg] or not MIN_RATE <= k / n <= MAX_RATE:
                continue
            seen.add(k)
            out.append(self.code(k, n))
        return out
