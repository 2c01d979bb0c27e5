"""Batched successive-cancellation (SC) and SC-list (SCL) decoding of polar codes in torch.

The mother code is ``x = u G_N`` with ``G_N`` the n-fold Kronecker power of ``[[1, 0], [1, 1]]``
(natural order, no bit reversal, as in 5G NR), ``N = 2^n``; ``frozen [N]`` marks the positions of
``u`` fixed to 0 and the others carry the message ``m = u[~frozen]`` (increasing index order)::

    dec = SCDecoder(frozen)                        # or SCLDecoder(frozen, list_size=8, crc_matrix=G)
    m_hat, ok = dec(llr)                           # llr [F, N] float tensor -> m_hat [F, K] uint8, ok [F] bool

``llr`` follows the one convention of :mod:`commsim.channels.base` (``log P(b=1)/P(b=0)``); it is
negated once on entry to the textbook ``alpha = log P(0)/P(1)`` used inside.

Tree schedule. Decoding walks the binary tree of the code: a node at depth ``d`` covers ``N / 2^d``
consecutive positions of ``u``; its LLRs ``alpha`` come from its parent by ``f`` (left child,
min-sum ``f(a, b) = sign(a) sign(b) min(|a|, |b|)``, or the exact boxplus with ``f="exact"``) or ``g``
(right child, ``g = b + (1 - 2 beta_left) a``), and its partial sums ``beta`` (kept as signs ``1 - 2 beta``, so XOR is a product) go back up. The walk is
fixed by the frozen set, so it is compiled once into a flat list of tensor operations, each applied to
the whole batch ``[F * L, size]`` (no Python loop over frames). Special nodes are decoded in one step
(Sarkis et al. 2014, Hashemi et al. 2017): Rate-0 (all frozen: ``beta = 0``), repetition (only the
last position free) and, for SC, Rate-1 (no frozen position: ``beta`` = hard decision of ``alpha``) and,
optionally, single-parity-check nodes (first position frozen, the others free: their ML decision). The
others are exactly what the leaf-by-leaf decoder decides; for SCL, the path metrics of Rate-0 and
repetition nodes are those of the leaf-by-leaf decoder with the hard-decision metric below (the tests
compare them), and Rate-1 nodes can optionally fork on their ``min(L - 1, S)`` least reliable bits.

SCL (Tal & Vardy 2015) keeps ``L`` paths per frame with the LLR-based path metric of
Balatsoukas-Stimming et al. 2015, ``PM += |alpha|`` when a decision disagrees with the sign of its
``alpha`` (``PM = 0`` best). State is ``[F * L, size]`` per tree level. At a free leaf each path
forks into two, the ``L`` best of the ``2L`` candidates survive (``torch.topk``; with ``L = 1`` a tie
keeps ``u = 0``, so ``L = 1`` is exactly SC), and the surviving paths' states are *not* copied at
once: each level buffer that will be read again (a static liveness analysis of the schedule) keeps a
pending row index (copy on write), composed cheaply at each fork (``[F * L]`` integers) and applied
with one ``index_select`` only when the buffer is next read.
At the start, one path is active and the others carry metric ``inf``. ``copy_on_write = False``
re-indexes every live buffer at each fork instead (the same result; 1.6x slower at N = 128 and ~5x at
N = 1024 on CPU, see ``benchmarks/results/polar.md``).

CRC-aided selection (CA-SCL, ``crc_matrix`` given): among the final ``L`` paths, the best-metric one
whose CRC holds (the message's last ``c`` bits equal ``m[:K-c] @ G mod 2``); if none holds, the best
one, with ``ok = False``. Without a CRC ``ok`` is all True. Messages are read off the final ``beta``
(the re-encoded codeword ``x_hat``) by one more polar transform (``G_N`` is its own inverse).

All arithmetic is float32 (on the LLRs' device); tables are module buffers and follow ``.to()``.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from commsim.fec.decoders.tables import check_llr_tensor

LIST_SIZES = (1, 2, 4, 8, 16, 32)


def polar_transform(bits: torch.Tensor) -> torch.Tensor:
    """``bits [R, N]`` uint8 -> ``bits G_N mod 2`` ``[R, N]`` (its own inverse); N a power of two."""
    rows, n = bits.shape
    x = bits.clone()
    h = 1
    while h < n:
        v = x.view(rows, n // (2 * h), 2, h)
        v[:, :, 0].bitwise_xor_(v[:, :, 1])
        h *= 2
    return x


def polar_transform_np(bits: np.ndarray) -> np.ndarray:
    """:func:`polar_transform` in numpy: ``bits [R, N]`` -> ``bits G_N mod 2``."""
    rows, n = bits.shape
    x = np.array(bits, dtype=np.uint8, copy=True)
    h = 1
    while h < n:
        v = x.reshape(rows, n // (2 * h), 2, h)
        v[:, :, 0] ^= v[:, :, 1]
        h *= 2
    return x


def _f(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Min-sum check-node rule ``sign(a) sign(b) min(|a|, |b|)``."""
    return torch.minimum(a.abs(), b.abs()).copysign_(a * b)


def _f_exact(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact boxplus ``2 atanh(tanh(a/2) tanh(b/2))`` = min-sum + ``log(1 + e^-|a+b|) - log(1 + e^-|a-b|)``."""
    return _f(a, b) + torch.nn.functional.softplus(-(a + b).abs()) - torch.nn.functional.softplus(-(a - b).abs())


F_RULES = {"min-sum": _f, "exact": _f_exact}


class _Tree(nn.Module):
    """The compiled decoding schedule of one frozen set (shared by :class:`SCDecoder` and :class:`SCLDecoder`)."""

    def __init__(self, frozen: np.ndarray, list_mode: bool, spc: bool = False, nodes: bool = True,
                 f: str = "min-sum", list_rate1: bool = False):
        super().__init__()
        if f not in F_RULES:
            raise ValueError(f"f must be one of {', '.join(F_RULES)}, got {f!r}")
        self.spc, self.nodes, self.f_rule, self._f = spc, nodes, f, F_RULES[f]
        self.list_rate1 = list_rate1
        frozen = np.asarray(frozen, bool)
        n_total = frozen.size
        if n_total < 2 or n_total & (n_total - 1):
            raise ValueError(f"the frozen mask must have a length N that is a power of two >= 2, got {n_total}")
        if frozen.all():
            raise ValueError("the frozen mask freezes every position: at least one must carry information")
        self.N, self.n = n_total, n_total.bit_length() - 1
        self.K = int((~frozen).sum())
        self.register_buffer("info_positions", torch.from_numpy(np.flatnonzero(~frozen)), persistent=False)
        self.frozen = frozen
        self.ops: list[tuple] = []
        self._compile(0, 0, 0, list_mode)
        self.ops.append(("end",))
        self._liveness()

    # schedule ------------------------------------------------------------------------------------
    def _kind(self, start: int, size: int, list_mode: bool) -> str:
        fr = self.frozen[start:start + size]
        if not self.nodes:
            return "split" if size > 1 else ("rate0" if fr[0] else "leaf")
        if fr.all():
            return "rate0"
        if size == 1:
            return "leaf"
        if fr[:-1].all():
            return "rep"
        if not fr.any() and (not list_mode or self.list_rate1):
            return "rate1"
        if not list_mode and self.spc and size >= 4 and fr[0] and not fr[1:].any():
            return "spc"
        return "split"

    def _compile(self, depth: int, start: int, side: int, list_mode: bool) -> None:
        size = self.N >> depth
        kind = self._kind(start, size, list_mode)
        if kind != "split":
            self.ops.append((kind, depth, side))
            return
        self.ops.append(("f", depth))
        self._compile(depth + 1, start, 0, list_mode)
        self.ops.append(("g", depth))
        self._compile(depth + 1, start + size // 2, 1, list_mode)
        self.ops.append(("combine", depth, side))

    @staticmethod
    def _access(op: tuple) -> tuple[list, list]:
        """``(reads, writes)`` of buffer names ``("A", d)`` (alpha at depth d) and ``("B", d, side)``."""
        kind = op[0]
        if kind == "f":
            return [("A", op[1])], [("A", op[1] + 1)]
        if kind == "g":
            return [("A", op[1]), ("B", op[1] + 1, 0)], [("A", op[1] + 1)]
        if kind == "combine":
            return [("B", op[1] + 1, 0), ("B", op[1] + 1, 1)], [("B", op[1], op[2])]
        if kind == "end":
            return [("B", 0, 0)], []
        return [("A", op[1])], [("B", op[1], op[2])]

    def _liveness(self) -> None:
        """For each op, the buffers that a fork there must re-index (``self.live``): those read again
        before being overwritten, except the channel LLRs (the same for all paths), the op's own output
        (written after the fork, in the new order) and partial sums known to be all zero."""
        zero: set = set()          # names whose current value is all zeros (None), walking the schedule
        written_nonzero: set = set()
        for op in self.ops:
            kind = op[0]
            if kind in ("f", "g", "end"):
                continue
            name = ("B", op[1], op[2])
            if kind == "rate0" or (kind == "combine" and {("B", op[1] + 1, 0), ("B", op[1] + 1, 1)} <= zero):
                zero.add(name)
            else:
                zero.discard(name)
                written_nonzero.add(name)
        always_zero = {self._access(op)[1][0] for op in self.ops if op[0] in ("rate0", "combine")} - written_nonzero
        live: set = set()
        self.live = [()] * len(self.ops)
        for t in range(len(self.ops) - 1, -1, -1):
            reads, writes = self._access(self.ops[t])
            skip = {("A", 0), *writes} | always_zero
            self.live[t] = tuple(sorted(x for x in live if x not in skip))  # live *after* op t
            live = (live - set(writes)) | set(reads)

    def node_counts(self) -> dict[str, int]:
        """How many nodes of each kind the schedule decodes (``leaf`` = single free positions)."""
        counts: dict[str, int] = {}
        for op in self.ops:
            if op[0] not in ("f", "g", "combine", "end"):
                counts[op[0]] = counts.get(op[0], 0) + 1
        return counts


class SCDecoder(_Tree):
    """Successive-cancellation decoder of the polar code with mask ``frozen [N]`` (True = frozen).

    ``forward(llr [F, N]) -> (m_hat [F, K] uint8, ok [F] bool)`` with ``K`` the free positions
    (``ok`` all True: SC has no check of its own). Min-sum ``f``; Rate-0, Rate-1, repetition and SPC
    nodes decoded in one step each.
    """

    def __init__(self, frozen: np.ndarray, spc: bool = False, nodes: bool = True, f: str = "min-sum"):
        """``spc=True`` also decodes single-parity-check nodes in one step (their ML decision, which can
        differ from leaf-by-leaf SC); ``nodes=False`` decodes leaf by leaf (the reference); ``f``:
        ``"min-sum"`` or ``"exact"`` (boxplus)."""
        super().__init__(frozen, list_mode=False, spc=spc, nodes=nodes, f=f)

    def forward(self, llr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.decode_codeword(llr)
        m = polar_transform(x).index_select(1, self.info_positions.to(x.device))
        return m, torch.ones(x.shape[0], dtype=torch.bool, device=x.device)

    def decode_codeword(self, llr: torch.Tensor) -> torch.Tensor:
        """``llr [F, N] -> x_hat [F, N]`` uint8, the re-encoded decision (a codeword of the mother code)."""
        A: dict[int, torch.Tensor] = {0: -check_llr_tensor(llr, self.N).float()}
        B: dict[tuple, torch.Tensor | None] = {}
        for op in self.ops:
            kind = op[0]
            if kind == "f":
                a = A[op[1]]
                h = a.shape[1] // 2
                A[op[1] + 1] = self._f(a[:, :h], a[:, h:])
            elif kind == "g":
                a, s = A[op[1]], B[(op[1] + 1, 0)]
                h = a.shape[1] // 2
                A[op[1] + 1] = a[:, h:] + a[:, :h] if s is None else torch.addcmul(a[:, h:], s, a[:, :h])
            elif kind == "combine":
                B[(op[1], op[2])] = _combine(B[(op[1] + 1, 0)], B[(op[1] + 1, 1)], self.N >> (op[1] + 1))
            elif kind == "rate0":
                B[(op[1], op[2])] = None
            elif kind == "rate1":
                B[(op[1], op[2])] = _signs(A[op[1]])
            elif kind == "leaf":
                B[(op[1], op[2])] = _signs(A[op[1]])
            elif kind == "rep":
                a = A[op[1]]
                B[(op[1], op[2])] = _signs(a.sum(1, keepdim=True)).expand(-1, a.shape[1])
            elif kind == "spc":
                a = A[op[1]]
                s = _signs(a)
                parity = s.prod(1, keepdim=True)  # -1 where the hard decisions have odd weight
                weakest = a.abs().argmin(1, keepdim=True)
                s.scatter_(1, weakest, s.gather(1, weakest) * parity)
                B[(op[1], op[2])] = s
        s = B[(0, 0)]
        if s is None:
            return torch.zeros_like(A[0], dtype=torch.uint8)
        return (s < 0).to(torch.uint8)


def _signs(a: torch.Tensor) -> torch.Tensor:
    """Hard decisions as signs: ``+1`` (bit 0) where ``alpha >= 0``, ``-1`` (bit 1) where ``alpha < 0``."""
    return torch.where(a < 0, -1.0, 1.0).to(a.dtype)


def _combine(left: torch.Tensor | None, right: torch.Tensor | None, half: int) -> torch.Tensor | None:
    """Parent partial sums (as signs) ``[left * right, right]``; ``None`` stands for all zeros (+1)."""
    if left is None and right is None:
        return None
    if right is None:
        return torch.cat([left, torch.ones_like(left)], 1)
    if left is None:
        return torch.cat([right, right], 1)
    return torch.cat([left * right, right], 1)


class SCLDecoder(_Tree):
    """Successive-cancellation list decoder (CRC-aided when ``crc_matrix`` is given).

    ``frozen [N]`` (True = frozen), ``list_size`` L in 1, 2, 4, 8, 16, 32, ``crc_matrix [K - c, c]``
    (0/1) for the check ``m[K-c:] == m[:K-c] @ G mod 2`` of the message ``m [K]``.
    ``forward(llr [F, N]) -> (m_hat [F, K] uint8, ok [F] bool)``: the selected path's message and
    whether its CRC holds (all True without a CRC). ``decode_paths(llr)`` returns all ``L`` paths.
    """

    def __init__(self, frozen: np.ndarray, list_size: int = 8, crc_matrix: np.ndarray | None = None,
                 nodes: bool = True, f: str = "min-sum", rate1: bool = False):
        """``nodes=False`` decodes leaf by leaf (no special nodes: the reference); ``rate1=True`` also
        decodes Rate-1 nodes in one step, forking on their ``min(L - 1, S)`` least reliable positions only
        (Hashemi et al. 2017; the same paths, but not faster on CPU: off by default); ``f``: ``"min-sum"``
        or ``"exact"`` (boxplus; the node metrics stay the hard-decision ones)."""
        if list_size not in LIST_SIZES:
            raise ValueError(f"list_size must be a power of two in 1..32, got {list_size}")
        super().__init__(frozen, list_mode=True, nodes=nodes, f=f, list_rate1=rate1)
        self.L = int(list_size)
        self.copy_on_write = True  # False: re-index every live buffer at each fork (for comparison)
        if crc_matrix is None:
            crc_matrix = np.zeros((self.K, 0), np.float32)
        crc_matrix = np.asarray(crc_matrix, np.float32)
        if crc_matrix.ndim != 2 or crc_matrix.shape[0] + crc_matrix.shape[1] != self.K:
            raise ValueError(f"crc_matrix must have shape [K - c, c] with K = {self.K}, got {list(crc_matrix.shape)}")
        self.crc_bits = crc_matrix.shape[1]
        self.register_buffer("crc_matrix", torch.from_numpy(crc_matrix), persistent=False)

    def decode_paths(self, llr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``llr [F, N] -> (m_hat [F, L, K] uint8, metric [F, L])``, the surviving paths (metric: lower is better)."""
        alpha0 = -check_llr_tensor(llr, self.N).float()
        F, L, dev = alpha0.shape[0], self.L, alpha0.device
        base = (torch.arange(F, device=dev) * L).unsqueeze(1)  # [F, 1] row offset of each frame's paths
        pm = torch.full((F, L), float("inf"), device=dev)
        pm[:, 0] = 0.0
        ones = torch.ones(1, device=dev)
        A: dict[int, torch.Tensor] = {0: alpha0.repeat_interleave(L, 0) if L > 1 else alpha0}
        B: dict[tuple, torch.Tensor | None] = {}
        pending: dict[tuple, torch.Tensor] = {}

        def read_a(d: int) -> torch.Tensor:
            idx = pending.pop(("A", d), None)
            if idx is not None:
                A[d] = A[d].index_select(0, idx)
            return A[d]

        def read_b(d: int, side: int) -> torch.Tensor | None:
            idx = pending.pop(("B", d, side), None)
            if idx is not None and B[(d, side)] is not None:
                B[(d, side)] = B[(d, side)].index_select(0, idx)
            return B[(d, side)]

        def fork(t: int, cost0: torch.Tensor, cost1: torch.Tensor, local: list | None = None) -> torch.Tensor:
            """Extend each path by 0 and 1 (costs ``[F, L]``), keep the L best; return the bits ``[F, L]``.
            ``local``: tensors ``[F * L, ...]`` of the node being decoded, re-indexed in place."""
            nonlocal pm
            cand = (pm + cost0, pm + cost1) if cost0 is not None else (pm, pm + cost1)
            cand = torch.cat(cand, 1)
            if L == 1:
                bit = (cand[:, 1] < cand[:, 0]).unsqueeze(1)
                pm = torch.where(bit, cand[:, 1:], cand[:, :1])
                return bit
            pm, pos = torch.topk(cand, L, dim=1, largest=False, sorted=False)
            bit = pos >= L
            idx = (pos - bit * L + base).view(-1)
            if self.copy_on_write:
                for name in self.live[t]:
                    old = pending.get(name)
                    pending[name] = idx if old is None else old.index_select(0, idx)
            else:  # eager: copy every live buffer now
                for name in self.live[t]:
                    store = A if name[0] == "A" else B
                    key = name[1] if name[0] == "A" else name[1:]
                    if store[key] is not None:
                        store[key] = store[key].index_select(0, idx)
            if local is not None:
                local[:] = [x.index_select(0, idx) for x in local]
            return bit

        for t, op in enumerate(self.ops):
            kind = op[0]
            if kind == "f":
                a = read_a(op[1])
                h = a.shape[1] // 2
                A[op[1] + 1] = self._f(a[:, :h], a[:, h:])
                pending.pop(("A", op[1] + 1), None)
            elif kind == "g":
                a, s = read_a(op[1]), read_b(op[1] + 1, 0)
                h = a.shape[1] // 2
                A[op[1] + 1] = a[:, h:] + a[:, :h] if s is None else torch.addcmul(a[:, h:], s, a[:, :h])
                pending.pop(("A", op[1] + 1), None)
            elif kind == "combine":
                left, right = read_b(op[1] + 1, 0), read_b(op[1] + 1, 1)
                B[(op[1], op[2])] = _combine(left, right, self.N >> (op[1] + 1))
                pending.pop(("B", op[1], op[2]), None)
            elif kind == "end":
                s = read_b(0, 0)
            else:
                a = read_a(op[1])
                if kind == "rate0":
                    pm = pm - a.clamp(max=0).sum(1).view(F, L)
                    B[(op[1], op[2])] = None
                elif kind == "rate1":
                    # Hashemi et al. 2017: fork on the min(L - 1, S) least reliable positions only (in order
                    # of increasing |alpha|); the others keep the hard decision. Flipping costs |alpha|.
                    forks = min(L - 1, a.shape[1])
                    s = _signs(a)
                    if forks:
                        rel, order = a.abs().topk(forks, dim=1, largest=False, sorted=True)
                        local = [s, rel, order]
                        for j in range(forks):
                            bit = fork(t, None, local[1][:, j].view(F, L), local)
                            flip = torch.where(bit.view(-1, 1), -1.0, 1.0)
                            s, order = local[0], local[2]
                            s.scatter_(1, order[:, j:j + 1], s.gather(1, order[:, j:j + 1]) * flip)
                        s = local[0]
                    B[(op[1], op[2])] = s
                else:  # leaf or rep: one free bit, x = all 0 or all 1
                    total = a.sum(1).view(F, L) if kind == "rep" else a.view(F, L)
                    if kind == "rep":
                        cost0 = -a.clamp(max=0).sum(1).view(F, L)
                        cost1 = a.clamp(min=0).sum(1).view(F, L)
                    else:
                        cost0, cost1 = (-total).clamp(min=0), total.clamp(min=0)
                    bit = fork(t, cost0, cost1)
                    sign = (ones - 2 * bit.to(a.dtype)).view(-1, 1)
                    B[(op[1], op[2])] = sign.expand(-1, a.shape[1]) if kind == "rep" else sign
                pending.pop(("B", op[1], op[2]), None)
        if s is None:
            x = torch.zeros((F * L, self.N), dtype=torch.uint8, device=dev)
        else:
            x = (s < 0).to(torch.uint8)
        m = polar_transform(x).index_select(1, self.info_positions.to(dev))
        return m.view(F, L, self.K), pm

    def forward(self, llr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m, pm = self.decode_paths(llr)
        F = m.shape[0]
        if self.crc_bits == 0:
            best = pm.argmin(1)
            ok = torch.ones(F, dtype=torch.bool, device=m.device)
        else:
            a = self.K - self.crc_bits
            G = self.crc_matrix.to(m.device)
            check = (m[:, :, :a].float() @ G).remainder_(2).to(torch.uint8)
            passes = (check == m[:, :, a:]).all(2)  # [F, L]
            best = torch.where(passes, pm, torch.full_like(pm, float("inf"))).argmin(1)
            best = torch.where(passes.any(1), best, pm.argmin(1))
            ok = passes.gather(1, best.unsqueeze(1)).squeeze(1)
        return m[torch.arange(F, device=m.device), best], ok
