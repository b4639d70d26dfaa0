"""Datasets as whole tensors on the device, split into train, validation and test.

::

    import idbench.data
    ds = idbench.data.load("cifar10[augment=true]", device="cuda")
    ds.x_train.shape, ds.input_shape, ds.num_classes
    idbench.data.list("*mnist*")

Registered: ``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100``, ``svhn`` (torchvision,
:mod:`idbench.data.vision`), ``digits`` (scikit-learn, :mod:`idbench.data.digits`), the transfer task
``fashion-mnist-split`` (:mod:`idbench.data.transfer`) and the toy
problems with a known answer ``toy-sums`` (:mod:`idbench.data.toy`) and ``planted-lstsq``
(:mod:`idbench.data.planted`). Where files live and when they
are downloaded: :mod:`idbench.data.files`; what a loaded dataset holds: :class:`Dataset`.
"""

from __future__ import annotations

import os

import torch

# each loader module registers its datasets with DATASETS (a decorator on each loader)
from idbench.data import digits, planted, toy, transfer, vision  # noqa: F401
from idbench.data.dataset import DATASETS, Dataset, LoadContext
from idbench.data.files import data_root, download_allowed
from idbench.errors import IdbenchError
from idbench.registry import Spec, format_spec


def load(
    spec: str | Spec,
    *,
    root: str | os.PathLike[str] | None = None,
    download: bool | None = None,
    device: str | torch.device = "cpu",
    val_fraction: float = 0.1,
    split_seed: int = 0,
) -> Dataset:
    """Load the dataset named by ``spec`` (e.g. ``"cifar10[augment=true]"``) onto ``device``.

    ``root``: data folder (default: env ``IDBENCH_DATA``, else the user cache folder).
    ``download``: None = allowed unless env ``IDBENCH_OFFLINE=1``; False = never.
    ``val_fraction`` of the official training split becomes the validation split, drawn with
    ``split_seed``.
    """
    if not 0 < val_fraction < 1:
        raise IdbenchError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    _, name, options = DATASETS.resolve(spec)
    ctx = LoadContext(
        name=format_spec(name, options),
        root=data_root(root),
        download=download_allowed(download),
        device=torch.device(device),
        val_fraction=val_fraction,
        split_seed=split_seed,
    )
    return DATASETS.create(spec, ctx=ctx)


def list(pattern: str = "*") -> list[str]:  # noqa: A001 - mirrors idbench.models.list
    """Registered dataset names matching a wildcard."""
    return DATASETS.list(pattern)

