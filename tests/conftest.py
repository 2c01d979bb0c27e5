"""Shared fixtures."""
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from commsim.data import load_dataset
from commsim.learned.training import TrainConfig
from commsim.learned.zoo import train_and_save


def pytest_addoption(parser):
    parser.addoption("--regenerate", action="store_true", default=False,
                     help="rewrite the golden files (tests/expected/golden_*.json) instead of comparing with them")


def pytest_configure(config):
    """Tests never read or write the user's checkpoint cache: a result that depends on what
    ``~/.cache/commsim`` happens to hold passes on one machine only."""
    home = tempfile.mkdtemp(prefix="commsim-tests-")
    os.environ["COMMSIM_HOME"] = home
    config._commsim_home = home
    if os.environ.get("PYTEST_XDIST_WORKER") and not os.environ.get("OMP_NUM_THREADS"):
        # pytest -n N starts N workers; each would take every core for torch (N x N threads: on a
        # 16-core GPU machine, -n 16 made a third of the suite time out). One thread per worker,
        # also for the subprocesses the tests start (the package's thread policy reads it).
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


def pytest_unconfigure(config):
    home = getattr(config, "_commsim_home", None)
    if home:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small tensors: intra-op threads only add contention on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def necst8_cache(tmp_path_factory):
    """Fills a test's checkpoint cache with NECST codes of 8 bits trained for one epoch on the
    embedded MNIST (the default recipe and seed) at the given training eps: ``necst8_cache(home, 0.1, 0.2)``
    copies them under ``home/checkpoints``, as ``commsim run``/``sweep`` would have cached them.

    Each eps is trained at most once per test session, in a folder of its own that tests never write
    to; a test that checks a training itself trains its own."""
    store = tmp_path_factory.mktemp("necst8")
    trained = {}

    def fill(home, *eps_values):
        folder = Path(home) / "checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        copies = []
        for eps in eps_values:
            if eps not in trained:
                with pytest.MonkeyPatch.context() as mp:
                    mp.setenv("COMMSIM_HOME", str(store))
                    trained[eps] = train_and_save("necst", load_dataset("mnist"), 8, TrainConfig(eps=eps, epochs=1),
                                                  device="cpu", progress=False)[2]
            copies.append(Path(shutil.copy(trained[eps], folder / trained[eps].name)))
        return copies

    return fill
