"""LDPC codes: commpy's shipped designs, seeded regular constructions, systematic encoding and BP.

Parity-check matrices are ``scipy.sparse`` CSR ``H [m, n]`` of 0/1 (uint8).

- :func:`load_design` reads scikit-commpy's design files (``wimax/1440.720``, ``wimax/960.720.a``,
  ``gallager/96.3.963``, ``gallager/96.33.964``). commpy 0.8.0's own reader fails on numpy >= 2.4, so
  the text format is parsed here (it lists every check node's variable nodes, 1-based).
- :func:`regular_ldpc` builds Gallager's layered ensemble: variable degree ``dv`` (3), check degrees as
  even as the rate allows. Deterministic from ``(n, m, dv, seed)``.
- Low rates: regular LDPC ensembles below rate ~1/4 are poor, so :class:`LDPCCode` takes
  ``repeat = r``: a base LDPC codeword of length ``n / r`` is sent ``r`` times (the copies one after
  another, which spreads them apart for bursty channels). The receiver sums the copies' LLRs, which is
  exact belief propagation on the repetition nodes, and decodes the base code. Rate ``R_base / r``.
  This is a sound, simple choice, not a capacity-approaching one.
- Encoding: Gaussian elimination over GF(2) (:func:`gf2_systematic`) turns ``H`` into reduced row
  echelon form; the non-pivot columns carry the information bits, the pivot columns are parity bits
  computed from them. ``k = n - rank(H)`` (Gallager's layered H has rank ``m - dv + 1``, so ``k`` is
  a little above ``n - m``).
- Decoding: sum-product belief propagation, at most ``max_iters`` iterations, stopping when all
  parity checks hold. ``decoder="torch"`` (default) is the batched torch decoder
  :class:`~commsim.fec.decoders.BPDecoder` with the layered schedule (as good or better than
  flooding in about half the iterations, and the fastest: ~60-75x commpy on WiMAX (1440, 720), see
  ``benchmarks/results/decoders.md``), one per parity-check matrix, built on first use
  (:func:`torch_bp_decoder`). Two references stay selectable: ``decoder="numpy"`` runs
  :func:`bp_decode`, a short float64 flooding decoder batched over frames, and ``decoder="commpy"``
  runs commpy's ``ldpc_bp_decode`` (flooding, float64; it wants ``log P(0)/P(1)``, the negative of
  our LLRs, and breaks on erasures: an LLR of exactly 0 turns into NaN messages and an all-zero
  "codeword", which is why the numpy reference is kept). The tests check that all three agree.
  Any callable ``llr [F, n] -> (bits [F, n] uint8, converged [F] bool)`` in our LLR convention
  also works.
"""
from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from functools import lru_cache
from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch

from commsim.fec.base import ChannelCode, check_info, check_llr, register_channel_code
from commsim.fec.decoders import BPDecoder

Decoder = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

MAX_LENGTH = 16384
"""Longest LDPC code built: :func:`gf2_systematic` eliminates a dense ``H`` of up to ``3n/4 x n`` bits,
about 0.4 GB and a minute at this length (the memory grows as ``n^2``, the time faster)."""
MAX_LENGTH_REASON = (f"an LDPC code of n bits is built by Gaussian elimination of a dense (3n/4) x n bit matrix, "
                     f"about 0.4 GB and a minute at n = {MAX_LENGTH:,}, growing as n^2")

MESSAGE_LIMIT = 50.0
"""Clip of BP messages (LLR magnitude); beyond it tanh is 1 to double precision."""


# Parity-check matrices ---------------------------------------------------------------------------

def design_path(name: str) -> str:
    """Path of a commpy design file, e.g. ``design_path("wimax/1440.720")``."""
    import commpy

    root = os.path.join(os.path.dirname(commpy.__file__), "channelcoding", "designs", "ldpc")
    return os.path.join(root, name if name.endswith(".txt") else name + ".txt")


def load_design(name_or_path: str) -> sp.csr_matrix:
    """Parity-check matrix ``H [m, n]`` from a commpy design file (a name as in :func:`design_path`
    or a path). The format: ``n m``, max degrees, variable degrees, check degrees, then one line of
    (1-based) check indices per variable node and one of variable indices per check node."""
    path = name_or_path if os.path.exists(name_or_path) else design_path(name_or_path)
    with open(path) as f:
        lines = [line.split() for line in f.read().splitlines()]
    n, m = int(lines[0][0]), int(lines[0][1])
    var_deg, chk_deg = np.array(lines[2], int), np.array(lines[3], int)
    if var_deg.size != n or chk_deg.size != m:
        raise ValueError(f"{path}: degree lists do not match n={n}, m={m}")
    rows, cols = [], []
    for j in range(m):
        vars_j = np.array(lines[4 + n + j], int) - 1
        if vars_j.size != chk_deg[j]:
            raise ValueError(f"{path}: check {j} lists {vars_j.size} variables, degree says {chk_deg[j]}")
        rows.append(np.full(vars_j.size, j))
        cols.append(vars_j)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_matrix((np.ones(rows.size, np.uint8), (rows, cols)), shape=(m, n))


@lru_cache(maxsize=128)
def regular_ldpc(n: int, checks: int, dv: int = 3, seed: int = 0) -> sp.csr_matrix:
    """Gallager's layered construction of ``H [checks, n]``: ``dv`` layers, each a random permutation of
    the ``n`` columns cut into (about) ``checks / dv`` consecutive rows, so every column has degree ``dv``,
    rows have degree ``floor`` or ``ceil`` of ``n dv / checks``, and no column meets a row twice. Of a few
    draws per layer the one closing the fewest 4-cycles with the layers before is kept."""
    if not 0 < checks < n or dv < 2 or checks < dv:
        raise ValueError(f"need 0 < checks < n and dv <= checks, dv >= 2; got n={n}, checks={checks}, dv={dv}")
    if n > MAX_LENGTH:
        raise ValueError(f"LDPC codes are at most {MAX_LENGTH:,} bits long, got n = {n:,}: {MAX_LENGTH_REASON}")
    rng = np.random.default_rng([seed, n, checks, dv])
    layer_rows = np.diff(np.linspace(0, checks, dv + 1).round().astype(int))
    H = sp.csr_matrix((checks, n), dtype=np.int32)
    start = 0
    for rows in layer_rows:
        # bounds of the rows' column chunks, as even as possible
        cuts = np.linspace(0, n, rows + 1).round().astype(int)
        owner = np.repeat(np.arange(rows), np.diff(cuts)) + start
        before = H.T @ H  # pairs of columns that already share a row
        best, best_cycles = None, None
        for _ in range(1 if start == 0 else 8):
            layer = sp.csr_matrix((np.ones(n, np.int32), (owner, rng.permutation(n))), shape=(checks, n))
            both = (layer.T @ layer).multiply(before).tocoo()  # ... and share one in this layer too
            cycles = int(np.sum((both.data > 0) & (both.row != both.col)))
            if best is None or cycles < best_cycles:
                best, best_cycles = layer, cycles
        H = H + best
        start += rows
    return H.astype(np.uint8).tocsr()


def gf2_systematic(H: sp.spmatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian elimination of ``H [m, n]`` over GF(2) (rows bit-packed into uint64 words).

    Returns ``(info_cols [k], parity_cols [rank], A [rank, k] uint8)``: a word ``c`` is a codeword iff
    ``c[parity_cols] = A @ c[info_cols] mod 2``; ``k = n - rank(H)``.
    """
    m, n = H.shape
    dense = np.asarray(sp.csr_matrix(H).toarray(), dtype=bool)
    words = -(-n // 64)
    packed = np.zeros((m, words * 8), np.uint8)
    packed[:, : -(-n // 8)] = np.packbits(dense, axis=1, bitorder="little")
    rows = packed.view(np.uint64).copy()
    pivots, r = [], 0
    for col in range(n):
        if r == m:
            break
        word, shift = divmod(col, 64)
        has = ((rows[:, word] >> np.uint64(shift)) & np.uint64(1)).astype(bool)
        candidates = np.flatnonzero(has[r:])
        if candidates.size == 0:
            continue
        p = r + candidates[0]
        if p != r:
            rows[[r, p]] = rows[[p, r]]
            has[[r, p]] = has[[p, r]]
        has[r] = False
        rows[has] ^= rows[r]  # clear the column above and below: reduced row echelon form
        pivots.append(col)
        r += 1
    reduced = np.unpackbits(rows[:r].view(np.uint8), axis=1, bitorder="little")[:, :n]
    parity_cols = np.array(pivots, dtype=np.int64)
    info_cols = np.setdiff1d(np.arange(n), parity_cols)
    return info_cols, parity_cols, reduced[:, info_cols].astype(np.uint8)


def syndrome_ok(H: sp.csr_matrix, words: np.ndarray) -> np.ndarray:
    """``[F]`` bool: every parity check of ``H`` holds for each row of ``words [F, n]``."""
    return ~((H @ words.T.astype(np.int64)) % 2).any(axis=0)


# Decoders ----------------------------------------------------------------------------------------

def bp_decode(H: sp.csr_matrix, llr: np.ndarray, max_iters: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Reference sum-product BP (flooding, float64) for many frames at once; frames stop when their
    checks all hold. The default decoder is the faster torch one (:func:`torch_bp_decoder`).

    ``llr [F, n]`` in our convention (log P1/P0) -> ``(bits [F, n] uint8, converged [F] bool)``.
    Check update in the "phi" form: ``|out| = phi(sum phi|in|)`` with ``phi(x) = -log tanh(x/2)``,
    the sign being the product of the other signs (in the log P0/P1 convention used inside).
    Frames go in chunks of about 2 million messages.
    """
    H = sp.csr_matrix(H)
    chunk = max(1, 2_000_000 // max(H.nnz, 1))
    if llr.shape[0] > chunk:
        parts = [_bp_chunk(H, llr[i: i + chunk], max_iters) for i in range(0, llr.shape[0], chunk)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return _bp_chunk(H, llr, max_iters)


def _bp_chunk(H: sp.csr_matrix, llr: np.ndarray, max_iters: int) -> tuple[np.ndarray, np.ndarray]:
    """One chunk of frames of :func:`bp_decode`."""
    coo = H.tocoo()
    order = np.lexsort((coo.col, coo.row))
    edge_chk, edge_var = coo.row[order], coo.col[order]
    m, n = H.shape
    to_chk = sp.csr_matrix((np.ones(edge_chk.size), (np.arange(edge_chk.size), edge_chk)), shape=(edge_chk.size, m))
    to_var = sp.csr_matrix((np.ones(edge_var.size), (np.arange(edge_var.size), edge_var)), shape=(edge_var.size, n))

    channel = np.clip(-np.asarray(llr, np.float64), -MESSAGE_LIMIT, MESSAGE_LIMIT)  # log P0/P1 inside
    bits = (channel < 0).astype(np.uint8)
    active = np.flatnonzero(~syndrome_ok(H, bits))
    v2c = channel[active][:, edge_var]
    for _ in range(max_iters):
        if active.size == 0:
            break
        mag = np.clip(np.abs(v2c), 1e-12, MESSAGE_LIMIT)
        phi = -np.log(np.tanh(mag / 2))
        negative = (v2c < 0).astype(np.float64)
        phi_sum = (to_chk.T @ phi.T).T[:, edge_chk]
        neg_count = (to_chk.T @ negative.T).T[:, edge_chk]
        out_mag = np.clip(phi_sum - phi, 1e-12, MESSAGE_LIMIT)
        sign = 1.0 - 2.0 * ((neg_count - negative) % 2)
        c2v = sign * np.clip(-np.log(np.tanh(out_mag / 2)), 0, MESSAGE_LIMIT)
        total = channel[active] + (to_var.T @ c2v.T).T
        bits[active] = total < 0
        done = syndrome_ok(H, bits[active])
        v2c = np.clip(total[:, edge_var] - c2v, -MESSAGE_LIMIT, MESSAGE_LIMIT)[~done]
        active = active[~done]
    converged = np.ones(llr.shape[0], bool)
    converged[active] = False
    return bits, converged


def commpy_bp_decode(H: sp.csr_matrix, llr: np.ndarray, max_iters: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """commpy's ``ldpc_bp_decode`` (SPA) on ``llr [F, n]`` in our convention (log P1/P0).

    commpy takes ``log P0/P1`` and decides ``1`` where its input has the sign bit set, so the LLRs are
    passed as ``0.0 - llr`` (which keeps erasures at +0.0 rather than -0.0). Do not use it with
    erasures: commpy's product of tanh's via logarithms turns a zero LLR into NaN messages.
    """
    from commpy.channelcoding.ldpc import ldpc_bp_decode

    H = sp.csr_matrix(H)
    params = {"n_vnodes": H.shape[1], "n_cnodes": H.shape[0], "parity_check_matrix": H.tocsc().astype(np.int8)}
    commpy_llr = (0.0 - np.asarray(llr, np.float64)).ravel()  # frames one after another
    with np.errstate(divide="ignore", invalid="ignore"):
        words, _ = ldpc_bp_decode(commpy_llr, params, "SPA", max_iters)
    bits = np.asarray(words).reshape(H.shape[1], -1).T.astype(np.uint8)
    return bits, syndrome_ok(H, bits)


TORCH_SCHEDULE = "layered"
"""Schedule of the default (torch) decoder; ``"flooding"`` is commpy's and the numpy reference's."""

_TORCH_DECODERS: OrderedDict = OrderedDict()
_TORCH_CACHE_SIZE = 64


def torch_bp_decoder(H: sp.spmatrix, max_iters: int = 50, schedule: str = TORCH_SCHEDULE):
    """The torch sum-product decoder (:class:`~commsim.fec.decoders.BPDecoder`) of ``H``, built
    once per (matrix, ``max_iters``, ``schedule``) and kept in a small LRU cache: codes with the same
    ``H`` (e.g. the candidates that several separated codecs build) share it. Its ``.decode(llr)``
    is the numpy-in/numpy-out :data:`Decoder`."""
    H = sp.csr_matrix(H)
    if not H.has_sorted_indices:
        H = H.sorted_indices()
    digest = hashlib.sha1(H.indptr.tobytes() + H.indices.tobytes() + H.data.tobytes()).hexdigest()
    key = (H.shape, digest, int(max_iters), schedule)
    if key in _TORCH_DECODERS:
        _TORCH_DECODERS.move_to_end(key)
    else:
        _TORCH_DECODERS[key] = BPDecoder(H, "sum-product", max_iter=int(max_iters), schedule=schedule)
        if len(_TORCH_DECODERS) > _TORCH_CACHE_SIZE:
            _TORCH_DECODERS.popitem(last=False)
    return _TORCH_DECODERS[key]


def torch_bp_decode(H: sp.csr_matrix, llr: np.ndarray, max_iters: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """:func:`torch_bp_decoder` of ``H`` on ``llr [F, n]`` (our convention) -> ``(bits, converged)``."""
    return torch_bp_decoder(H, max_iters).decode(llr)


DECODERS = {"torch": torch_bp_decode, "numpy": bp_decode, "commpy": commpy_bp_decode}
"""Decoders by name, each ``fn(H, llr, max_iters) -> (bits [F, n] uint8, converged [F] bool)``."""


# Codes -------------------------------------------------------------------------------------------

class LDPCCode(ChannelCode):
    """A binary LDPC code given by ``H [m, n_base]``, optionally with each codeword sent ``repeat``
    times (``n = repeat * n_base``).

    ``decoder``: ``"torch"`` (default: :func:`torch_bp_decoder`, built on the first ``decode``),
    the references ``"numpy"`` (:func:`bp_decode`) and ``"commpy"``, or a callable ``llr [F, n_base] ->
    (bits [F, n_base] uint8, converged [F] bool)`` taking our LLR convention; it sees the
    repeat-combined LLRs. ``ok`` is ``converged``: all parity checks hold.
    """

    def __init__(self, H: sp.spmatrix, repeat: int = 1, decoder: str | Decoder | None = None,
                 max_iters: int = 50, name: str | None = None):
        super().__init__()
        self.H = sp.csr_matrix(H, dtype=np.uint8)
        self.repeat = int(repeat)
        self.max_iters = int(max_iters)
        self.info_cols, self.parity_cols, self.A = gf2_systematic(self.H)
        self.n_base = self.H.shape[1]
        self.k, self.n = int(self.info_cols.size), self.repeat * self.n_base
        if self.k == 0:
            raise ValueError("H has full column rank: the code has no information bits")
        suffix = f"x{self.repeat}" if self.repeat > 1 else ""
        self.name = name or f"ldpc({self.n_base},{self.k}){suffix}"
        decoder = "torch" if decoder is None else decoder
        self.torch_decoder = decoder == "torch"
        if isinstance(decoder, str):
            if decoder not in DECODERS:
                raise ValueError(f"decoder must be a callable or one of {sorted(DECODERS)}; got {decoder!r}")
            fn = DECODERS[decoder]
            self.decoder = lambda llr: fn(self.H, llr, self.max_iters)
        else:
            self.decoder = decoder
        self._A_t = self.A.T.astype(np.float32)
        self.register_buffer("info_index", torch.from_numpy(self.info_cols).long(), persistent=False)

    def encode_base(self, info: np.ndarray) -> np.ndarray:
        """``info [F, k]`` -> base codewords ``[F, n_base]`` (information at ``info_cols``)."""
        info = check_info(info, self.k)
        word = np.zeros((info.shape[0], self.n_base), np.uint8)
        word[:, self.info_cols] = info
        word[:, self.parity_cols] = (info.astype(np.float32) @ self._A_t % 2).astype(np.uint8)
        return word

    def encode(self, info: np.ndarray) -> np.ndarray:
        return np.tile(self.encode_base(info), (1, self.repeat))

    def decode(self, llr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        llr = check_llr(llr, self.n)
        combined = llr.reshape(llr.shape[0], self.repeat, self.n_base).sum(axis=1)
        bits, converged = self.decoder(combined)
        return np.asarray(bits, np.uint8)[:, self.info_cols], np.asarray(converged, bool)

    def decode_tensor(self, llr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.torch_decoder:
            return super().decode_tensor(llr)
        return self.decode_iterations(llr)[:2]

    def decode_iterations(self, llr: torch.Tensor):
        if not self.torch_decoder:
            return super().decode_iterations(llr)
        if llr.dim() != 2 or llr.shape[1] != self.n:
            raise ValueError(f"llr must have shape [F, {self.n}], got {list(llr.shape)}")
        combined = llr.double().reshape(llr.shape[0], self.repeat, self.n_base).sum(dim=1).float()
        bits, converged, iterations = torch_bp_decoder(self.H, self.max_iters)(combined)
        return bits[:, self.info_index.to(llr.device)], converged, iterations


BASE_RATES = (3 / 4, 2 / 3, 1 / 2, 1 / 3, 1 / 4)
"""Rates of the plain regular (dv = 3) codes that :class:`LDPCFamily` offers."""
REPEATS = (2, 3, 4, 6, 8, 12)
"""Repetitions of the rate-1/4 base code for the low rates (1/8 ... 1/48)."""
MIN_BASE_LENGTH = 48


@register_channel_code("ldpc")
class LDPCFamily:
    """Regular (dv = 3) LDPC codes, rates 3/4 ... 1/4, and rate-1/4 codes repeated 2..12 times."""

    max_length = MAX_LENGTH
    max_length_reason = MAX_LENGTH_REASON

    def __init__(self, seed: int = 0, dv: int = 3, decoder: str | Callable[[sp.csr_matrix], Decoder] | None = None,
                 max_iters: int = 50):
        """``decoder``: ``None`` / ``"torch"`` (default), ``"numpy"`` / ``"commpy"`` (references), or a
        factory ``make_decoder(H) -> decoder`` (the decoder as in :class:`LDPCCode`), e.g.
        ``lambda H: BPDecoder(H, "min-sum", normalization=0.8).decode``."""
        self.seed, self.dv, self.decoder, self.max_iters = seed, dv, decoder, max_iters
        self._codes: dict[tuple, LDPCCode] = {}

    def code(self, n: int, rate: float, repeat: int = 1) -> LDPCCode:
        """The code of ``n`` channel bits (``n_base = n // repeat``) with base design rate ``rate``."""
        n_base = n // repeat
        key = (n_base, rate, repeat)
        if key not in self._codes:
            H = regular_ldpc(n_base, round(n_base * (1 - rate)), self.dv, self.seed)
            decoder = self.decoder(H) if callable(self.decoder) else self.decoder
            self._codes[key] = LDPCCode(H, repeat=repeat, decoder=decoder, max_iters=self.max_iters)
        return self._codes[key]

    def codes_for(self, n: int) -> list[LDPCCode]:
        configs = [(rate, 1) for rate in BASE_RATES] + [(BASE_RATES[-1], r) for r in REPEATS]
        return [self.code(n, rate, r) for rate, r in configs if n // r >= MIN_BASE_LENGTH]

    def build(self, n: int, k: int) -> LDPCCode:
        """A regular (dv = 3) code of exactly ``n`` bits and ``k`` information bits (Gallager's layered
        ``H`` has rank ``checks - dv + 1``, so ``checks = n - k + dv - 1``; the neighbours are tried if
        a draw's rank differs)."""
        if n > MAX_LENGTH:
            raise ValueError(f"LDPC codes are at most {MAX_LENGTH:,} bits long, got n = {n:,}: {MAX_LENGTH_REASON}")
        first = n - k + self.dv - 1
        for checks in (first, first + 1, first - 1, first + 2, first - 2):
            if not self.dv <= checks < n:
                continue
            H = regular_ldpc(n, checks, self.dv, self.seed)
            decoder = self.decoder(H) if callable(self.decoder) else self.decoder
            code = LDPCCode(H, decoder=decoder, max_iters=self.max_iters)
            if code.k == k:
                return code
        raise ValueError(f"no regular (dv = {self.dv}) LDPC code of n = {n} with exactly k = {k} information bits; "
                         f"choose k between 1 and {n - 2 * self.dv}")
