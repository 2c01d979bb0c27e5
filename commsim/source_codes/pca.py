"""Transform coding: ``pca`` -- principal components, uniform scalar quantisers, greedy bit allocation.

Fitted on the training split: the mean image, the principal directions (the SVD of the centred
images), and for each of the first ``components`` (256) coefficients and each bit depth ``b`` in
``1..max_bits`` the clipping range ``a`` (among multiples of the coefficient's standard deviation)
that minimises the squared error of a ``2^b``-cell uniform quantiser on ``[-a, a]`` (reconstruction
at the cell centres; ``b = 0`` reconstructs the coefficient as 0, i.e. the mean). Bit allocation for
``k`` bits is greedy: one bit at a time to the coefficient whose training error falls most, so the
allocation for ``k`` is nested in the one for ``k + 1``. The basis is orthonormal, so the image's
squared error is the sum of the coefficients' errors plus the energy of the dropped directions.

A fixed-rate code: exactly ``k`` bits (the quantiser indices, coefficient by coefficient, MSB first);
basis, ranges and allocation are shared.
"""
from __future__ import annotations

import heapq

import numpy as np

from commsim.source_codes.base import BatchSourceCode, as_array, bits_to_ints, cached_arrays, ints_to_bits

RANGE_FACTORS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0)
"""Clipping ranges tried, in standard deviations of the coefficient."""


def quantize(c: np.ndarray, bits: int, a: float) -> np.ndarray:
    """Cell indices of a ``2^bits``-cell uniform quantiser on ``[-a, a]``."""
    cells = 2**bits
    return np.clip(np.floor((c + a) / (2 * a / cells)), 0, cells - 1).astype(np.int64)


def dequantize(idx: np.ndarray, bits: int, a: float) -> np.ndarray:
    step = 2 * a / 2**bits
    return -a + (idx + 0.5) * step


class PCACode(BatchSourceCode):
    """PCA + uniform scalar quantisers with greedy bit allocation: sends exactly k bits of quantiser
    indices; basis, ranges and allocation are shared."""

    name = "pca"

    def __init__(self, image_shape, seed: int = 0, components: int = 256, max_bits: int = 12):
        super().__init__(image_shape, seed)
        self.components = int(components)
        self.max_bits = int(max_bits)
        self.basis: np.ndarray | None = None
        self._order: np.ndarray | None = None

    def fit(self, data) -> "PCACode":
        super().fit(data)
        train = as_array(data).reshape(-1, int(np.prod(self.image_shape))).astype(np.float64)
        key = {"digest": self.train_digest, "components": self.components, "max_bits": self.max_bits, "v": 1}
        arrays = cached_arrays("pca", key, lambda: self._fit_arrays(train))
        self.basis, self.ranges = arrays["basis"], arrays["ranges"]  # (the file also keeps the fit's "errors")
        self._order = arrays["order"]
        return self

    def _fit_arrays(self, train: np.ndarray) -> dict[str, np.ndarray]:
        centred = train - train.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        p = min(self.components, vt.shape[0])
        basis = vt[:p].T  # [D, p]
        coeffs = centred @ basis
        std = coeffs.std(0) + 1e-12
        ranges = np.zeros((p, self.max_bits + 1))
        errors = np.zeros((p, self.max_bits + 1))  # mean squared error per image of each coefficient
        errors[:, 0] = (coeffs**2).mean(0)
        for b in range(1, self.max_bits + 1):
            best = np.full(p, np.inf)
            for f in RANGE_FACTORS:
                a = f * std
                err = ((dequantize(quantize(coeffs, b, a), b, a) - coeffs) ** 2).mean(0)
                better = err < best
                best[better], ranges[better, b] = err[better], a[better]
            errors[:, b] = best
        # greedy allocation: the order in which single bits are handed out
        depth = np.zeros(p, int)
        heap = [(-(errors[i, 0] - errors[i, 1]), i) for i in range(p)]
        heapq.heapify(heap)
        order = []
        while heap:
            _, i = heapq.heappop(heap)
            order.append(i)
            depth[i] += 1
            if depth[i] < self.max_bits:
                heapq.heappush(heap, (-(errors[i, depth[i]] - errors[i, depth[i] + 1]), i))
        return {"basis": basis.astype(np.float32), "ranges": ranges, "errors": errors, "order": np.array(order)}

    @property
    def max_k(self) -> int | None:
        """``components * max_bits`` once fitted (every coefficient at full depth)."""
        return None if self._order is None else int(self._order.size)

    def allocation(self, k: int) -> np.ndarray:
        """Bits per coefficient ``[components]`` for a budget of ``k`` bits (sums to ``k``)."""
        if self._order is None:
            raise RuntimeError("fit the pca code before use")
        if not 1 <= k <= self._order.size:
            raise ValueError(f"pca takes 1..{self._order.size} bits, got {k}")
        return np.bincount(self._order[:k], minlength=self.basis.shape[1])

    def encode_batch(self, x, k):
        x = np.asarray(x, np.float32)
        self.check_shape(x.shape[1:])
        alloc = self.allocation(k)
        coeffs = (x.reshape(len(x), -1) - self.mean.reshape(1, -1)).astype(np.float64) @ self.basis
        parts = [ints_to_bits(quantize(coeffs[:, i], b, self.ranges[i, b]), b) for i, b in enumerate(alloc) if b]
        return np.concatenate(parts, 1).astype(np.uint8), np.ones(len(x), bool)

    def decode_batch(self, bits):
        bits = np.asarray(bits, np.uint8)
        alloc = self.allocation(bits.shape[1])
        coeffs = np.zeros((bits.shape[0], alloc.size))
        at = 0
        for i, b in enumerate(alloc):
            if b:
                coeffs[:, i] = dequantize(bits_to_ints(bits[:, at : at + b]), b, self.ranges[i, b])
                at += b
        x = coeffs @ self.basis.T.astype(np.float64) + self.mean.reshape(1, -1)
        return np.clip(x, 0, 1).astype(np.float32).reshape(-1, *self.image_shape), np.ones(bits.shape[0], bool)
