import os
import shutil

import pytest

from idbench.projections import kernels


@pytest.fixture(scope="session")
def compiled():
    """The compiled CPU kernels; skips only where no C++ compiler or ninja exists to build them."""
    module = kernels.load()
    if module is None and not (shutil.which(os.environ.get("CXX", "c++")) and shutil.which("ninja")):
        pytest.skip("no C++ compiler or ninja here: only the pure-torch path exists")
    assert module is not None, "a compiler and ninja are here, but the kernels did not build"
    return module
