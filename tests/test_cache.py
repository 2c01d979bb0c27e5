"""The cache (commsim.core.cache): checkpoints looked up by the whole training configuration, fitted
arrays by their key; bad entries skipped with a warning, and one training or fit per entry when
processes ask for it at the same time."""
import os
import shutil
import subprocess
import sys

import pytest
import torch

from commsim.learned.checkpoints import CheckpointError
from commsim.learned.training import TrainConfig
from commsim.learned.zoo import CacheWarning, cache_dir, cached_checkpoints, cached_or_trained, load_codec
from commsim.data import load_dataset
from commsim.data.sources import ImageSource, split_in_order


@pytest.fixture(scope="module")
def digits():
    """300 digits (100 per split): trainings of one epoch take a fraction of a second."""
    full = load_dataset("mnist")
    return ImageSource("digits", full.images[:300], full.labels[:300], split_in_order(300, 100, 100, 100))


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("COMMSIM_HOME", str(tmp_path))
    return tmp_path


def entries():
    return sorted(p.name for p in (cache_dir() / "checkpoints").glob("*.safetensors"))


def same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def load(digits, **kwargs):
    return load_codec("necst", dataset="digits", bits=8, eps=0.2, device="cpu", source=digits, progress=False, **kwargs)


def test_another_seed_or_budget_is_another_entry(home, digits):
    seed0 = load(digits, epochs=1, seed=0)
    seed1 = load(digits, epochs=1, seed=1)
    assert len(entries()) == 2 and not same_weights(seed0, seed1)
    budget2 = load(digits, epochs=2, seed=0)
    assert len(entries()) == 3 and not same_weights(seed0, budget2)
    assert [n.split("-")[4:6] for n in entries()] == [["e1", "s0"], ["e1", "s1"], ["e2", "s0"]]
    # each configuration now comes from its own entry, and nothing new is trained
    assert same_weights(load(digits, epochs=1, seed=1), seed1) and same_weights(load(digits, epochs=2, seed=0), budget2)
    assert len(entries()) == 3
    with pytest.raises(CheckpointError, match="eps 0.2, 3 epochs, seed 7"):
        load(digits, epochs=3, seed=7, train_if_missing=False)


def test_lookup_compares_the_whole_training_configuration(home, digits):
    config = TrainConfig(eps=0.2, epochs=1, seed=0)
    _, path, trained = cached_or_trained("necst", "digits", 8, config, digits, device="cpu", progress=False)
    assert trained and cached_checkpoints("necst", "digits", 8, config=config, data=digits.identity) == [path]
    assert cached_or_trained("necst", "digits", 8, config, digits, device="cpu", progress=False)[1:] == (path, False)
    for other in (TrainConfig(eps=0.2, epochs=1, seed=0, lr=3e-4), TrainConfig(eps=0.2, epochs=2, seed=0),
                  TrainConfig(eps=0.2, epochs=1, seed=3), TrainConfig(eps=0.1, epochs=1, seed=0)):
        assert cached_checkpoints("necst", "digits", 8, config=other, data=digits.identity) == []
    assert cached_checkpoints("necst", "digits", 8, 0.2, data=digits.identity) == [path]  # eps only: any budget
    assert cached_checkpoints("necst", "digits", 16, config=config, data=digits.identity) == []


def test_a_bad_cache_entry_is_skipped_with_a_warning(home, digits):
    config = TrainConfig(eps=0.2, epochs=1, seed=0)
    _, path, _ = cached_or_trained("necst", "digits", 8, config, digits, device="cpu", progress=False)
    # the same file under the name of a 16-bit codec, and a corrupt file under the 8-bit name
    wrong_bits = path.with_name(path.name.replace("-b8-", "-b16-"))
    shutil.copy(path, wrong_bits)
    corrupt = path.with_name(path.name.replace(path.name.split("-")[-1], "0badc0de.safetensors"))
    corrupt.write_bytes(os.urandom(100))
    with pytest.warns(CacheWarning, match="8 bits.*does not match its name"):
        assert cached_checkpoints("necst", "digits", 16, config=config, data=digits.identity) == []
    with pytest.warns(CacheWarning, match="corrupt"):
        assert cached_checkpoints("necst", "digits", 8, config=config, data=digits.identity) == [path]
    # the 16-bit configuration is trained, not refused, and the bad files stay where the user put them
    with pytest.warns(CacheWarning):
        codec, fresh, trained = cached_or_trained("necst", "digits", 16, config, digits, device="cpu", progress=False)
    assert trained and codec.bits == 16 and fresh != wrong_bits and wrong_bits.exists() and corrupt.exists()


@pytest.mark.slow  # 6 s (two CLI processes training); the default run checks the same lock with two processes in
# test_two_processes_fitting_the_same_arrays_compute_them_once (core.cache.entry_lock, which zoo uses)
def test_two_identical_runs_train_once(tmp_path):
    """Two identical runs started together: one trains, the other waits for it and loads its checkpoint."""
    env = {**os.environ, "COMMSIM_HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "commsim.cli", "run", "--codec", "necst", "--eps", "0.2", "--bits", "8",
            "--epochs", "1", "--limit", "50"]
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    written = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.safetensors"))
    assert len(written) == 1
    rows = [[line for line in out.splitlines() if line.startswith("necst  bsc")] for out, _ in outputs]
    assert len(rows[0]) == 1 and rows[0] == rows[1]
    endings = sorted(out.splitlines()[-1].rsplit("; ", 1)[1] for out, _ in outputs)
    assert endings == ["cached)", "trained now)"]
    assert all(out.splitlines()[-1].startswith(f"checkpoint: {written[0]} ") for out, _ in outputs)


def test_a_damaged_or_foreign_fitted_codebook_is_ignored_and_refitted(home):
    """The source codes' fitted arrays (one cache with the checkpoints: COMMSIM_HOME): a truncated,
    corrupt or foreign file under an entry's name is skipped with a warning and computed again."""
    import numpy as np

    from commsim.source_codes.base import cache_folder, cached_arrays

    calls = []

    def compute():
        calls.append(1)
        return {"codebook": np.arange(6.0).reshape(2, 3)}

    key = {"k": 3, "data": "abc"}
    first = cached_arrays("vq", key, compute)
    assert cached_arrays("vq", key, compute)["codebook"].tolist() == first["codebook"].tolist() and len(calls) == 1
    (path,) = cache_folder().glob("vq-*.npz")
    good = path.read_bytes()
    damaged = {"truncated": good[:50], "garbage": os.urandom(300)}
    np.savez(path.with_suffix(".foreign.npz"), codebook=np.zeros((9, 9)))
    damaged["foreign"] = path.with_suffix(".foreign.npz").read_bytes()
    for what, content in damaged.items():
        path.write_bytes(content)
        with pytest.warns(CacheWarning, match=f"ignoring cached vq fit {path.name}"):
            again = cached_arrays("vq", key, compute)
        assert again["codebook"].tolist() == first["codebook"].tolist(), what
    assert len(calls) == 4


def test_the_cache_key_holds_the_data_content_not_only_its_name(home, tmp_path):
    """Two npz files (the same data-set name "npz") are two cache entries; the same file, or a copy of
    it, finds the entry again. The embedded digits keep their entries' old names (no identity)."""
    import numpy as np

    from commsim.data import load_dataset

    full = load_dataset("mnist")
    assert full.identity is None and load_dataset("binary_mnist").identity is None
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    np.savez(a, images=full.images[:300, 0], labels=full.labels[:300])
    np.savez(b, images=full.images[300:600, 0], labels=full.labels[300:600])
    config = TrainConfig(eps=0.2, epochs=1)
    first = cached_or_trained("necst", "npz", 8, config, load_dataset("npz", str(a)), device="cpu", progress=False)
    other = cached_or_trained("necst", "npz", 8, config, load_dataset("npz", str(b)), device="cpu", progress=False)
    assert first[2] and other[2] and first[1] != other[1]  # b's images train their own model
    copy = tmp_path / "copy.npz"
    copy.write_bytes(a.read_bytes())
    again = cached_or_trained("necst", "npz", 8, config, load_dataset("npz", str(copy)), device="cpu", progress=False)
    assert again[1:] == (first[1], False)
    assert cached_checkpoints("necst", "npz", 8, config=config) == []  # no entry for "npz" without its content


def test_a_full_disk_while_saving_a_checkpoint_is_one_line_and_leaves_no_file(tmp_path, monkeypatch):
    from safetensors import SafetensorError

    import commsim.learned.checkpoints as checkpoints

    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: IoError(No space left on device (os error 28))")

    monkeypatch.setattr(checkpoints, "save_file", full)
    target = tmp_path / "c.safetensors"
    with pytest.raises(OSError, match="cannot write checkpoint .*c.safetensors .*No space left.*COMMSIM_HOME"):
        checkpoints.save_checkpoint(target, {"w": torch.zeros(2)}, {"codec": "necst"})
    assert list(tmp_path.iterdir()) == []


FIT_ONCE = """
import sys, time
from pathlib import Path
import numpy as np
from commsim.core import cache

entry, log, marker = map(Path, sys.argv[1:])

def compute():  # the first process computes until the other one waits on the entry's lock
    with log.open("a") as fh:
        fh.write("computed\\n")
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return {"codebook": np.arange(6.0).reshape(2, 3)}

arrays = cache.cached_arrays(entry, {"k": 3}, compute, "vq fit", notify=lambda line: marker.write_text(line))
print(arrays["codebook"].sum())
"""


def test_two_processes_fitting_the_same_arrays_compute_them_once(tmp_path):
    """One fits while the other waits on the entry's lock, then reads the entry the first wrote."""
    entry, log, marker = tmp_path / "fits" / "vq-1.npz", tmp_path / "log", tmp_path / "waiting"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", FIT_ONCE, str(entry), str(log), str(marker)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert [out.strip() for out, _ in outputs] == ["15.0", "15.0"]
    assert log.read_text() == "computed\n"
    assert marker.read_text() == "waiting for another commsim process that is computing the vq fit vq-1.npz"


def test_a_corrupt_arrays_entry_is_reported_once_and_replaced(tmp_path):
    """A damaged .npz under an entry's name: one warning (not one per look), one computation, and the
    rewritten entry serves the next call."""
    import numpy as np

    from commsim.core import cache

    calls = []

    def compute():
        calls.append(1)
        return {"basis": np.eye(2)}

    entry = tmp_path / "pca-1.npz"
    entry.write_bytes(b"PK\x03\x04 not a zip file")
    with pytest.warns(CacheWarning, match=r"^ignoring cached pca fit pca-1.npz: it is unreadable \(\w+\); computing it again$") as seen:
        assert cache.cached_arrays(entry, {"v": 1}, compute, "pca fit")["basis"].tolist() == [[1, 0], [0, 1]]
    assert len(seen) == 1 and len(calls) == 1
    assert cache.cached_arrays(entry, {"v": 1}, compute, "pca fit")["basis"].tolist() == [[1, 0], [0, 1]]
    assert len(calls) == 1


def test_a_cache_where_nothing_can_be_written_only_costs_time(tmp_path, monkeypatch):
    """No lock file and no entry can be created there (a read-only cache): the arrays are computed
    and returned each time, without an error."""
    import numpy as np

    from commsim.core import cache

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    class NoLock:
        def __init__(self, path):
            self.acquire = refused

    monkeypatch.setattr(cache, "FileLock", NoLock)
    monkeypatch.setattr(cache, "atomic_path", refused)
    calls = []
    for _ in range(2):
        assert cache.cached_arrays(tmp_path / "vq-1.npz", {"k": 1}, lambda: calls.append(1) or {"a": np.ones(2)})["a"].sum() == 2
    assert len(calls) == 2 and not (tmp_path / "vq-1.npz").exists()
