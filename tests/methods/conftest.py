import pytest


@pytest.fixture(autouse=True, scope="module")
def _single_threaded(one_thread) -> None:
    """Every test of idbench.methods runs single-threaded (``one_thread``: tests/conftest.py)."""
