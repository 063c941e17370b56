"""Tests of bertkit.train run on one thread: the machine is shared, and two OpenMP threads on a
busy core make tiny ops 100x slower without changing any result."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
