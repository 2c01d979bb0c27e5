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
