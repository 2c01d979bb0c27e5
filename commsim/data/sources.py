"""Image sources: fixed train / val / test splits served as float batches in [0, 1].

Block contract: a source yields ``x`` float32 ``[B, C, H, W]`` in [0, 1] with integer labels ``[B]``.
Binary sources (``binarize`` set) yield 0/1 images.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import numbers
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from commsim.core.machine import available_memory

SPLITS = ("train", "val", "test")


MAX_PIXELS = 256 * 256 * 3
"""Most values (channels x height x width) per image: 256x256 RGB."""


@dataclass
class ImageSource:
    """An in-memory image data set with fixed splits.

    ``images``: uint8 ``[N, C, H, W]`` (grey levels 0..255) or float ``[N, C, H, W]`` in [0, 1].
    ``splits``: split name -> index array into ``images``.
    ``binarize``: ``None`` (grey), ``"static"`` (threshold at ``threshold``) or ``"dynamic"``
    (each pixel drawn as Bernoulli(grey level) each time a batch is served, from the caller's generator).
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    splits: dict[str, np.ndarray]
    binarize: str | None = None
    threshold: float = 0.5
    info: dict = field(default_factory=dict)
    _served: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    """Each split's grey images as one float tensor per device, made on first use (see :meth:`served`)."""

    def __post_init__(self):
        if self.images.ndim != 4 or self.images.shape[1] not in (1, 3):
            raise ValueError(f"images must have shape [N, C, H, W] with C = 1 or 3 (grey or RGB), got {list(self.images.shape)}")
        pixels = int(np.prod(self.images.shape[1:]))
        if pixels > MAX_PIXELS:
            c, h, w = self.images.shape[1:]
            raise ValueError(f"data set {self.name!r} has images of {c}x{h}x{w} = {pixels:,} values, more than the {MAX_PIXELS:,} "
                             "commsim's codecs take (a learned codec's first layer alone would hold 500 weights per value); "
                             "downscale the images (e.g. to 28x28 or 32x32)")
        needed = self.images.size * 4  # a split served as float32
        memory = available_memory()
        if memory is not None and needed > memory:
            raise ValueError(f"data set {self.name!r} needs about {needed / 2**30:.1f} GB as float32 images, but "
                             f"{memory / 2**30:.1f} GB of memory is available; use fewer images")
        if np.issubdtype(self.images.dtype, np.floating) and self.images.size and not np.isfinite(self.images).all():
            where = self.info.get("source") or f"data set {self.name!r}"
            raise ValueError(f"{where}: float images hold NaN or infinite values; they must be numbers in [0, 1]")
        if self.binarize not in (None, "static", "dynamic"):
            raise ValueError(f"binarize must be None, 'static' or 'dynamic', got {self.binarize!r}")
        for split in SPLITS:
            if split not in self.splits or len(self.splits[split]) == 0:
                raise ValueError(f"data set {self.name!r} has an empty {split} split")

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 of what a model trained on this source learns from: the images, labels, splits and
        binarization (hex digest, computed once)."""
        h = hashlib.sha256()
        for array in (self.images, self.labels, *(self.splits[s] for s in SPLITS)):
            array = np.ascontiguousarray(array)
            h.update(f"{array.dtype.str}{array.shape}".encode())
            h.update(memoryview(array).cast("B"))
        h.update(f"{self.binarize}:{self.threshold}".encode())
        return h.hexdigest()

    @property
    def identity(self) -> str | None:
        """What names this data in cache entries beside its name: ``None`` for the embedded data sets
        (their content is fixed by the package), else the first 16 hex digits of :attr:`fingerprint`,
        so that models trained on other files (or other arrays) under the same data-set name are
        other entries."""
        return None if self.info.get("embedded") else self.fingerprint[:16]

    def with_train_size(self, n: int) -> "ImageSource":
        """This source with its training split cut to its first ``n`` images, validation and test
        unchanged: the subsets of one source are nested (the first 1,000 lie within the first 2,000), for
        data-size ablations. ``n`` equal to the split's size gives this source itself (the same data, so
        the same cache entries); a cut split has its own :attr:`fingerprint` and an :attr:`identity` even for
        an embedded data set (``info["train_size"]`` says the cut), so no model cached for the whole split
        is taken for it. ``ValueError`` unless ``n`` is a whole number from 1 to the split's size."""
        full = self.size("train")
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= full:
            raise ValueError(f"train_size must be a whole number from 1 to the {full:,} training images of "
                             f"{self.name!r}, got {n!r}")
        if int(n) == full:
            return self
        info = {k: v for k, v in self.info.items() if k != "embedded"} | {"train_size": int(n)}
        return dataclasses.replace(self, splits={**self.splits, "train": self.splits["train"][: int(n)]}, info=info)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.images.shape[1:])

    @property
    def binary(self) -> bool:
        return self.binarize is not None

    def size(self, split: str) -> int:
        return len(self._indices(split))

    def _indices(self, split: str) -> np.ndarray:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        return self.splits[split]

    def _grey(self, idx: np.ndarray) -> torch.Tensor:
        arr = self.images[idx]
        x = torch.from_numpy(np.ascontiguousarray(arr))
        return x.float() / 255.0 if arr.dtype == np.uint8 else x.float()

    def _finish(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if self.binarize == "static":
            return (x > self.threshold).float()
        if self.binarize == "dynamic":  # drawn on the generator's device (the CPU's for data order), then moved
            return (torch.rand(x.shape, generator=generator).to(x.device) < x).float()
        return x

    def served(self, split: str, device: torch.device | str = "cpu") -> torch.Tensor:
        """The split's grey images ``[n, C, H, W]`` as one float32 tensor on ``device``, made once and kept
        (batches are index gathers from it: no per-batch conversion, no per-batch copy to the device)."""
        key = (split, str(torch.device(device)))
        if key not in self._served:
            self._served[key] = self._grey(self._indices(split)).to(device)
        return self._served[key]

    def tensors(self, split: str, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole split as ``(x [n, C, H, W], labels [n])``."""
        idx = self._indices(split)
        return self._finish(self._grey(idx), generator), torch.from_numpy(self.labels[idx].astype(np.int64))

    def batches(self, split: str, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
                limit: int | None = None, device: torch.device | str = "cpu") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(x [B, C, H, W] on device, labels [B] on the CPU)``: index gathers from :meth:`served`;
        shuffling (one ``torch.randperm`` per pass) and dynamic binarization draw from ``generator``.
        ``limit`` caps the number of images."""
        n = self.size(split) if limit is None else min(int(limit), self.size(split))
        grey, labels = self.served(split, device), self.labels[self._indices(split)]
        rows = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for chunk in rows.split(batch_size):
            yield self._finish(grey[chunk.to(grey.device)], generator), torch.from_numpy(labels[chunk.numpy()].astype(np.int64))

    def mean_image(self) -> torch.Tensor:
        """Pixel-wise mean of the training split, ``[C, H, W]`` (the zero-information reconstruction)."""
        x, _ = self.tensors("train", torch.Generator().manual_seed(0))
        return x.mean(0)


def split_in_order(n: int, n_train: int, n_val: int, n_test: int | None = None) -> dict[str, np.ndarray]:
    """Fixed splits in file order: the first ``n_train`` for training, the next ``n_val`` for validation,
    then ``n_test`` (default: the rest) for test."""
    if n_test is None:
        n_test = n - n_train - n_val
    if n_train + n_val + n_test > n or min(n_train, n_val, n_test) <= 0:
        raise ValueError(f"cannot split {n} images into train {n_train}, val {n_val}, test {n_test}")
    return {
        "train": np.arange(0, n_train),
        "val": np.arange(n_train, n_train + n_val),
        "test": np.arange(n_train + n_val, n_train + n_val + n_test),
    }
