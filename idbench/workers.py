"""What a worker process knows about itself: the device it owns, and how to install the workers.

The lowest floor of the executors: :mod:`idbench.dask_executor` sets a worker's device when the
worker starts (:func:`set_worker_device`), and :func:`idbench.cell.execute` trains on it
(:func:`worker_device`) instead of the parent's device. :data:`DASK_HINT` is what every "Dask is
not installed" error tells the user to run.
"""

from __future__ import annotations

DASK_HINT = "pip install 'idbench[dask]'"
_worker_device: str | None = None  # set on Dask workers by idbench.dask_executor.DevicePlugin


def worker_device() -> str | None:
    """The device of the Dask worker this code runs on; None outside a worker (local runs)."""
    return _worker_device


def set_worker_device(device: str | None) -> None:
    """Declare this process a worker that owns ``device`` (done by the Dask worker plugin)."""
    global _worker_device
    _worker_device = device
