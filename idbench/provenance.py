"""Where a result comes from: library versions, git revision, device name and the time.

Every run row and measurement row records these (:mod:`idbench.rows`), so any number can be traced
to the code and hardware that produced it.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import idbench

if TYPE_CHECKING:
    import torch


@functools.cache
def _versions() -> tuple[tuple[str, str | None], ...]:
    found: dict[str, str | None] = {"idbench": idbench.__version__,
                                    "python": platform.python_version()}
    for package in ("torch", "numpy", "polars", "optuna"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return tuple(found.items())


def versions() -> dict[str, str | None]:
    """Versions of idbench, Python and the libraries behind the results (None: not installed)."""
    return dict(_versions())


@functools.cache
def git_rev() -> str | None:
    """The git commit of the idbench source checkout, ``-dirty`` if the package has local changes.

    None when idbench is not running from its own git checkout (an installed wheel, git missing).
    Dirty means changed or untracked files inside the ``idbench`` package folder; other files of the
    checkout (results, notes) do not change what the code computes.
    """
    package = Path(idbench.__file__).resolve().parent
    root = package.parent

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True
        )
        return done.stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != root:
            return None  # e.g. installed into a virtualenv inside some other repository
        rev = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--", str(package))
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{rev}-dirty" if dirty else rev


def now_iso() -> str:
    """The current time in UTC, ISO 8601, e.g. ``2025-01-31T12:00:00.123456+00:00``."""
    return datetime.now(timezone.utc).isoformat()


def device_name(device: str | torch.device) -> str:
    """The device with its hardware name for result rows: ``"cpu"``, ``"cuda:0 NVIDIA H100"``."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return str(device)
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} {torch.cuda.get_device_name(index)}"
