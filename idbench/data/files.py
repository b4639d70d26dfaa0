"""Where dataset files live, whether they may be downloaded, and a reader for idx files.

The data root is the ``root`` argument of :func:`idbench.data.load`, else the environment variable
``IDBENCH_DATA``, else ``$XDG_CACHE_HOME/idbench/data`` (``~/.cache/idbench/data`` when
``XDG_CACHE_HOME`` is unset). Under it, every dataset keeps torchvision's own layout, so a folder
that torchvision already filled can be reused as it is.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import torch

_TRUE = ("1", "true", "yes", "on")


def data_root(root: str | os.PathLike[str] | None) -> Path:
    """The folder datasets are read from and downloaded into (see the module docstring)."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get("IDBENCH_DATA"):
        return Path(os.environ["IDBENCH_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "idbench" / "data"


def download_allowed(download: bool | None) -> bool:
    """``download`` if given; otherwise downloading is allowed unless ``IDBENCH_OFFLINE=1``."""
    if download is not None:
        return bool(download)
    return os.environ.get("IDBENCH_OFFLINE", "").strip().lower() not in _TRUE


def read_idx(path: Path) -> torch.Tensor:
    """Read an unsigned-byte idx file (the MNIST format), gzipped when its name ends in ``.gz``.

    Used for copies of the data outside the root (e.g. Debian's ``dataset-fashion-mnist``), which
    torchvision cannot read in place. Raises ``ValueError`` on a malformed file.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = bytearray(f.read())
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte idx file")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if len(data) != header + torch.Size(shape).numel():
        raise ValueError(f"{path} is truncated or corrupt: size does not match shape {shape}")
    return torch.frombuffer(data, dtype=torch.uint8, offset=header).view(shape)
