"""Shared fixtures."""
import os
import shutil
import tempfile

import pytest
import torch


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
