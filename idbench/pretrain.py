"""Pretraining made by idbench itself: one full-space run, stored as a run with its final model.

A cell that fine-tunes from a pretrained theta0 (``theta0=checkpoint[run=KEY,store=DIR]``,
:mod:`idbench.theta0`) needs the pretrained weights and a record of how they were made. This module
trains the run of a :class:`~idbench.train.RunSpec` (typically the cell's model on another task),
stores its :class:`~idbench.schema.RunRow` (role ``pretrain``, cell ``pretrain``) in the run store of
``out`` and its state dict as ``out/checkpoints/<run_key>.pt`` (written atomically). A run already
stored with its checkpoint is not trained again. Pretraining is one attempt at its own rate: a run
that diverges or ends at chance is an error, not retried at a lower rate behind the user's back.

Example::

    spec = RunSpec(model="fc", dataset="fashion-mnist-split[part=a]", seed=0, lr=0.05, epochs=5)
    row, path = pretrain(spec, out="runs")  # then theta0=checkpoint[run=<row.run_key>,store=runs]
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from idbench.errors import IdbenchError
from idbench.schema import RunRow
from idbench.theta0 import CHECKPOINTS
from idbench.train import RunSpec

CELL = "pretrain"  # the cell key pretraining runs are stored under (they belong to no cell)


def checkpoint_file(out: str | os.PathLike[str], run_key: str) -> Path:
    """Where the final model of stored run ``run_key`` of the store ``out`` is saved."""
    return Path(out) / CHECKPOINTS / f"{run_key}.pt"


def check_pretrain(spec: RunSpec, *, out: str | os.PathLike[str], device: str | None) -> str:
    """Every check before pretraining writes or trains anything; returns the device."""
    from idbench.cell import load_data
    from idbench.data import DATASETS
    from idbench.models import MODELS
    from idbench.preflight import check_device, check_spec, check_writable_dir
    from idbench.train import burn_in_spec, start_network

    if not spec.is_baseline:
        raise IdbenchError("pretraining is a full-space run: give no projection or d")
    check_spec(MODELS, str(spec.model))
    check_spec(DATASETS, str(spec.dataset))
    device = check_device(device)
    check_writable_dir(out, "--out")
    data = load_data(spec.dataset, device, spec.val_fraction, spec.split_seed)
    if spec.theta0.name == "burn-in":
        burn_in_spec(spec, len(data.x_train))
    else:  # the model builds on the data (and a checkpoint theta0 fits it)
        start_network(spec, data)
    return device


def pretrain(spec: RunSpec, *, out: str | os.PathLike[str],
             device: str | None = None) -> tuple[RunRow, Path]:
    """Train ``spec`` (unless stored with its checkpoint), store its row and its final model;
    returns the row and the checkpoint's path."""
    import torch

    from idbench.atomic import write_atomic
    from idbench.cell import load_data
    from idbench.provenance import device_name
    from idbench.rows import run_row
    from idbench.store import RunStore
    from idbench.train import failed, start_network, train

    device = check_pretrain(spec, out=out, device=device)
    store, path = RunStore(out), checkpoint_file(out, spec.key())
    stored = store.get(spec.key())
    if stored is not None and path.is_file():
        return stored, path
    data = load_data(spec.dataset, device, spec.val_fraction, spec.split_seed)
    net, head = start_network(spec, data)
    result = train(net, data, spec)
    result.theta0_head, result.lr_final = head, spec.lr
    if failed(result, data):
        raise IdbenchError(f"pretraining {spec.model} on {spec.dataset} at lr={spec.lr:g} "
                           f"{'diverged' if result.diverged else 'ended at chance'}: lower --lr")
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, buffer)
    write_atomic(path, buffer.getvalue())
    row = run_row(spec, result, cell=CELL, suite=None, role="pretrain", metric=data.metric,
                  device=device_name(device))
    store.put(row)
    return row, path


__all__ = ["CELL", "check_pretrain", "checkpoint_file", "pretrain"]
