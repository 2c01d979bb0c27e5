"""Loaders for local data-set files in standard formats: ``idx``, ``cifar10``, ``omniglot``, ``npz``.

Each loader is ``NAME(path, binarize=None, threshold=0.5, ...) -> ImageSource``; nothing downloads.
Fixed splits (all deterministic):

* ``idx`` (MNIST files): validation = the last ``val_size`` training images (default 1/6 of train,
  i.e. 10,000 of 60,000), train = the rest, test = ``t10k``.
* ``cifar10``: validation = the last ``val_size`` images of ``data_batch_1..5`` (default 1/10,
  i.e. 5,000 of 50,000), test = ``test_batch``.
* ``omniglot``: ``chardata.mat`` -> validation = the last ``val_size`` of ``data`` (default 1/10),
  test = ``testdata``; a PNG folder -> shuffled with ``numpy.random.default_rng(0)``, then 80/10/10.
* ``npz``: ``train_idx`` / ``val_idx`` / ``test_idx`` if stored, else 80/10/10 in file order.

Errors: no path -> ``ValueError``; a missing file or folder -> ``FileNotFoundError``; a malformed
file -> ``ValueError`` naming it. CIFAR batches are pickles, read with an unpickler that admits only
the three numpy globals an ndarray needs.
"""
from __future__ import annotations

import gzip
import pickle
import zipfile
import zlib
from pathlib import Path

import numpy as np

from commsim.data.sources import ImageSource, split_in_order
from commsim.core.registry import register_dataset

IDX_FILES = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
             "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}
CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
# The only globals a pickled uint8 ndarray needs (numpy 1.x and 2.x module names).
PICKLE_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                  ("numpy", "ndarray"), ("numpy", "dtype")}


# ---------------------------------------------------------------------------------------- helpers
def _root(path: str | None, name: str, expected: str) -> Path:
    if path is None:
        raise ValueError(f"data set {name!r} needs --data-path PATH ({expected})")
    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"data set {name!r}: {root} does not exist; expected {expected}")
    return regular_file(root)


def regular_file(file: Path) -> Path:
    """``file`` if it is a regular file (or a link to one); a FIFO, socket or device would block a read
    forever or never end, so it is refused with a ``ValueError`` naming it."""
    if file.exists() and not file.is_file() and not file.is_dir():
        raise ValueError(f"{file} is not a regular file (a FIFO, socket or device); give a data file or folder")
    return file


def _require(root: Path, name: str, expected: str) -> Path:
    if not root.is_dir():
        raise FileNotFoundError(f"data set {name!r}: {root} is not a folder; expected {expected}")
    return root


def _source(name: str, path, fmt: str, images, labels, splits, binarize, threshold) -> ImageSource:
    return ImageSource(name, images, np.asarray(labels, dtype=np.int64), splits, binarize=binarize,
                       threshold=threshold, info={"source": str(path), "format": fmt})


def _train_test(name, path, fmt, train, test, val_size, default_div, binarize, threshold) -> ImageSource:
    """Concatenate ``(images, labels)`` for train and test; validation = the end of train."""
    (x_tr, y_tr), (x_te, y_te) = train, test
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise ValueError(f"{path}: train images {x_tr.shape[1:]} and test images {x_te.shape[1:]} differ in shape")
    n_tr = len(x_tr)
    n_val = n_tr // default_div if val_size is None else int(val_size)
    splits = split_in_order(n_tr + len(x_te), n_tr - n_val, n_val, len(x_te))
    return _source(name, path, fmt, np.concatenate([x_tr, x_te]), np.concatenate([y_tr, y_te]), splits,
                   binarize, threshold)


def _fractions(n: int, order: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """80/10/10 (validation and test at least one image each), optionally over a permutation."""
    n_val = n_test = max(1, n // 10)
    splits = split_in_order(n, n - n_val - n_test, n_val, n_test)
    return splits if order is None else {k: order[v] for k, v in splits.items()}


def _as_nchw(images: np.ndarray, where) -> np.ndarray:
    """``[N, H, W]``, ``[N, H, W, C]`` or ``[N, C, H, W]`` -> ``[N, C, H, W]``; uint8 or float in [0, 1]."""
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        images = images.transpose(0, 3, 1, 2)
    elif images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"{where}: images must be [N, H, W] (grey) or [N, H, W, C] / [N, C, H, W] with C = 1 or 3 "
                         f"(grey or RGB), got {list(images.shape)}" + (" (drop the alpha channel of RGBA images)"
                                                                     if images.ndim == 4 and 4 in (images.shape[1], images.shape[-1]) else ""))
    if np.issubdtype(images.dtype, np.floating):
        if images.size and (images.min() < 0 or images.max() > 1):  # NaN passes here: ImageSource refuses it
            raise ValueError(f"{where}: float images must lie in [0, 1]")
        return np.ascontiguousarray(images, dtype=np.float32)
    if images.dtype != np.uint8:
        raise ValueError(f"{where}: images must be uint8 or float in [0, 1], got {images.dtype}")
    return np.ascontiguousarray(images)


# -------------------------------------------------------------------------------------------- idx
def _idx_file(root: Path, stem: str) -> Path:
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(f"data set 'idx': {root / stem} not found (also tried .gz and {dotted}); "
                            f"expected the four MNIST IDX files")


def _read_idx(file: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with ``ndim`` dimensions (magic 0x0000080<ndim>)."""
    try:
        with (gzip.open if file.suffix == ".gz" else open)(regular_file(file), "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"{file}: cannot read ({err})") from None
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if magic != 0x800 + ndim:
        raise ValueError(f"{file}: not an IDX uint8 file with {ndim} dims (magic {magic!r}, want {0x800 + ndim:#010x})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{file}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    if len(raw) != header + int(np.prod(dims)):
        raise ValueError(f"{file}: {len(raw) - header} data bytes, but dims {dims} need {int(np.prod(dims))}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def _idx_pair(root: Path, part: str):
    x = _read_idx(_idx_file(root, IDX_FILES[part + "_x"]), 3)
    y = _read_idx(_idx_file(root, IDX_FILES[part + "_y"]), 1)
    if len(x) != len(y):
        raise ValueError(f"data set 'idx' in {root}: {part} has {len(x)} images but {len(y)} labels")
    return x[:, None], y


@register_dataset("idx")
def idx(path: str | None = None, binarize: str | None = None, threshold: float = 0.5,
        val_size: int | None = None) -> ImageSource:
    """MNIST IDX files in a folder (train-/t10k- images and labels, .gz optional); val = last 1/6 of train."""
    expected = "a folder with train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-* (.gz optional)"
    root = _require(_root(path, "idx", expected), "idx", expected)
    return _train_test("idx", root, "idx", _idx_pair(root, "train"), _idx_pair(root, "test"), val_size, 6,
                       binarize, threshold)


# ---------------------------------------------------------------------------------------- cifar10
class _ArrayUnpickler(pickle.Unpickler):
    """Refuses every global except those that rebuild a numpy array."""

    def find_class(self, module, name):
        if (module, name) in PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"forbidden global {module}.{name}")


def _cifar_batch(file: Path):
    try:
        with open(regular_file(file), "rb") as fh:
            batch = _ArrayUnpickler(fh, encoding="bytes").load()
        data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"{file}: not a CIFAR-10 python batch ({type(err).__name__}: {err})") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ValueError(f"{file}: want uint8 data [N, 3072] and N labels, "
                         f"got {data.dtype} {data.shape} and {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), labels


@register_dataset("cifar10")
def cifar10(path: str | None = None, binarize: str | None = None, threshold: float = 0.5,
            val_size: int | None = None) -> ImageSource:
    """CIFAR-10 python batches in a folder (data_batch_1..5, test_batch); val = last 5,000 of train."""
    expected = "a folder with the CIFAR-10 python batches data_batch_1..5 and test_batch"
    root = _require(_root(path, "cifar10", expected), "cifar10", expected)
    for name in CIFAR_FILES:
        if not (root / name).is_file():
            raise FileNotFoundError(f"data set 'cifar10': {root / name} not found; expected {expected}")
    batches = [_cifar_batch(root / name) for name in CIFAR_FILES]
    train = tuple(np.concatenate(parts) for parts in zip(*batches[:5]))
    return _train_test("cifar10", root, "cifar10", train, batches[5], val_size, 10, binarize, threshold)


# --------------------------------------------------------------------------------------- omniglot
def _mat_pair(mat: dict, x_key: str, y_key: str, file: Path):
    try:
        data, target = np.asarray(mat[x_key], dtype=np.float64), np.asarray(mat[y_key])
    except KeyError as err:
        raise ValueError(f"{file}: missing key {err} (want data, target, testdata, testtarget)") from None
    if data.ndim != 2 or data.shape[0] != 784 or target.ndim != 2 or target.shape[1] != data.shape[1]:
        raise ValueError(f"{file}: want {x_key} [784, N] and {y_key} [classes, N], got {data.shape}, {target.shape}")
    images = data.reshape(28, 28, -1, order="F").transpose(2, 0, 1)  # each column is a 28x28 image, Fortran order
    return np.round(255 * np.clip(images, 0, 1)).astype(np.uint8)[:, None], target.argmax(axis=0)


def _omniglot_mat(file: Path, val_size, binarize, threshold) -> ImageSource:
    from scipy.io import loadmat

    try:
        mat = loadmat(str(file))
    except Exception as err:  # scipy raises several types for a malformed file
        raise ValueError(f"{file}: not a MATLAB file ({type(err).__name__}: {err})") from None
    train, test = _mat_pair(mat, "data", "target", file), _mat_pair(mat, "testdata", "testtarget", file)
    return _train_test("omniglot", file, "chardata.mat", train, test, val_size, 10, binarize, threshold)


def _omniglot_pngs(root: Path, binarize, threshold) -> ImageSource:
    from PIL import Image, UnidentifiedImageError

    files = sorted(f for f in root.rglob("*") if f.suffix.lower() == ".png" and f.is_file())
    if not files:
        raise FileNotFoundError(f"data set 'omniglot': no chardata.mat and no PNG files under {root}")
    if any(len(f.relative_to(root).parts) < 2 for f in files):
        raise ValueError(f"data set 'omniglot': {root} holds PNG files outside alphabet folders")
    alphabets = sorted({f.relative_to(root).parts[0] for f in files})
    images = np.empty((len(files), 1, 28, 28), dtype=np.uint8)
    for i, f in enumerate(files):
        try:
            with Image.open(f) as im:
                grey = im.convert("L")
        except (OSError, UnidentifiedImageError) as err:
            raise ValueError(f"{f}: not a readable PNG ({err})") from None
        # Omniglot PNGs draw black strokes on white; invert so strokes are bright, as in chardata.mat and MNIST
        images[i, 0] = 255 - np.asarray(grey if grey.size == (28, 28) else grey.resize((28, 28), Image.Resampling.LANCZOS))
    labels = [alphabets.index(f.relative_to(root).parts[0]) for f in files]
    splits = _fractions(len(files), np.random.default_rng(0).permutation(len(files)))
    return _source("omniglot", root, "png", images, labels, splits, binarize, threshold)


@register_dataset("omniglot")
def omniglot(path: str | None = None, binarize: str | None = None, threshold: float = 0.5,
             val_size: int | None = None) -> ImageSource:
    """Omniglot 28x28: chardata.mat (NECST) or a folder of alphabet folders of PNGs (label = alphabet)."""
    expected = "chardata.mat, or a folder with it or with alphabet folders of PNG files"
    root = _root(path, "omniglot", expected)
    mat = root / "chardata.mat" if root.is_dir() else root
    if mat.is_file():
        return _omniglot_mat(mat, val_size, binarize, threshold)
    return _omniglot_pngs(root, binarize, threshold)


# -------------------------------------------------------------------------------------------- npz
@register_dataset("npz")
def npz(path: str | None = None, binarize: str | None = None, threshold: float = 0.5) -> ImageSource:
    """A .npz with images (and optional labels, train_idx/val_idx/test_idx); else 80/10/10 in order."""
    file = _root(path, "npz", "a .npz file with images [N, H, W(, C)] and optional labels")
    try:
        data = np.load(file, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):  # a .npy file (one array) under an .npz name
            raise ValueError(f"{file}: a .npy file (one array), not an .npz; write it with numpy.savez(path, images=...)")
        with data:
            arrays = {k: data[k] for k in data.files}
    except ValueError as err:
        if str(err).startswith(str(file)):
            raise
        raise ValueError(f"{file}: not a readable .npz (ValueError: {err}); write it again with numpy.savez") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError, MemoryError) as err:
        raise ValueError(f"{file}: not a readable .npz ({type(err).__name__}: {err}); "
                         "write it again with numpy.savez") from None
    if "images" not in arrays:
        raise ValueError(f"{file}: no 'images' array (found: {', '.join(sorted(arrays)) or 'nothing'})")
    images = _as_nchw(arrays["images"], file)
    labels = arrays.get("labels", np.zeros(len(images), dtype=np.int64))
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{file}: labels must be integers [{len(images)}], got {labels.dtype} {labels.shape}")
    given = [k for k in ("train_idx", "val_idx", "test_idx") if k in arrays]
    if not given:
        return _source("npz", file, "npz", images, labels, _fractions(len(images)), binarize, threshold)
    if len(given) != 3:
        raise ValueError(f"{file}: has {', '.join(given)} but needs all of train_idx, val_idx, test_idx")
    splits = {k[:-4]: arrays[k].ravel() for k in given}
    if any(not np.issubdtype(v.dtype, np.integer) or (len(v) and (v.min() < 0 or v.max() >= len(images)))
           for v in splits.values()):
        raise ValueError(f"{file}: split indices must be integers in 0..{len(images) - 1}")
    return _source("npz", file, "npz", images, labels, splits, binarize, threshold)
