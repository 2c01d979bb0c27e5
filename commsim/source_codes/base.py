"""The source-code contract of the separated baselines, bit helpers and a small on-disk cache.

A source code turns one image into a bit string of at most ``k`` bits and back::

    code = get_source_code("jpeg", image_shape=(1, 28, 28)).fit(source)   # or fit(train [N, C, H, W])
    payload = code.encode(img, k)     # img [C, H, W] float in [0, 1] -> uint8 [<= k] {0,1}, or None
    img_hat = code.decode(bits)       # bits [k] (the payload then pad bits) -> [C, H, W] float, or None

``encode`` returns ``None`` when the image cannot be coded in ``k`` bits (only variable-rate codes:
``jpeg``, ``webp``, ``jpeg2000``); ``needed_bits(img)`` then says how many it would need. The payload
is followed on the link by ``pad_bit`` up to ``k`` bits; ``decode`` takes all ``k`` bits (the payload
and its padding) and returns ``None`` when the bits say "no image" or cannot be parsed. Batch forms
``encode_batch(x [B, C, H, W], k) -> (bits [B, k] uint8, fits [B] bool)`` and
``decode_batch(bits [B, k]) -> (x_hat [B, C, H, W] float32, ok [B] bool)`` put the training-mean
image where ``ok`` is False.

Only bits that must cross the channel are counted: whatever both ends fix in advance (tables, headers
that are constant for a configuration, the image size) is shared, not sent. Each code documents what it
strips.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from commsim.data.sources import ImageSource
from commsim.core import cache


# Bits --------------------------------------------------------------------------------------------

def int_to_bits(value: int, width: int) -> np.ndarray:
    """``value`` as ``width`` bits, most significant first (uint8 {0,1})."""
    if width < 0 or value < 0 or (width < 64 and value >> width):
        raise ValueError(f"{value} does not fit in {width} bits")
    return np.array([(value >> (width - 1 - i)) & 1 for i in range(width)], np.uint8)


def bits_to_int(bits: np.ndarray) -> int:
    """Inverse of :func:`int_to_bits`."""
    out = 0
    for b in np.asarray(bits, np.uint8):
        out = (out << 1) | int(b)
    return out


def ints_to_bits(values: np.ndarray, width: int) -> np.ndarray:
    """``values [B]`` non-negative ints -> ``[B, width]`` bits, most significant first."""
    values = np.asarray(values, np.int64)
    return ((values[:, None] >> np.arange(width - 1, -1, -1)) & 1).astype(np.uint8)


def bits_to_ints(bits: np.ndarray) -> np.ndarray:
    """``[B, width]`` bits -> ``[B]`` int64 (inverse of :func:`ints_to_bits`)."""
    bits = np.asarray(bits, np.int64)
    return (bits << np.arange(bits.shape[1] - 1, -1, -1)).sum(1) if bits.shape[1] else np.zeros(len(bits), np.int64)


def bytes_to_bits(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, np.uint8))


def bits_to_bytes(bits: np.ndarray, pad_bit: int) -> bytes:
    """Pack bits MSB first; a partial last byte is filled with ``pad_bit``."""
    bits = np.asarray(bits, np.uint8)
    extra = (-bits.size) % 8
    if extra:
        bits = np.concatenate([bits, np.full(extra, pad_bit, np.uint8)])
    return np.packbits(bits).tobytes()


def strip_trailing(bits: np.ndarray, value: int, limit: int | None = None) -> np.ndarray:
    """Drop trailing bits equal to ``value``, at most ``limit`` of them (lossless when the receiver
    appends at least that many ``value`` bits)."""
    keep = np.nonzero(np.asarray(bits) != value)[0]
    end = keep[-1] + 1 if keep.size else 0
    if limit is not None:
        end = max(end, bits.size - limit)
    return bits[:end]


def to_uint8(img: np.ndarray) -> np.ndarray:
    """``[C, H, W]`` float in [0, 1] -> grey levels uint8 ``[C, H, W]`` (rounded)."""
    return np.clip(np.rint(np.asarray(img, np.float64) * 255.0), 0, 255).astype(np.uint8)


def as_array(data) -> np.ndarray:
    """Training images as float32 ``[N, C, H, W]``: an :class:`ImageSource` (its train split) or an array."""
    if isinstance(data, ImageSource):
        x, _ = data.tensors("train", torch.Generator().manual_seed(0))
        return x.numpy().astype(np.float32)
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    data = np.asarray(data, np.float32)
    if data.ndim != 4:
        raise ValueError(f"training images must have shape [N, C, H, W], got {list(data.shape)}")
    return data


def data_digest(train: np.ndarray) -> str:
    """A short hash of training data (names cache entries)."""
    return hashlib.sha256(np.ascontiguousarray(train).tobytes()).hexdigest()[:12]


# Cache -------------------------------------------------------------------------------------------

def cache_folder() -> Path:
    """``$COMMSIM_HOME/separated`` (default ``~/.cache/commsim/separated``): fitted codebooks."""
    return cache.folder("separated")


def cached_arrays(kind: str, key: dict, compute) -> dict[str, np.ndarray]:
    """``compute() -> dict of arrays``, stored as ``<cache>/<kind>-<hash of key>.npz`` and reused:
    :func:`commsim.core.cache.cached_arrays` (the file holds its key; a damaged or foreign file is
    ignored with a :class:`~commsim.core.cache.CacheWarning` and computed again; processes fitting
    the same thing at once fit it once)."""
    path = cache_folder() / f"{kind}-{cache.digest(key, 16)}.npz"
    return cache.cached_arrays(path, key, compute, what=f"{kind} fit")


class LRU(OrderedDict):
    """A bounded dict: the oldest entries go first."""

    def __init__(self, size: int = 20000):
        super().__init__()
        self.size = size

    def put(self, key, value):
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)
        return value


# Contract ----------------------------------------------------------------------------------------

class SourceCode:
    """Base class: ``fit`` stores the training mean (the reconstruction of a failed frame);
    subclasses implement ``encode`` and ``decode`` (and may override the batch forms).

    ``variable_rate``: the payload size depends on the image (it may not fit); fixed-rate codes
    always send exactly ``k`` bits. ``pad_bit``: what follows a short payload on the link.
    ``max_k``: the most bits per image the code takes (``None``: no limit); schemes leave out the
    channel codes that carry more.
    """

    name = "source"
    variable_rate = False
    pad_bit = 0
    max_k: int | None = None

    def __init__(self, image_shape: tuple[int, int, int], seed: int = 0):
        self.image_shape = tuple(int(s) for s in image_shape)
        if len(self.image_shape) != 3 or self.image_shape[0] not in (1, 3):
            raise ValueError(f"image_shape must be (C, H, W) with C = 1 or 3, got {image_shape}")
        self.seed = int(seed)
        self.mean: np.ndarray | None = None
        self.train_digest = ""

    def fit(self, data) -> "SourceCode":
        """Learn from the training images (an :class:`ImageSource` or ``[N, C, H, W]`` in [0, 1])."""
        train = as_array(data)
        self.check_shape(train.shape[1:])
        self.mean = train.mean(0)
        self.train_digest = data_digest(train)
        return self

    def check_shape(self, shape) -> None:
        if tuple(shape) != self.image_shape:
            raise ValueError(f"{self.name} was built for images {list(self.image_shape)}, got {list(shape)}")

    def encode(self, img: np.ndarray, k: int) -> np.ndarray | None:
        raise NotImplementedError

    def decode(self, bits: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def needed_bits(self, img: np.ndarray) -> int:
        """The fewest bits this image can be coded in (fixed-rate codes: 1)."""
        return 1

    def empty_payload(self, k: int) -> np.ndarray:
        """The payload that says "no image" (a variable-rate code whose image did not fit)."""
        return np.zeros(0, np.uint8)

    def pad(self, payload: np.ndarray, k: int) -> np.ndarray:
        if payload.size > k:
            raise ValueError(f"{self.name} payload of {payload.size} bits exceeds k = {k}")
        return np.concatenate([payload.astype(np.uint8), np.full(k - payload.size, self.pad_bit, np.uint8)])

    def encode_batch(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``x [B, C, H, W]`` -> ``(bits [B, k] uint8, fits [B] bool)``; a misfit carries ``empty_payload``."""
        x = np.asarray(x, np.float32)
        out = np.zeros((x.shape[0], k), np.uint8)
        fits = np.zeros(x.shape[0], bool)
        for i, img in enumerate(x):
            payload = self.encode(img, k)
            fits[i] = payload is not None
            out[i] = self.pad(payload if payload is not None else self.empty_payload(k)[:k], k)
        return out, fits

    def decode_batch(self, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``bits [B, k]`` -> ``(x_hat [B, C, H, W] float32, ok [B] bool)``; the mean image where not ok."""
        bits = np.asarray(bits, np.uint8)
        out = np.empty((bits.shape[0], *self.image_shape), np.float32)
        ok = np.zeros(bits.shape[0], bool)
        for i, row in enumerate(bits):
            try:
                img = self.decode(row)
            except Exception:  # a corrupted stream that a library refuses  # noqa: BLE001
                img = None
            ok[i] = img is not None
            out[i] = img if img is not None else self.mean
        return out, ok


class BatchSourceCode(SourceCode):
    """A fixed-rate code written batch-first: subclasses implement ``encode_batch`` and
    ``decode_batch``; the one-image forms run them on a batch of one."""

    def encode(self, img, k):
        return self.encode_batch(np.asarray(img)[None], k)[0][0]

    def decode(self, bits):
        return self.decode_batch(np.asarray(bits)[None])[0][0]
