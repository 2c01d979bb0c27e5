"""Vector quantisation of whole images: ``vq``.

``k`` bits name one of ``2^k`` codewords fitted by k-means on the training split (squared error, the
``l2_per_image`` distortion). A fixed-rate code: every image costs exactly ``k`` bits, nothing else is
sent, the codebook is shared.

- ``k <= direct_max_bits`` (12): one k-means codebook of ``2^k`` images (full search).
- ``k > direct_max_bits``: a 2^k-word codebook cannot be fitted (the embedded MNIST has 8,000
  training images) or searched, so the code becomes **residual VQ**: stages of ``stage_bits`` (8) bits,
  each a k-means codebook of the residual the previous stages leave, plus one smaller last stage for the
  remainder ``k mod stage_bits``; encoding is greedy stage by stage. Stages are nested, so the codebooks
  for one ``k`` are reused by every larger ``k``. This is a practical proxy for a 2^k-point VQ, not
  one.
- ``k <= max_k`` (1,024): each stage is a cached k-means codebook of 2^8 images (0.7 MB for 28x28
  digits, fitted in about 0.4 s), so 1,024 bits already take 128 stages, about 90 MB of cache and a
  minute.

k-means: Lloyd iterations in torch on the full training split (it is small), initialised from distinct
training images drawn with the code's seed; a codeword left empty is moved to the image worst served.
Codebooks are cached in :func:`commsim.source_codes.base.cache_folder`.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from commsim.source_codes.base import BatchSourceCode, as_array, bits_to_ints, cached_arrays, ints_to_bits


def nearest(data: torch.Tensor, codebook: torch.Tensor, chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of the nearest codeword ``[N]`` and the squared distance ``[N]`` for ``data [N, D]``."""
    c2 = (codebook * codebook).sum(1)
    idx, dist = [], []
    for start in range(0, data.shape[0], chunk):
        x = data[start : start + chunk]
        d = torch.addmm(c2, x, codebook.T, alpha=-2) + (x * x).sum(1, keepdim=True)
        best, arg = d.min(1)
        idx.append(arg)
        dist.append(best.clamp_min(0))
    return torch.cat(idx), torch.cat(dist)


def cluster_sums(data: torch.Tensor, idx: torch.Tensor, clusters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-cluster sums ``[clusters, D]`` and counts ``[clusters]`` (a sparse one-hot product, much
    faster on the CPU than ``index_add_``)."""
    n = data.shape[0]
    onehot = sp.csr_matrix((np.ones(n, np.float32), (idx.numpy(), np.arange(n))), shape=(clusters, n))
    sums = torch.from_numpy(np.asarray(onehot @ data.numpy(), np.float32))
    return sums, torch.from_numpy(np.bincount(idx.numpy(), minlength=clusters).astype(np.float32))


def kmeans(data: torch.Tensor, clusters: int, seed: int = 0, iters: int = 10) -> torch.Tensor:
    """Lloyd's k-means on ``data [N, D]`` float32 -> codebook ``[clusters, D]`` (deterministic in ``seed``)."""
    n = data.shape[0]
    generator = torch.Generator().manual_seed(seed)
    if clusters >= n:
        extra = torch.randint(n, (clusters - n,), generator=generator)
        return torch.cat([data, data[extra]]).clone()
    codebook = data[torch.randperm(n, generator=generator)[:clusters]].clone()
    for _ in range(iters):
        idx, dist = nearest(data, codebook)
        sums, counts = cluster_sums(data, idx, clusters)
        filled = counts > 0
        codebook[filled] = sums[filled] / counts[filled, None]
        empty = torch.nonzero(~filled).flatten()
        if empty.numel():  # move empty codewords to the worst-served images
            worst = torch.topk(dist, empty.numel()).indices
            codebook[empty] = data[worst]
    return codebook


class VQCode(BatchSourceCode):
    """Vector quantiser (k-means, 2^k codewords; residual stages of 8 bits beyond k = 12): sends the
    codeword index, exactly k bits; the codebook is shared."""

    name = "vq"
    max_k = 1024

    def __init__(self, image_shape, seed: int = 0, direct_max_bits: int = 12, stage_bits: int = 8, iters: int = 10):
        super().__init__(image_shape, seed)
        self.direct_max_bits = int(direct_max_bits)
        self.stage_bits = int(stage_bits)
        self.iters = int(iters)
        self._train: torch.Tensor | None = None
        self._stages: dict[tuple, torch.Tensor] = {}

    def fit(self, data) -> "VQCode":
        super().fit(data)
        self._train = torch.from_numpy(as_array(data).reshape(-1, int(np.prod(self.image_shape))))
        return self

    def plan(self, k: int) -> list[int]:
        """Bits of each stage for a budget of ``k`` bits."""
        if not 1 <= k <= self.max_k:
            raise ValueError(f"vq takes 1..{self.max_k:,} bits, got {k:,}")
        if k <= self.direct_max_bits:
            return [k]
        full, rest = divmod(k, self.stage_bits)
        return [self.stage_bits] * full + ([rest] if rest else [])

    def codebooks(self, k: int) -> list[torch.Tensor]:
        """The stage codebooks ``[2^b, D]`` for ``k`` bits (fitted on first use, then cached)."""
        if self._train is None:
            raise RuntimeError("fit the vq code before use")
        plan = self.plan(k)
        books, residual = [], None
        for depth in range(len(plan)):
            prefix = tuple(plan[: depth + 1])
            if prefix not in self._stages:
                if residual is None:
                    residual = self._residual(books)
                key = {"digest": self.train_digest, "plan": list(prefix), "seed": self.seed, "iters": self.iters}
                arrays = cached_arrays("vq", key, lambda: {"codebook": kmeans(
                    residual, 2 ** prefix[-1], seed=self.seed + depth, iters=self.iters).numpy()})
                self._stages[prefix] = torch.from_numpy(arrays["codebook"])
            book = self._stages[prefix]
            books.append(book)
            if residual is not None:
                residual = residual - book[nearest(residual, book)[0]]
        return books

    def _residual(self, books: list[torch.Tensor]) -> torch.Tensor:
        residual = self._train.clone()
        for book in books:
            residual -= book[nearest(residual, book)[0]]
        return residual

    def indices(self, x: np.ndarray, k: int) -> np.ndarray:
        """Stage indices ``[B, stages]`` of images ``x [B, C, H, W]``."""
        residual = torch.from_numpy(np.asarray(x, np.float32).reshape(len(x), -1)).clone()
        out = []
        for book in self.codebooks(k):
            idx = nearest(residual, book)[0]
            residual -= book[idx]
            out.append(idx.numpy())
        return np.stack(out, 1)

    def encode_batch(self, x, k):
        x = np.asarray(x, np.float32)
        self.check_shape(x.shape[1:])
        idx = self.indices(x, k)
        bits = np.concatenate([ints_to_bits(idx[:, s], b) for s, b in enumerate(self.plan(k))], 1)
        return bits.astype(np.uint8), np.ones(len(x), bool)

    def decode_batch(self, bits):
        bits = np.asarray(bits, np.uint8)
        k = bits.shape[1]
        out = torch.zeros(bits.shape[0], int(np.prod(self.image_shape)))
        at = 0
        for book, b in zip(self.codebooks(k), self.plan(k)):
            out += book[torch.from_numpy(bits_to_ints(bits[:, at : at + b]))]
            at += b
        x = out.clamp(0, 1).reshape(-1, *self.image_shape).numpy()
        return x, np.ones(bits.shape[0], bool)
