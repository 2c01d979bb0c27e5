"""Data sources: the embedded MNIST and the file loaders, on tiny files built in tmp_path."""
from __future__ import annotations

import gzip
import os
import pickle

import numpy as np
import pytest
import torch

from commsim.data import load_dataset

RNG = np.random.default_rng(123)


# ------------------------------------------------------------------------------------- embedded
def test_embedded_mnist():
    src = load_dataset("mnist")
    assert src.images.shape == (10000, 1, 28, 28) and src.images.dtype == np.uint8
    assert [src.size(s) for s in ("train", "val", "test")] == [8000, 1000, 1000]
    x, y = src.tensors("test")
    assert x.shape == (1000, 1, 28, 28) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.9
    assert set(y.tolist()) == set(range(10))
    with pytest.raises(ValueError, match="takes no path"):
        load_dataset("mnist", path="/tmp")


def test_binary_mnist_static_and_dynamic():
    x, _ = load_dataset("binary_mnist").tensors("val")
    assert set(torch.unique(x).tolist()) <= {0.0, 1.0}
    dyn = load_dataset("binary_mnist", binarize="dynamic")
    a, _ = dyn.tensors("val", torch.Generator().manual_seed(7))
    b, _ = dyn.tensors("val", torch.Generator().manual_seed(7))
    c, _ = dyn.tensors("val", torch.Generator().manual_seed(8))
    assert set(torch.unique(a).tolist()) <= {0.0, 1.0}
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_no_path_is_a_clear_error():
    for name in ("idx", "cifar10", "omniglot", "npz"):
        with pytest.raises(ValueError, match=f"data set '{name}' needs --data-path PATH"):
            load_dataset(name)


# ------------------------------------------------------------------------------------------ idx
def idx_bytes(arr: np.ndarray, magic: int | None = None) -> bytes:
    magic = 0x800 + arr.ndim if magic is None else magic
    dims = np.asarray(arr.shape, dtype=">u4").tobytes()
    return magic.to_bytes(4, "big") + dims + arr.astype(np.uint8).tobytes()


def write_idx(folder, n_train=12, n_test=5, gz=False, dotted=False):
    folder.mkdir(exist_ok=True)
    parts = {"train-images-idx3-ubyte": RNG.integers(0, 256, (n_train, 28, 28)),
             "train-labels-idx1-ubyte": np.arange(n_train) % 10,
             "t10k-images-idx3-ubyte": RNG.integers(0, 256, (n_test, 28, 28)),
             "t10k-labels-idx1-ubyte": np.arange(n_test) % 10}
    for name, arr in parts.items():
        name = name.replace("-idx", ".idx") if dotted else name
        data = idx_bytes(arr)
        if gz:
            with gzip.open(folder / (name + ".gz"), "wb") as fh:
                fh.write(data)
        else:
            (folder / name).write_bytes(data)
    return parts


@pytest.mark.parametrize("gz,dotted", [(False, False), (True, False), (False, True)])
def test_idx(tmp_path, gz, dotted):
    parts = write_idx(tmp_path / "mnist", gz=gz, dotted=dotted)
    src = load_dataset("idx", str(tmp_path / "mnist"))
    assert src.images.shape == (17, 1, 28, 28)
    assert [src.size(s) for s in ("train", "val", "test")] == [10, 2, 5]  # val = last 12 // 6
    x, y = src.tensors("test")
    assert x.shape == (5, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    assert np.allclose(x[:, 0].numpy() * 255, parts["t10k-images-idx3-ubyte"])
    assert y.tolist() == [0, 1, 2, 3, 4]
    assert src.tensors("val")[1].tolist() == [0, 1]  # images 10 and 11 of train
    assert src.info == {"source": str(tmp_path / "mnist"), "format": "idx"}


def test_idx_binarize_and_val_size(tmp_path):
    write_idx(tmp_path)
    src = load_dataset("idx", str(tmp_path), binarize="static", val_size=3)
    assert src.size("val") == 3
    assert set(torch.unique(src.tensors("train")[0]).tolist()) <= {0.0, 1.0}


def test_idx_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset("idx", str(tmp_path / "nowhere"))
    write_idx(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_dataset("idx", str(tmp_path))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(5), magic=0x803))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.*magic"):
        load_dataset("idx", str(tmp_path))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(5))[:-1])
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.*need 5"):
        load_dataset("idx", str(tmp_path))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(4)))
    with pytest.raises(ValueError, match="5 images but 4 labels"):
        load_dataset("idx", str(tmp_path))


# -------------------------------------------------------------------------------------- cifar10
def write_cifar(folder, per_batch=4):
    folder.mkdir(exist_ok=True)
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        batch = {b"batch_label": name.encode(), b"data": RNG.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": [(i + j) % 10 for j in range(per_batch)], b"filenames": [b"x.png"] * per_batch}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=4))


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar10(tmp_path):
    write_cifar(tmp_path)
    src = load_dataset("cifar10", str(tmp_path))
    assert src.images.shape == (24, 3, 32, 32) and src.images.dtype == np.uint8
    assert [src.size(s) for s in ("train", "val", "test")] == [18, 2, 4]  # val = last 20 // 10
    x, y = src.tensors("test")
    assert x.shape == (4, 3, 32, 32) and 0 <= x.min() and x.max() <= 1
    assert y.tolist() == [5, 6, 7, 8]
    test = pickle.loads((tmp_path / "test_batch").read_bytes())
    assert np.array_equal(src.images[-1].reshape(-1), test[b"data"][-1])  # channel planes R, G, B
    assert src.info["format"] == "cifar10"


def test_cifar10_bad_inputs(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_dataset("cifar10", str(tmp_path))
    (tmp_path / "data_batch_3").write_bytes(pickle.dumps({b"data": _Evil(), b"labels": []}))
    with pytest.raises(ValueError, match="data_batch_3.*forbidden global"):
        load_dataset("cifar10", str(tmp_path))
    (tmp_path / "data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ValueError, match=r"data_batch_3.*\[N, 3072\]"):
        load_dataset("cifar10", str(tmp_path))
    (tmp_path / "data_batch_3").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="data_batch_3"):
        load_dataset("cifar10", str(tmp_path))


# ------------------------------------------------------------------------------------- omniglot
def write_chardata(folder, n_train=10, n_test=3, seed=0):
    """A made-up ``chardata.mat`` (NECST's Omniglot file: images as Fortran-ordered columns, one-hot targets)."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    n = n_train + n_test
    columns = (rng.random((n, 28, 28)) > 0.8).astype(float).reshape(n, -1, order="F").T
    target = np.eye(3)[:, np.arange(n) % 3]
    savemat(folder / "chardata.mat", {"data": columns[:, :n_train], "target": target[:, :n_train],
                                      "testdata": columns[:, n_train:], "testtarget": target[:, n_train:]})


def test_omniglot_mat(tmp_path):
    from scipy.io import savemat

    images = RNG.random((13, 28, 28))
    images[:, 0, 1] = 1.0  # row 0, column 1: tells row-major from column-major
    images[:, 1, 0] = 0.0
    columns = images.reshape(13, -1, order="F").T  # [784, N], each column a Fortran-ordered image
    target = np.eye(3)[:, np.arange(13) % 3]
    savemat(tmp_path / "chardata.mat", {"data": columns[:, :10], "target": target[:, :10],
                                        "testdata": columns[:, 10:], "testtarget": target[:, 10:]})
    for path in (tmp_path, tmp_path / "chardata.mat"):
        src = load_dataset("omniglot", str(path))
        assert [src.size(s) for s in ("train", "val", "test")] == [9, 1, 3]
        assert src.images.dtype == np.uint8 and src.info["format"] == "chardata.mat"
        x, y = src.tensors("test")
        assert x.shape == (3, 1, 28, 28) and y.tolist() == [1, 2, 0]
        assert np.abs(x[:, 0].numpy() - images[10:]).max() <= 0.5 / 255 + 1e-6
    savemat(tmp_path / "chardata.mat", {"data": columns})
    with pytest.raises(ValueError, match="chardata.mat.*missing key"):
        load_dataset("omniglot", str(tmp_path))


def test_omniglot_pngs(tmp_path):
    from PIL import Image

    for a, alphabet in enumerate(["Greek", "Braille"]):
        for c in range(2):
            folder = tmp_path / alphabet / f"character{c:02d}"
            folder.mkdir(parents=True)
            for k in range(5):
                size = 105 if k % 2 else 28
                Image.fromarray(np.full((size, size), 40 * a + c, np.uint8)).save(folder / f"{k}.png")
    src = load_dataset("omniglot", str(tmp_path), binarize="static")
    assert src.images.shape == (20, 1, 28, 28)
    assert [src.size(s) for s in ("train", "val", "test")] == [16, 2, 2]
    assert src.info["format"] == "png"
    # Label = index of the alphabet folder sorted by name: Braille 0, Greek 1; grey level tells which.
    # PNG grey levels are inverted (black strokes on white -> bright strokes): 255 - (40 a + c).
    assert all((src.images[i] <= 255 - 40).all() == (src.labels[i] == 0) for i in range(20))
    assert set(torch.unique(src.tensors("train")[0]).tolist()) <= {0.0, 1.0}
    again = load_dataset("omniglot", str(tmp_path))
    assert all(np.array_equal(src.splits[s], again.splits[s]) for s in src.splits)
    with pytest.raises(FileNotFoundError, match="nothing does not exist"):
        load_dataset("omniglot", str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no chardata.mat and no PNG"):
        load_dataset("omniglot", str(tmp_path / "empty"))


# ------------------------------------------------------------------------------------------ npz
@pytest.mark.parametrize("layout", ["nhw", "nchw", "nhwc", "float"])
def test_npz(tmp_path, layout):
    grey = RNG.integers(0, 256, (20, 3, 8, 8), dtype=np.uint8)
    images = {"nhw": grey[:, 0], "nchw": grey, "nhwc": grey.transpose(0, 2, 3, 1), "float": grey / 255.0}[layout]
    np.savez(tmp_path / "d.npz", images=images, labels=np.arange(20) % 4)
    src = load_dataset("npz", str(tmp_path / "d.npz"))
    channels = 1 if layout == "nhw" else 3
    assert src.image_shape == (channels, 8, 8)
    assert [src.size(s) for s in ("train", "val", "test")] == [16, 2, 2]
    x, y = src.tensors("test")
    assert 0 <= x.min() and x.max() <= 1 and y.tolist() == [2, 3]
    assert np.allclose(x.numpy() * 255, grey[18:, :channels], atol=1e-3)


def test_npz_split_indices_and_defaults(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((6, 5, 5), np.uint8), train_idx=[5, 4, 3], val_idx=[2], test_idx=[0, 1])
    src = load_dataset("npz", str(tmp_path / "d.npz"))
    assert src.splits["train"].tolist() == [5, 4, 3] and src.size("test") == 2
    assert src.labels.tolist() == [0] * 6


def test_npz_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_dataset("npz", str(tmp_path / "missing.npz"))
    np.savez(tmp_path / "d.npz", pictures=np.zeros((6, 5, 5), np.uint8))
    with pytest.raises(ValueError, match="d.npz: no 'images' array"):
        load_dataset("npz", str(tmp_path / "d.npz"))
    np.savez(tmp_path / "d.npz", images=np.full((10, 5, 5), 2.0))
    with pytest.raises(ValueError, match=r"d.npz: float images must lie in \[0, 1\]"):
        load_dataset("npz", str(tmp_path / "d.npz"))
    np.savez(tmp_path / "d.npz", images=np.zeros((10, 5, 5), np.uint8), train_idx=[0, 1])
    with pytest.raises(ValueError, match="needs all of train_idx"):
        load_dataset("npz", str(tmp_path / "d.npz"))
