"""Data tests never touch the network or the user's cache: offline, with a temporary data root."""

import pytest


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("IDBENCH_OFFLINE", "1")
    monkeypatch.setenv("IDBENCH_DATA", str(tmp_path_factory.mktemp("idbench-data")))
