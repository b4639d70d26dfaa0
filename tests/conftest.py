import idbench  # noqa: F401 - first, so its OpenMP settings precede torch's import
import os
import shutil
import warnings

import pytest
import torch

warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def pytest_sessionstart(session) -> None:
    """Build the compiled kernels (once per machine and environment) before any test runs: a
    test's subprocess that starts while another process builds them waits on the build's lock,
    and on a loaded machine that wait can outlast the subprocess's timeout."""
    from idbench import kernels

    kernels.load()


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


@pytest.fixture(scope="session")
def compiled():
    """The compiled CPU kernels; skips only where no C++ compiler or ninja exists to build them."""
    from idbench import kernels

    module = kernels.load()
    if module is None and not (shutil.which(os.environ.get("CXX", "c++")) and shutil.which("ninja")):
        pytest.skip("no C++ compiler or ninja here: only the pure-torch path exists")
    assert module is not None, "a compiler and ninja are here, but the kernels did not build"
    return module
