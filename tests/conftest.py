import idbench  # noqa: F401 - first, so its OpenMP settings precede torch's import
import warnings

import pytest
import torch

warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def one_thread():
    """Single-threaded BLAS for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``):
    on a shared, busy CPU (as in CI) threads wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
