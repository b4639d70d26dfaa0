import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Single-threaded BLAS: on a shared, busy CPU (as in CI) threads wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
