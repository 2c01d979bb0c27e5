"""Image sources. ``load_dataset("mnist")`` gives the embedded digits; file formats need a path."""
from __future__ import annotations

from commsim.data import embedded, files  # noqa: F401  (registers the data sets)
from commsim.data.sources import SPLITS, ImageSource, split_in_order
from commsim.core.registry import DATASETS


def load_dataset(name: str, path: str | None = None, train_size: int | None = None, **options) -> ImageSource:
    """A data set by registered name; ``path`` for the file formats (``idx``, ``cifar10``, ...);
    ``train_size``: train on the first ``train_size`` images of its training split only
    (:meth:`ImageSource.with_train_size`; ``None``: the whole split)."""
    source = DATASETS.get(name)(path, **options) if path is not None else DATASETS.get(name)(**options)
    return source if train_size is None else source.with_train_size(train_size)


__all__ = ["ImageSource", "SPLITS", "load_dataset", "split_in_order"]
