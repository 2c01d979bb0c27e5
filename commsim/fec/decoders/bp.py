"""Batched belief-propagation (BP) decoding of binary LDPC codes in torch.

:class:`BPDecoder` decodes a batch of frames at once on any device. Input and output follow the one
LLR convention of :mod:`commsim.channels.base` (``llr = log P(b=1|r)/P(b=0|r)``, positive decides
1, 0 is an erasure)::

    dec = BPDecoder(H, algorithm="sum-product", max_iter=50)
    bits, converged, iterations = dec(llr)        # llr [F, n] float tensor
    bits, converged = dec.decode(llr_numpy)       # numpy in, numpy out

Layout. The Tanner graph is stored check-major and padded to the largest check degree ``d``
(``[m, d]`` variable indices; a padding slot points at a dummy variable ``n`` whose LLR is a large
"certainly 0"), and messages are kept degree-major and frames-last, ``[d, m, F]``: gathering the
edges of all checks is a copy of contiguous rows of ``F`` values, a check's reduction over its
edges is a reduction over the outer dimension (vectorized over checks and frames), and the edge
``j`` of all checks is a contiguous ``[m, F]`` slice. The flooding variable update is one
``index_add`` of the check-to-variable messages; the layered one writes each layer's totals back
with ``index_copy``. Internally messages use ``L = log P(0)/P(1) = -llr`` (the textbook sign for the
tanh rule).

Check updates. Sum-product uses the tanh rule in product form, ``out_j = log((t_j + P) / (t_j - P))``
with ``t = tanh(in / 2)`` and ``P`` the product of a check's ``t`` (:func:`_check_sum_product`):
one ``tanh`` and one ``log`` per edge and no separate sign bookkeeping. On CPU the decoder is bound
by memory traffic (each elementwise pass over ``[d, m, F]`` costs about as much as a ``tanh``), so
the kernels are written to make few passes: products and minima over ``d`` as reductions over the
outer dimension, in-place ops on reused buffers (:class:`_Workspace`), and the parity test as the
sign of a product (:func:`_parity_ok`). Min-sum needs its leave-one-out minimum from prefix and
suffix minima (:func:`_leave_one_out`), so on CPU it is no cheaper per iteration than sum-product.

Early stopping checks all parity equations of the current hard decisions at the start of every
iteration (as commpy's ``ldpc_bp_decode`` does). Frames are decoded in a pool of slots (256 on CPU,
all frames on other devices): a frame that stops is written out and its slot refilled with the next
input frame, so iterations are not spent on finished frames nor on a handful of stragglers while the
rest of the batch waits (see :class:`_Run`).

Messages are float32 (float64 if the input is float64). In float32 ``tanh(x/2)`` rounds to 1 above
``x ~ 17``, so sum-product check messages saturate at ~17.4 (``log(2 / ulp(1))``), which does not
change decisions in practice (the tests compare with commpy's float64 decoder).
"""
from __future__ import annotations

import numpy as np
import torch

from commsim.fec.decoders.tables import DeviceTables, check_llr_tensor

from commsim.channels.base import LLR_LIMIT

ALGORITHMS = ("sum-product", "min-sum")
SCHEDULES = ("flooding", "layered")

_PAD_LLR = 1.0e4
"""Internal LLR of the dummy variable that padding slots point at: certainly 0, so neutral."""

_CPU_CHUNK = 256
"""Pool width on CPU by default (see ``chunk_size``): narrower pools pay more per-call overhead,
wider ones more cache misses; 128-256 measured best on WiMAX (1440, 720)."""

_T_OFFSET = 1.0e-30
"""Added to ``in / 2`` before the ``tanh`` of sum-product: keeps ``t`` away from 0 (see
:func:`_check_sum_product`) and changes nothing else (a normal float in float32 and float64)."""

_LARGEST_FINITE = {torch.float32: 17.4, torch.float64: 37.5}
"""Bound of the finite sum-product check messages per dtype: ``log(2 / ulp(1))``."""


_SAME_WIDTH_INT = {torch.float32: torch.int32, torch.float64: torch.int64}


def parity_check_lists(H) -> tuple[int, int, list[np.ndarray]]:
    """``(n, m, rows)`` of a 0/1 parity-check matrix given dense or as a ``scipy.sparse`` matrix.

    ``rows[c]`` is the sorted array of variables that check ``c`` involves. Raises ``ValueError``
    for entries other than 0/1, an empty matrix or a check of degree 0.
    """
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover - scipy is a dependency of commsim
        sp = None
    if sp is not None and sp.issparse(H):
        csr = sp.csr_matrix(H)
        csr.sum_duplicates()
        csr.eliminate_zeros()
        if csr.nnz and not np.all(csr.data == 1):
            raise ValueError("H must contain only 0 and 1")
        m, n = csr.shape
        rows = [np.sort(csr.indices[csr.indptr[c]:csr.indptr[c + 1]]).astype(np.int64) for c in range(m)]
    else:
        dense = np.asarray(H.cpu() if isinstance(H, torch.Tensor) else H)
        if dense.ndim != 2:
            raise ValueError(f"H must be a 2-D matrix, got shape {list(dense.shape)}")
        if dense.size and not np.isin(dense, (0, 1)).all():
            raise ValueError("H must contain only 0 and 1")
        m, n = dense.shape
        rows = [np.flatnonzero(dense[c]).astype(np.int64) for c in range(m)]
    if m == 0 or n == 0:
        raise ValueError(f"H must have at least one check and one variable, got shape [{m}, {n}]")
    empty = [c for c, r in enumerate(rows) if r.size == 0]
    if empty:
        raise ValueError(f"check {empty[0]} of H involves no variable (an all-zero row)")
    return n, m, rows


def _padded(rows: list[np.ndarray], n: int) -> np.ndarray:
    """``[len(rows), max degree]`` variable indices, padded with the dummy variable ``n``."""
    width = max(r.size for r in rows)
    out = np.full((len(rows), width), n, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : r.size] = r
    return out


def _layers(rows: list[np.ndarray], n: int) -> list[np.ndarray]:
    """Greedy first-fit grouping of checks into layers in which no variable appears twice."""
    used: list[np.ndarray] = []
    members: list[list[int]] = []
    for c, r in enumerate(rows):
        for layer, mask in enumerate(used):
            if not mask[r].any():
                mask[r] = True
                members[layer].append(c)
                break
        else:
            mask = np.zeros(n, dtype=bool)
            mask[r] = True
            used.append(mask)
            members.append([c])
    return [np.asarray(m, dtype=np.int64) for m in members]


class _Workspace:
    """Named scratch buffers reused across iterations (views of flat storage, grown on demand).

    Fresh multi-megabyte tensors cost page faults on every allocation on CPU, which made the
    allocating version of these kernels several times slower than the arithmetic itself.
    """

    def __init__(self, dtype: torch.dtype, device: torch.device):
        self.dtype, self.device = dtype, device
        self._flat: dict[str, torch.Tensor] = {}
        self._views: dict[tuple, torch.Tensor] = {}  # (name, shape) -> view: views cost ~2 us to make
        self.one = torch.ones((), dtype=dtype, device=device)
        self.offset = torch.full((), _T_OFFSET, dtype=dtype, device=device)

    def __call__(self, name: str, *shape: int) -> torch.Tensor:
        view = self._views.get((name, shape))
        if view is not None:
            return view
        numel = int(np.prod(shape))
        flat = self._flat.get(name)
        if flat is None or flat.numel() < numel:
            flat = self._flat[name] = torch.empty(numel, dtype=self.dtype, device=self.device)
            self._views = {key: v for key, v in self._views.items() if key[0] != name}
        view = self._views[(name, shape)] = flat[:numel].view(*shape)
        return view


def _leave_one_out(a: torch.Tensor, out: torch.Tensor, scratch: torch.Tensor, op) -> torch.Tensor:
    """``out[j] = op over a[i], i != j`` for ``a [d, m, F]`` (``d >= 2``), ``op`` an associative
    binary torch function with ``out=`` (``torch.mul``, ``torch.minimum``).

    Prefix results ``P_k = op(a_0 .. a_k)`` are kept in ``out[k + 1]``, suffix results ``S_j =
    op(a_j .. a_{d-1})`` in ``scratch[j]``, and ``out[j] = op(P_{j-1}, S_{j+1})``: ``3 d - 6``
    operations on contiguous ``[m, F]`` slices (about two passes over ``a``), exact, without
    division (zeros are fine), and much faster on CPU than ``prod``/``min`` reductions over ``d``.
    """
    d = a.shape[0]
    if d == 2:
        out[0], out[1] = a[1], a[0]
        return out
    op(a[0], a[1], out=out[2])
    for k in range(2, d - 1):
        op(out[k], a[k], out=out[k + 1])
    suffix = {d - 1: a[d - 1]}
    for j in range(d - 2, 1, -1):
        suffix[j] = op(a[j], suffix[j + 1], out=scratch[j])
    op(a[1], suffix[2], out=out[0])
    op(a[0], suffix[2], out=out[1])
    for j in range(2, d - 1):
        op(out[j], suffix[j + 1], out=out[j])
    return out


def _check_sum_product(v2c: torch.Tensor, out: torch.Tensor, ws: _Workspace, limit: float) -> None:
    """Sum-product check update of ``v2c [d, m, F]`` into ``out`` by the tanh rule

    ``tanh(out_j / 2) = prod_{i != j} t_i = P / t_j`` with ``t_i = tanh(in_i / 2)``, ``P = prod_i t_i``,
    so ``out_j = log((1 + P/t_j) / (1 - P/t_j)) = log((t_j + P) / (t_j - P))``.

    One ``tanh`` and one ``log`` per edge, a fast product over ``d`` and four elementwise passes;
    signs need no separate treatment (``tanh`` is odd). Edge cases, all mapped by one
    ``nan_to_num_``: ``|P| <= |t_j|`` holds in floating point too (products of factors of magnitude
    <= 1 only shrink), so the numerator and denominator have the sign of ``t_j`` or are zero, and
    the ratio is >= 0 except that ``t_j - P`` may round to ``+0`` for a negative ``t_j``. So a
    certain check gives ``+-inf`` or that ``NaN`` (``-inf / +0``, ``log`` of ``-inf``), both "the
    other inputs are all certain", mapped to ``+-cap`` with ``cap = min(limit, log(2 / ulp(1)))``
    (17.4 in float32, as large as a finite message gets: certain messages are all the same). A zero
    ``t_j`` (an erasure) would make ``P = 0`` and ``0 / 0``; the ``tanh`` argument is offset by
    :data:`_T_OFFSET` so that ``t_j`` is tiny instead, and the product of the others survives.
    """
    d, m, f = v2c.shape
    cap = min(limit, _LARGEST_FINITE[v2c.dtype])
    if d == 1:  # a degree-1 check forces its variable to 0
        out.fill_(cap)
        return
    t = torch.add(ws.offset, v2c, alpha=0.5, out=ws("work", d, m, f)).tanh_()
    prod = torch.prod(t, dim=0, keepdim=True, out=ws("prod", 1, m, f))
    torch.add(t, prod, out=out)  # t_j + P
    out.div_(t.sub_(prod)).log_().nan_to_num_(cap, cap, -cap)
    if cap < _LARGEST_FINITE[v2c.dtype]:
        out.clamp_(-cap, cap)


def _check_min_sum(v2c: torch.Tensor, out: torch.Tensor, ws: _Workspace, limit: float,
                   normalization: float, offset: float) -> None:
    """(Normalized / offset) min-sum check update of ``v2c [d, m, F]`` into ``out``.

    ``|out_j| = min_{i != j} |in_i|`` (:func:`_leave_one_out` with ``torch.minimum``, exact with
    ties), ``sign(out_j) = prod_{i != j} sign(in_i) = sign(in_j) * prod_i sign(in_i)``; the sign of
    the product of the inputs is the product of their signs (see :func:`_parity_ok`).
    """
    d, m, f = v2c.shape
    if d == 1:  # a degree-1 check forces its variable to 0
        out.fill_(limit)
    else:
        a = torch.abs(v2c, out=ws("work", d, m, f))
        _leave_one_out(a, out, ws("suffix", d, m, f), torch.minimum).clamp_(max=limit)
    if normalization != 1.0:
        out.mul_(normalization)
    if offset != 0.0:
        out.sub_(offset).clamp_(min=0.0)
    sign_prod = torch.prod(v2c, dim=0, keepdim=True, out=ws("prod", 1, m, f))
    torch.copysign(ws.one, sign_prod, out=sign_prod)
    torch.copysign(out, v2c, out=out).mul_(sign_prod)


def _parity_ok(gathered: torch.Tensor, ws: _Workspace) -> torch.Tensor:
    """``[d, m, F]`` internal LLRs of each check's variables -> ``[F]`` all checks satisfied.

    A variable decides 1 where its LLR has the sign bit set (:func:`torch.signbit`, so ``-0.0``
    decides 1 and ``+0.0`` decides 0). The sign of a floating-point product is the xor of the
    factors' signs even when it under- or overflows (IEEE 754), so a check holds iff the product of
    its variables' LLRs has a clear sign bit: one fast reduction over ``d``. The sign bits are then
    read as those of the products' bit patterns viewed as integers (``amin >= 0``: all clear), which
    is ~20x faster on CPU than ``signbit(...).any(...)`` on booleans.
    """
    d, m, f = gathered.shape
    prod = torch.prod(gathered, dim=0, out=ws("parity", m, f))
    return prod.view(_SAME_WIDTH_INT[prod.dtype]).amin(dim=0) >= 0


class BPDecoder(DeviceTables):
    """Belief-propagation decoder of a binary LDPC code given by its parity-check matrix ``H``.

    Args:
        H: ``[m, n]`` 0/1 parity-check matrix, dense (numpy/torch) or ``scipy.sparse``.
        algorithm: ``"sum-product"`` (exact BP, log domain) or ``"min-sum"``.
        normalization: min-sum scale ``alpha`` of check messages (1.0 = plain min-sum; 0.75-0.8
            is the usual normalized min-sum). Min-sum only.
        offset: min-sum offset ``beta`` subtracted from check-message magnitudes (floored at 0).
            Min-sum only.
        max_iter: the most BP iterations per frame.
        early_stop: stop a frame as soon as its hard decisions satisfy all checks (tested before
            every iteration); otherwise every frame runs ``max_iter`` iterations.
        schedule: ``"flooding"`` (all checks, then all variables) or ``"layered"`` (checks in
            groups without a shared variable, each group's result used at once by the next; about
            half the iterations of flooding for the same result, more Python steps per iteration).
        message_limit: magnitude at which check messages and input LLRs are clipped (default
            :data:`~commsim.channels.base.LLR_LIMIT`; sum-product check messages saturate below it
            in float32, at ~17.4).
        chunk_size: width of the pool of frames decoded side by side (a finished frame's slot is
            refilled from the input); ``None`` = 256 on CPU (messages stay in cache: faster than one
            big batch) and the whole batch elsewhere. Results do not depend on it.

    Call: ``decoder(llr) -> (bits, converged, iterations)``

    - ``llr``: ``[F, n]`` float tensor, ``log P(b=1|r)/P(b=0|r)``; computed in float64 if given in
      float64, else in float32, on ``llr``'s device.
    - ``bits``: ``[F, n]`` uint8 {0,1}, the hard decisions of the a-posteriori LLRs when the frame
      stopped (0 where an a-posteriori LLR is exactly 0).
    - ``converged``: ``[F]`` bool, the hard decisions satisfy every parity check.
    - ``iterations``: ``[F]`` int32, BP iterations run for the frame (0 if the channel decisions
      were already a codeword).

    No device is fixed at construction: ``.to(device)`` moves the graph, and a call with ``llr`` on
    another device uses a copy of the graph made for that device.
    """

    def __init__(
        self,
        H,
        algorithm: str = "sum-product",
        normalization: float = 1.0,
        offset: float = 0.0,
        max_iter: int = 50,
        early_stop: bool = True,
        schedule: str = "flooding",
        message_limit: float = LLR_LIMIT,
        chunk_size: int | None = None,
    ):
        super().__init__()
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        if algorithm == "sum-product" and (normalization != 1.0 or offset != 0.0):
            raise ValueError("normalization and offset apply to min-sum only")
        if not normalization > 0:
            raise ValueError(f"normalization must be > 0, got {normalization}")
        if not offset >= 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        if int(max_iter) != max_iter or max_iter < 0:
            raise ValueError(f"max_iter must be an integer >= 0, got {max_iter}")
        if not message_limit > 0:
            raise ValueError(f"message_limit must be > 0, got {message_limit}")
        self.algorithm = algorithm
        self.normalization = float(normalization)
        self.offset = float(offset)
        self.max_iter = int(max_iter)
        self.early_stop = bool(early_stop)
        self.schedule = schedule
        self.message_limit = float(message_limit)
        if chunk_size is not None and (int(chunk_size) != chunk_size or chunk_size < 1):
            raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size}")
        self.chunk_size = None if chunk_size is None else int(chunk_size)

        n, m, rows = parity_check_lists(H)
        self.n, self.m = n, m
        self.num_edges = int(sum(r.size for r in rows))
        check_vars = _padded(rows, n)
        self.check_degree = check_vars.shape[1]
        self.register_buffer("check_vars", torch.from_numpy(check_vars), persistent=False)
        self.num_layers = 0
        if schedule == "layered":
            layers = _layers(rows, n)
            self.num_layers = len(layers)
            for i, members in enumerate(layers):
                padded = _padded([rows[c] for c in members], n)
                self.register_buffer(f"layer_vars_{i}", torch.from_numpy(padded), persistent=False)

    def extra_repr(self) -> str:
        extra = ""
        if self.algorithm == "min-sum":
            extra = f", normalization={self.normalization}, offset={self.offset}"
        layers = f" ({self.num_layers} layers)" if self.schedule == "layered" else ""
        return (
            f"n={self.n}, m={self.m}, edges={self.num_edges}, algorithm={self.algorithm}{extra}, "
            f"max_iter={self.max_iter}, early_stop={self.early_stop}, schedule={self.schedule}{layers}"
        )

    # -- decoding ---------------------------------------------------------------------------------
    def _check_update(self, v2c: torch.Tensor, out: torch.Tensor, ws: _Workspace) -> None:
        if self.algorithm == "sum-product":
            _check_sum_product(v2c, out, ws, self.message_limit)
        else:
            _check_min_sum(v2c, out, ws, self.message_limit, self.normalization, self.offset)

    @torch.no_grad()
    def forward(self, llr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        check_llr_tensor(llr, self.n)
        device = llr.device
        tables = self._tables(device)
        frames = llr.shape[0]
        bits = torch.zeros(frames, self.n, dtype=torch.uint8, device=device)
        converged = torch.zeros(frames, dtype=torch.bool, device=device)
        iterations = torch.full((frames,), self.max_iter, dtype=torch.int32, device=device)
        if frames == 0:
            return bits, converged, iterations

        width = min(frames, self.chunk_size or (_CPU_CHUNK if device.type == "cpu" else frames))
        _Run(self, llr, tables, width, bits, converged, iterations).decode()
        return bits, converged, iterations

    # -- numpy adapter ----------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, llr, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Numpy in, numpy out: ``llr [F, n]`` -> ``(bits [F, n] uint8, converged [F] bool)``.

        The callable that channel codes plug in. ``llr`` follows the logit convention; a single
        frame ``[n]`` gives ``([n], [])``. Runs on the device of the decoder's buffers, in chunks of
        ``batch_size`` frames.
        """
        array = np.asarray(llr, dtype=np.float32)
        single = array.ndim == 1
        if single:
            array = array[None]
        if array.ndim != 2 or array.shape[1] != self.n:
            raise ValueError(f"llr must have shape [F, {self.n}], got {list(np.shape(llr))}")
        device = self.check_vars.device
        bits = np.empty(array.shape, dtype=np.uint8)
        ok = np.empty(array.shape[0], dtype=bool)
        for start in range(0, array.shape[0], batch_size):
            chunk = torch.from_numpy(array[start:start + batch_size]).to(device)
            b, c, _ = self(chunk)
            bits[start:start + batch_size] = b.cpu().numpy()
            ok[start:start + batch_size] = c.cpu().numpy()
        if single:
            return bits[0], ok[0]
        return bits, ok


class _Run:
    """One call of :class:`BPDecoder`: a pool of ``width`` frame slots, refilled from the input.

    Slot ``s`` holds frame ``frame[s]`` (``-1``: empty) after ``iters[s]`` iterations; all tensors
    keep slots in their last dimension. At the start of every pass the hard decisions of all slots
    are checked; a frame whose checks all hold (or that reached ``max_iter``) is written out and its
    slot is given the next input frame, whose channel decisions are checked at once (iteration 0,
    as commpy does). So the pool stays full while input lasts: no pass runs on a handful of
    stragglers while the rest of the batch waits. Once the input is used up, finished slots are
    dropped when they are half of the pool (compaction copies all messages).

    Every frame's arithmetic is independent of the others, so the results do not depend on the
    pool width or on which frames share a pass.
    """

    def __init__(self, dec: BPDecoder, llr, tables, width, bits, converged, iterations):
        self.dec, self.llr, self.bits, self.converged, self.iterations = dec, llr, bits, converged, iterations
        self.n, self.max_iter, self.early_stop = dec.n, dec.max_iter, dec.early_stop
        self.device = llr.device
        self.dtype = torch.float64 if llr.dtype == torch.float64 else torch.float32
        self.ws = _Workspace(self.dtype, self.device)
        check_vars = tables["check_vars"]
        self.m, self.d = check_vars.shape
        self.edges = check_vars.t().reshape(-1)  # degree-major: edge (j, c) at j * m + c
        self.layered = dec.schedule == "layered"
        # per layer: (degree-major variable indices [d_l * m_l], d_l, m_l)
        self.layers = [(lv.t().reshape(-1), lv.shape[1], lv.shape[0])
                       for lv in (tables[f"layer_vars_{i}"] for i in range(dec.num_layers))]
        self.next_frame = 0
        self.frame = torch.full((width,), -1, dtype=torch.long, device=self.device)
        self.iters = torch.zeros(width, dtype=torch.int32, device=self.device)
        self.fresh = torch.zeros(width, dtype=torch.bool, device=self.device)  # c2v not yet zero
        ws, n = self.ws, self.n
        self.state = {"total": ws("total", n + 1, width)}
        if self.layered:
            for i, (_, dl, ml) in enumerate(self.layers):
                self.state[f"c2v{i}"] = ws(f"c2v{i}", dl, ml, width).zero_()  # finite: 0 * c2v = 0
        else:
            self.state["channel"] = ws("channel", n + 1, width)
            self.state["c2v"] = ws("c2v", self.d, self.m, width).zero_()

    # -- slots ------------------------------------------------------------------------------------
    def load(self, slots: torch.Tensor) -> torch.Tensor:
        """Put the next input frames into ``slots`` (as many as are left); return the slots used."""
        count = min(slots.numel(), self.llr.shape[0] - self.next_frame)
        slots = slots[:count]
        if count == 0:
            return slots
        start, self.next_frame = self.next_frame, self.next_frame + count
        limit = self.dec.message_limit
        channel = torch.empty(self.n + 1, count, dtype=self.dtype, device=self.device)
        # internal LLRs L = log P(0)/P(1); rsub keeps erasures at +0.0; the dummy variable n is "0"
        channel[: self.n] = torch.rsub(self.llr[start:start + count].to(self.dtype).t(), 0.0).clamp_(-limit, limit)
        channel[self.n] = _PAD_LLR
        for key, tensor in self.state.items():  # index_copy_: the fastest column write
            if not key.startswith("c2v"):  # total, channel
                tensor.index_copy_(1, slots, channel)
        self.fresh[slots] = True  # their stale c2v is masked out of their first pass (old_c2v_weight)
        self.frame[slots] = torch.arange(start, start + count, device=self.device)
        self.iters[slots] = 0
        return slots

    def write(self, slots: torch.Tensor, ok: torch.Tensor) -> None:
        """Write out the frames in ``slots`` (their checks hold where ``ok``) and empty the slots."""
        ids = self.frame[slots]
        self.bits[ids] = torch.signbit(self.state["total"].index_select(1, slots)[: self.n]).t().to(torch.uint8)
        self.converged[ids] = ok
        self.iterations[ids] = self.iters[slots]
        self.frame[slots] = -1

    def gather(self, total: torch.Tensor, name: str = "v2c") -> torch.Tensor:
        """``[d, m, F]``: the current ``total`` of every check's variables (padded edges)."""
        f = total.shape[1]
        return torch.index_select(total, 0, self.edges, out=self.ws(name, self.d * self.m, f)).view(self.d, self.m, f)

    def finished(self, ok: torch.Tensor, at_limit: torch.Tensor) -> torch.Tensor:
        return (ok | at_limit) if self.early_stop else at_limit

    def check_and_refill(self, gathered: torch.Tensor) -> bool:
        """Write out finished frames, refill free slots; ``True`` once every frame is written.

        Free slots are refilled once they are a sixteenth of the pool (or the pool is empty):
        writing columns of frames-last tensors costs a few ns per element plus per-call overhead,
        so refilling one slot at a time would cost more than the idle slots waste.
        """
        width = self.frame.numel()
        live = self.frame >= 0
        at_limit = self.iters >= self.max_iter
        if self.early_stop or bool((live & at_limit).any()):
            ok = _parity_ok(gathered, self.ws)
            done = (live & self.finished(ok, at_limit)).nonzero().squeeze(1)
            if done.numel():
                self.write(done, ok[done])
        free = (self.frame < 0).nonzero().squeeze(1)
        while free.numel() * 16 >= width and self.next_frame < self.llr.shape[0]:
            slots = self.load(free)
            new = self.gather(self.state["total"].index_select(1, slots), name="new")
            if not self.layered:  # the flooding pass takes its v2c from gathered
                gathered.index_copy_(2, slots, new)
            if not (self.early_stop or self.max_iter == 0):
                break
            ok_new = _parity_ok(new, self.ws)  # iteration 0 of the new frames
            done_new = self.finished(ok_new, torch.full_like(ok_new, self.max_iter == 0))
            if not bool(done_new.any()):
                break
            self.write(slots[done_new], ok_new[done_new])
            free = (self.frame < 0).nonzero().squeeze(1)
        return not bool((self.frame >= 0).any())

    def compact(self, gathered: torch.Tensor) -> torch.Tensor:
        """Once the input is used up, drop empty slots when they are half the pool.

        Compaction gathers columns of every message tensor (strided, a few times the cost of an
        elementwise pass), so it is worth it only when much of the pool is idle.
        """
        live = self.frame >= 0
        width, count = live.numel(), int(live.sum())
        if self.next_frame < self.llr.shape[0] or (width - count) * 2 < width:
            return gathered
        keep = live.nonzero().squeeze(1)
        self.frame, self.iters, self.fresh = self.frame[keep], self.iters[keep], self.fresh[keep]
        for key, tensor in self.state.items():
            self.state[key] = self.ws(key, *tensor.shape[:-1], count).copy_(tensor.index_select(-1, keep))
        if self.layered:
            return gathered
        return self.ws("v2c", self.d, self.m, count).copy_(gathered.index_select(-1, keep))

    # -- decoding ---------------------------------------------------------------------------------
    def decode(self) -> None:
        self.load(torch.arange(self.frame.numel(), device=self.device))
        while True:
            gathered = self.gather(self.state["total"])  # flooding: v2c + c2v; layered: parity only
            if self.check_and_refill(gathered):
                return
            gathered = self.compact(gathered)
            weight = self.old_c2v_weight()
            if self.layered:
                self.layered_pass(weight)
            else:
                self.flooding_pass(gathered, weight)
            self.iters += 1

    def old_c2v_weight(self) -> torch.Tensor | None:
        """``None``, or ``[W]`` weights (-1, or 0 for frames loaded since the last pass) for
        ``v2c = gathered + weight * c2v``: a new frame starts with zero check messages, and masking
        its slot's stale ones inside the subtraction (``addcmul_``) costs nothing, where zeroing
        them column by column at load time cost ~5 % of the decoding time."""
        if not bool(self.fresh.any()):
            return None
        weight = self.fresh.to(self.dtype).sub_(1.0)
        self.fresh.zero_()
        return weight

    @staticmethod
    def subtract_old(v2c: torch.Tensor, c2v: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        return v2c.sub_(c2v) if weight is None else v2c.addcmul_(c2v, weight)

    def flooding_pass(self, gathered: torch.Tensor, weight: torch.Tensor | None) -> None:
        c2v, channel = self.state["c2v"], self.state["channel"]
        f = c2v.shape[2]
        v2c = self.subtract_old(gathered, c2v, weight)
        self.dec._check_update(v2c, c2v, self.ws)
        total = self.state["total"].copy_(channel)
        total.index_add_(0, self.edges, c2v.view(self.d * self.m, f))
        total[self.n] = _PAD_LLR

    def layered_pass(self, weight: torch.Tensor | None) -> None:
        total = self.state["total"]
        f = total.shape[1]
        for i, (idx, dl, ml) in enumerate(self.layers):
            c2v = self.state[f"c2v{i}"]
            v2c = torch.index_select(total, 0, idx, out=self.ws("v2c", dl * ml, f)).view(dl, ml, f)
            self.subtract_old(v2c, c2v, weight)
            self.dec._check_update(v2c, c2v, self.ws)
            total.index_copy_(0, idx, v2c.add_(c2v).view(dl * ml, f))
            total[self.n] = _PAD_LLR
