"""Shared fixtures."""
import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small tensors: intra-op threads only add contention on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
