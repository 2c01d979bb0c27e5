"""Ordered-statistics decoding (OSD, Fossorier and Lin 1995) of any binary linear code, batched in torch.

Given the code's generator matrix ``G [k, n]`` (``codeword = u G mod 2``)::

    dec = OSDDecoder(G, order=2)
    codeword, info = dec(llr)            # llr [F, n] tensor -> [F, n] uint8, [F, k] uint8
    info, ok = dec.decode(llr_numpy)     # numpy in, numpy out (ok is all True, see below)
    G = generator_matrix(code)           # G of any linear ChannelCode, from code.encode(eye(k))

Per frame (all frames of a chunk at once, vectorised over the batch):

1. Sort the positions by reliability ``|llr|`` (most reliable first) and permute the columns of ``G``.
2. Gaussian elimination over GF(2), column by column in that order, to reduced row echelon form: the
   first ``k`` independent columns are the *most reliable basis* (MRB); row ``i`` of the reduced
   matrix ``R`` is the codeword that is 1 on the ``i``-th basis position and 0 on the others.
3. Order 0: the hard decisions on the basis, re-encoded: ``c0 = b R``.
4. Every test pattern ``e`` of weight ``<= order`` (``sum_{w <= t} C(k, w)`` of them: 2081 for
   ``k = 64``, ``t = 2``) flips those basis bits: ``c_e = c0 + e R``. The candidate with the largest
   correlation ``sum_j llr_j (2 c_j - 1)`` (maximum likelihood among the candidates; the same as the
   smallest sum of ``|llr|`` where the candidate disagrees with the hard decisions) is returned.

The metrics are matrix products, not loops over patterns: with ``a_j = |llr_j| (1 - 2 z_j)``
(``z = c0 + hard``), the correlation of ``c0 + y`` is ``sum_j a_j (1 - 2 y_j)``, so weight 1 needs
``S = R a`` (one batched matmul) and weight 2 ``S_i + S_l - 2 Q_il`` with ``Q = R diag(a) R^T``
(another): order 2 costs about ``k^2 n`` multiply-adds per frame; weight 3 adds ``T_ilm = sum_j a_j
R_ij R_lj R_mj`` (``k^3 n / 2`` per frame). Weights ``>= 4`` enumerate their patterns explicitly
(``y = e R mod 2`` by a matmul per chunk of patterns), so any order up to ``k`` works (order ``k`` is exhaustive maximum-likelihood decoding over all ``2^k`` codewords).

OSD always returns a codeword, so it has no error detection of its own: ``ok`` is all True (a code
that needs detection can check a CRC on the result). Info bits are read from the codeword with a
left inverse of ``G`` (``info = c[:, J] G_J^-1`` for ``k`` independent columns ``J``; for systematic
codes ``J`` are the information positions). Metrics are float32 (float64 if the LLRs are float64).
"""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import torch

from commsim.fec.decoders.tables import DeviceTables, check_llr_tensor

_CPU_CHUNK = 256
"""Frames per elimination batch on CPU (larger batches elsewhere)."""

_PATTERN_ELEMENTS = 1 << 24
"""Bound on ``frames x patterns x n`` of one explicit-pattern product (weights >= 3)."""


def gf2_rank_and_inverse(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(J, inv)`` for a 0/1 matrix ``A [k, n]`` of rank ``k``: ``k`` independent columns ``J``
    (the first ones, left to right) and ``inv [k, k]`` with ``A[:, J] @ inv = I (mod 2)``.
    Raises ``ValueError`` if ``rank(A) < k``."""
    A = np.asarray(A, dtype=np.uint8) & 1
    k, n = A.shape
    basis, M = [], A.copy()
    aug = np.eye(k, dtype=np.uint8)
    row = 0
    for col in range(n):
        if row == k:
            break
        cand = np.flatnonzero(M[row:, col]) + row
        if cand.size == 0:
            continue
        p = cand[0]
        M[[row, p]] = M[[p, row]]
        aug[[row, p]] = aug[[p, row]]
        others = np.flatnonzero(M[:, col])
        others = others[others != row]
        M[others] ^= M[row]
        aug[others] ^= aug[row]
        basis.append(col)
        row += 1
    if row < k:
        raise ValueError(f"the generator matrix has rank {row} < k = {k}: its rows must be independent "
                         "(a code whose encoder maps two messages to the same word cannot be decoded)")
    # the row operations give aug @ A[:, J] = I (the pivot columns of the reduced matrix), so aug is the
    # inverse of A[:, J] and A[:, J] @ aug = I as well
    return np.array(basis), aug


def generator_matrix(code) -> np.ndarray:
    """``G [k, n]`` uint8 of a linear channel code: ``code.encode(eye(k))``.

    Works for any code whose encoder is linear over GF(2) (``encode(u + v) = encode(u) + encode(v)``;
    systematic LDPC, NR LDPC with its CRC and rate matching, polar codes): checked on the all-zero word
    and a few random sums; ``ValueError`` otherwise.
    """
    k = int(code.k)
    G = np.asarray(code.encode(np.eye(k, dtype=np.uint8)), dtype=np.uint8)
    rng = np.random.default_rng(0)
    u = rng.integers(0, 2, (4, k)).astype(np.uint8)
    zero = np.asarray(code.encode(np.zeros((1, k), np.uint8)))
    if zero.any() or not np.array_equal(np.asarray(code.encode(u), np.uint8), (u.astype(np.int64) @ G) % 2):
        raise ValueError(f"{getattr(code, 'name', code)}: its encoder is not linear over GF(2), so it has no "
                         "generator matrix (OSD needs a linear code)")
    return G


class OSDDecoder(DeviceTables):
    """Ordered-statistics decoder of order ``order`` for the binary linear code of ``G [k, n]``.

    Args:
        G: ``[k, n]`` 0/1 generator matrix (numpy or torch) of rank ``k``.
        order: largest weight of the test patterns on the most reliable basis (0 ... k).
        chunk_size: frames eliminated together (``None``: 256 on CPU, all frames elsewhere).

    Call: ``decoder(llr [F, n]) -> (codeword [F, n] uint8, info [F, k] uint8)`` on ``llr``'s device,
    ``llr = log P(b=1|r)/P(b=0|r)``. ``decode(llr numpy) -> (info [F, k] uint8, ok [F] bool)``;
    ``ok`` is all True (OSD always returns a codeword).
    """

    def __init__(self, G, order: int = 2, chunk_size: int | None = None):
        super().__init__()
        G = np.asarray(G.cpu() if isinstance(G, torch.Tensor) else G)
        if G.ndim != 2 or G.size == 0:
            raise ValueError(f"G must be a non-empty 2-D 0/1 matrix [k, n], got shape {list(G.shape)}")
        if not np.isin(G, (0, 1)).all():
            raise ValueError("G must contain only 0 and 1")
        self.k, self.n = G.shape
        if int(order) != order or not 0 <= order <= self.k:
            raise ValueError(f"order must be an integer in [0, k = {self.k}], got {order}")
        if chunk_size is not None and int(chunk_size) < 1:
            raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size}")
        self.order, self.chunk_size = int(order), chunk_size
        J, inv = gf2_rank_and_inverse(G)
        self.num_patterns = sum(math.comb(self.k, w) for w in range(self.order + 1))
        self.register_buffer("G", torch.from_numpy(G.astype(bool)), persistent=False)
        self.register_buffer("info_cols", torch.from_numpy(J).long(), persistent=False)
        self.register_buffer("inverse", torch.from_numpy(inv.astype(np.float32)), persistent=False)
        self._patterns: dict[int, torch.Tensor] = {}

    def extra_repr(self) -> str:
        return f"k={self.k}, n={self.n}, order={self.order} ({self.num_patterns} patterns per frame)"

    def patterns(self, weight: int, device) -> torch.Tensor:
        """``[C(k, weight), k]`` 0/1 float rows: all test patterns of this weight."""
        if weight not in self._patterns:
            idx = torch.tensor(list(combinations(range(self.k), weight)), dtype=torch.long)
            E = torch.zeros(idx.shape[0], self.k)
            E.scatter_(1, idx, 1.0)
            self._patterns[weight] = E
        return self._patterns[weight].to(device)

    @torch.no_grad()
    def forward(self, llr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_llr_tensor(llr, self.n)
        tables = self._tables(llr.device)
        dtype = torch.float64 if llr.dtype == torch.float64 else torch.float32
        frames = llr.shape[0]
        width = self.chunk_size or (_CPU_CHUNK if llr.device.type == "cpu" else max(frames, 1))
        words = [self._decode_chunk(llr[s:s + width].to(dtype), tables) for s in range(0, frames, width)]
        word = torch.cat(words) if words else torch.zeros(0, self.n, dtype=torch.uint8, device=llr.device)
        info = (word[:, tables["info_cols"]].float() @ tables["inverse"]).remainder_(2).to(torch.uint8)
        return word, info

    def _eliminate(self, bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reduce ``bits [F, k, n]`` (bool, columns in reliability order) to reduced row echelon form
        over GF(2), pivots on the first independent columns. Rows are bit-packed into ``int64`` words
        (the row operations then touch ``n / 64`` words per row). Returns ``(reduced [F, k, n] bool,
        pivot [F, k])``: the column of each row's pivot (rows are not reordered)."""
        f, k, n = bits.shape
        device = bits.device
        words = -(-n // 64)
        shifts = torch.arange(64, device=device, dtype=torch.long)
        padded = torch.zeros(f, k, words * 64, dtype=torch.long, device=device)
        padded[:, :, :n] = bits
        M = (padded.view(f, k, words, 64) << shifts).sum(dim=3)  # [F, k, W]; bit 63 wraps to the sign
        frames = torch.arange(f, device=device)
        used = torch.zeros(f, k, dtype=torch.bool, device=device)
        pivot = torch.zeros(f, k, dtype=torch.long, device=device)
        count = torch.zeros(f, dtype=torch.long, device=device)
        for j in range(n):
            col = ((M[:, :, j // 64] >> (j % 64)) & 1).bool()   # [F, k]
            cand = col & ~used
            has = cand.any(dim=1)
            p = cand.to(torch.uint8).argmax(dim=1)  # first free row with a 1 (0 where none)
            flip = col & has[:, None]
            flip[frames, p] = False
            M ^= (-flip.long())[:, :, None] & M[frames, p][:, None, :]
            used[frames, p] |= has
            pivot[frames, p] = torch.where(has, j, pivot[frames, p])
            count += has
            if j + 1 >= k and bool((count == k).all()):
                break
        reduced = ((M[:, :, :, None] >> shifts) & 1).view(f, k, words * 64)[:, :, :n].bool()
        return reduced, pivot

    def _decode_chunk(self, llr: torch.Tensor, tables) -> torch.Tensor:
        f, n, k = llr.shape[0], self.n, self.k
        dtype, device = llr.dtype, llr.device
        w = llr.abs()
        perm = torch.argsort(w, dim=1, descending=True, stable=True)
        wp = w.gather(1, perm)
        hp = (llr > 0).gather(1, perm)
        M = tables["G"][None].expand(f, k, n).gather(2, perm[:, None, :].expand(f, k, n))
        M, pivot = self._eliminate(M)
        R = M.to(dtype)                                   # [F, k, n]: rows are codewords
        b = hp.gather(1, pivot)                           # [F, k] hard decisions on the basis
        c0 = torch.bmm(b.to(dtype)[:, None, :], R)[:, 0].remainder_(2)
        a = wp * (1 - 2 * (c0 != hp.to(dtype)).to(dtype))  # +|llr| where c0 agrees with the hard decision
        total = a.sum(dim=1)                              # correlation of c0
        best = total.clone()
        flips = torch.zeros(f, k, dtype=dtype, device=device)  # the winning pattern
        if self.order >= 1:
            S = torch.bmm(R, a[:, :, None])[:, :, 0]      # [F, k]: sum_j a_j R_ij
            m1 = total[:, None] - 2 * S
            v, i = m1.max(dim=1)
            better = v > best
            best = torch.where(better, v, best)
            flips[better] = 0
            flips[better, i[better]] = 1
        if self.order >= 2 and k >= 2:
            Q = torch.bmm(R * a[:, None, :], R.transpose(1, 2))  # [F, k, k]
            m2 = total[:, None, None] - 2 * (S[:, :, None] + S[:, None, :]) + 4 * Q
            upper = torch.ones(k, k, dtype=torch.bool, device=device).triu(1)
            m2 = m2.masked_fill(~upper, -math.inf).view(f, k * k)
            v, i = m2.max(dim=1)
            better = v > best
            best = torch.where(better, v, best)
            rows = better.nonzero().squeeze(1)
            flips[rows] = 0
            flips[rows, i[rows] // k] = 1
            flips[rows, i[rows] % k] = 1
        if self.order >= 3 and k >= 3:
            best, flips = self._weight3(R, a, S, Q, total, best, flips)
        for weight in range(4, self.order + 1):
            E = self.patterns(weight, device).to(dtype)
            step = max(1, _PATTERN_ELEMENTS // max(f * n, 1))
            for s in range(0, E.shape[0], step):
                e = E[s:s + step]
                y = torch.matmul(e, R).remainder_(2)       # [F, P, n]
                m = total[:, None] - 2 * torch.bmm(y, a[:, :, None])[:, :, 0]
                v, i = m.max(dim=1)
                better = v > best
                best = torch.where(better, v, best)
                flips = torch.where(better[:, None], e[i], flips)
        basis = (b.to(dtype) + flips).remainder_(2)
        word_p = torch.bmm(basis[:, None, :], R)[:, 0].remainder_(2).to(torch.uint8)
        return torch.empty_like(word_p).scatter_(1, perm, word_p)

    def _weight3(self, R, a, S, Q, total, best, flips):
        """Best weight-3 pattern ``{i < l < m}``: ``sum_j a_j y_j = S_i + S_l + S_m - 2 (Q_il + Q_im +
        Q_lm) + 4 T_ilm`` with ``T_ilm = sum_j a_j R_ij R_lj R_mj``; the terms with ``m`` are
        ``sum_j a_j (1 - 2 R_ij) (1 - 2 R_lj) R_mj``, one batched matmul over the pairs ``i < l``.
        In slices of frames to bound memory. Returns the updated ``(best, flips)``."""
        f, k, n = R.shape
        device = R.device
        pairs = torch.tensor(list(combinations(range(k), 2)), dtype=torch.long, device=device)  # [P2, 2]
        i, l = pairs[:, 0], pairs[:, 1]
        valid = torch.arange(k, device=device)[None, :] > l[:, None]  # m > l
        step = max(1, _PATTERN_ELEMENTS // max(pairs.shape[0] * max(n, k), 1))
        for s in range(0, f, step):
            sl = slice(s, s + step)
            Rs, Ss, Qs = R[sl], S[sl], Q[sl]
            signs = 1 - 2 * Rs                                            # [f, k, n]: +-1
            Y = (signs * a[sl, None, :])[:, i] * signs[:, l]               # [f, P2, n]
            third = torch.bmm(Y, Rs.transpose(1, 2))                      # [f, P2, k]
            pair_part = Ss[:, i] + Ss[:, l] - 2 * Qs[:, i, l]             # [f, P2]
            m = third.add_(pair_part[:, :, None]).mul_(-2).add_(total[sl, None, None])
            m = m.masked_fill_(~valid, -math.inf).flatten(1)
            v, idx = m.max(dim=1)
            better = v > best[sl]
            best[sl] = torch.where(better, v, best[sl])
            rows = better.nonzero().squeeze(1) + s
            p, mm = idx[better] // k, idx[better] % k
            flips[rows] = 0
            flips[rows, i[p]] = 1
            flips[rows, l[p]] = 1
            flips[rows, mm] = 1
        return best, flips

    @torch.no_grad()
    def decode(self, llr, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Numpy in, numpy out: ``llr [F, n]`` -> ``(info [F, k] uint8, ok [F] bool)`` (ok all True)."""
        array = np.asarray(llr)
        if array.ndim != 2 or array.shape[1] != self.n:
            raise ValueError(f"llr must have shape [F, {self.n}], got {list(array.shape)}")
        tensor = torch.from_numpy(array.astype(np.float64 if array.dtype == np.float64 else np.float32))
        _, info = self(tensor.to(self.G.device))
        return info.cpu().numpy(), np.ones(array.shape[0], bool)
