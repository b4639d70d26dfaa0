"""Everything decided before anything trains or is written: every input checked, and whether the
measurement is already stored.

:func:`idbench.measure` and :func:`idbench.run_suite` call these first, so a mistake (an unknown or
misspelt component, an option its factory does not take or a value it refuses, a device that does
not exist or is not available, an output path that cannot be written, a plot format that cannot be
rendered, a model that does not fit its data, d_min or a grid beyond D) is one
:class:`~idbench.errors.IdbenchError` raised before a folder is created or a run trains: a failed
check leaves ``--out`` as it was.

The checks write nothing (writability is read from the file system, not probed by writing).
Rates, budgets and ranges are checked where they are defined, by
:class:`~idbench.config.MeasureConfig`. torch and the registries are imported only by the checks
that need them, so :func:`stored_measurement` (a rerun of a stored measurement) stays fast.

Example::

    device = check_measurement(config, out="out", device=None, storage=None)
    row = stored_measurement(config, "out")   # None: not measured yet
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idbench.config import MeasureConfig
from idbench.errors import IdbenchError

if TYPE_CHECKING:
    from idbench.registry import Registry
    from idbench.schema import MeasurementRow

_DEVICE = re.compile(r"(cpu|cuda(:\d+)?|mps)")
PLOT_FORMATS = ("png", "svg")  # what idbench.leaderboard.plots renders (reproducibly)


# --------------------------------------------------------------------------- components


def check_spec(registry: Registry[Any], spec: str) -> None:
    """``spec`` names a registered component and only options its factory takes (checked by
    the registry itself: :meth:`idbench.registry.Registry.check`)."""
    registry.check(spec)


def check_specs(config: MeasureConfig) -> None:
    """The model, dataset, projection and method of ``config`` exist and take their options."""
    from idbench.data import DATASETS
    from idbench.methods import METHODS
    from idbench.models import MODELS
    from idbench.projections import PROJECTIONS

    for registry, spec in ((MODELS, config.model), (DATASETS, config.dataset),
                           (PROJECTIONS, config.projection), (METHODS, config.method)):
        check_spec(registry, spec)


# --------------------------------------------------------------------------- devices


def check_device_name(device: str | None) -> None:
    """``device`` is None (automatic) or a device idbench can use: cpu, cuda, cuda:N, mps."""
    if device is not None and not _DEVICE.fullmatch(device):
        raise IdbenchError(
            f"unknown device {device!r}: choose cpu, cuda, cuda:N (a GPU index) or mps, or leave "
            "--device out to use a GPU when there is one"
        )


def check_device(device: str | None) -> str:
    """The device to train on (None: cuda if available, else cpu), checked to exist here."""
    check_device_name(device)
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.partition(":")[2] or 0)
        if count == 0:
            raise IdbenchError(
                f"--device {device}: no CUDA GPU is available on this machine (torch "
                f"{torch.__version__}, CUDA build: {torch.version.cuda or 'none'}): use --device cpu"
            )
        if index >= count:
            raise IdbenchError(
                f"--device {device}: this machine has {count} CUDA GPU(s), cuda:0 to "
                f"cuda:{count - 1}"
            )
    if device == "mps" and not torch.backends.mps.is_available():
        raise IdbenchError("--device mps: Apple's Metal backend is not available here: "
                           "use --device cpu")
    return device


# --------------------------------------------------------------------------- paths


def check_writable_dir(path: str | os.PathLike[str], what: str) -> None:
    """``path`` is a folder that exists and can be written, or one that can be created: its
    nearest existing ancestor is a writable folder. Nothing is created."""
    path = Path(path).expanduser()
    existing = next(p for p in (path, *path.absolute().parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise IdbenchError(f"cannot write {what} {path}: {existing} is a file, not a folder; "
                           "choose another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise IdbenchError(f"cannot write {what} {path}: {existing} is not writable; "
                           "choose another path")


def check_writable_file(path: str | os.PathLike[str], what: str) -> None:
    """``path`` is a file that can be written (it may exist; its folder must exist or be
    creatable). Nothing is created."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise IdbenchError(f"{what} {path} is a folder: give a file name")
    check_writable_dir(path.parent, f"the folder of {what}")


def check_plot_path(path: str | os.PathLike[str]) -> None:
    """``path`` ends in a format the plots are rendered in and its folder can be written."""
    fmt = Path(path).suffix.lstrip(".").lower()
    if fmt not in PLOT_FORMATS:
        raise IdbenchError(
            f"--plot {path}: cannot write a {fmt or 'suffix-less'!r} plot; end the file name "
            f"in {' or '.join('.' + f for f in PLOT_FORMATS)}"
        )
    folder = Path(path).expanduser().parent
    if not folder.is_dir():
        problem = "is a file" if folder.exists() else "does not exist"
        raise IdbenchError(f"--plot {path}: its folder {folder} {problem}")
    check_writable_file(path, "--plot")


def check_storage(storage: str | None, out: str | os.PathLike[str]) -> None:
    """The Optuna storage can be opened: a journal file's folder can be written (by default the
    journal lies in ``out``), a database URL has its driver and answers. SQLite files are checked
    like journal files, so that nothing is created."""
    if storage is None:
        return  # the journal in out, checked with out
    if "://" not in storage:
        check_writable_file(storage, "--storage")
        return
    if storage.startswith("sqlite:///"):
        path = Path(storage.removeprefix("sqlite:///")).expanduser()
        if not path.parent.is_dir():  # SQLite creates the file, not its folder
            raise IdbenchError(f"cannot open --storage {storage}: the folder {path.parent} does "
                               "not exist (SQLite does not create it); create it or choose "
                               "another path")
        check_writable_file(path, "--storage")
        return
    from idbench.tuning import open_storage

    open_storage(storage)  # a server: connects, creates nothing here


# --------------------------------------------------------------------------- one measurement


def check_measurement(config: MeasureConfig, *, out: str | os.PathLike[str],
                      device: str | None = None, storage: str | None = None) -> str:
    """Every check of one measurement before anything is written; returns the device to use.

    The components and their options, the device, the output folder and the Optuna storage; then
    the data is loaded and the model built on it (kept in memory: the measurement reuses both), so
    a model that does not fit the data, missing data, or d_min or a grid value beyond the model's
    D fail here too.
    """
    check_specs(config)
    device = check_device(device)
    check_writable_dir(out, "--out")
    check_storage(storage, out)
    check_fits(config, device)
    return device


def check_fits(config: MeasureConfig, device: str) -> int:
    """The model of ``config`` builds on its dataset; d_min and every grid value are at most D;
    the first probe builds (:func:`check_probe`). Returns D."""
    from idbench.cell import load_data, parameter_count

    data = load_data(config.dataset, device, config.val_fraction, config.split_seed)
    D = parameter_count(config, data)
    check_threshold(config, data)
    if config.d_min > D:
        raise IdbenchError(f"d_min = {config.d_min} exceeds the model's D = {D} parameters")
    if config.grid and max(config.grid) > D:
        raise IdbenchError(f"grid value {max(config.grid)} exceeds the model's D = {D} parameters")
    k = config.compartments
    # d directions in each compartment: at most its size (more compartments than parameters:
    # the subspace's own check, through check_probe)
    if isinstance(k, int) and 1 < k <= D:
        largest, size = max(config.grid) if config.grid else config.d_min, D // k
        if largest > size:
            raise IdbenchError(
                f"d = {largest} exceeds the {size} parameters of each of the {k} compartments "
                f"of the model's D = {D}: lower d or use fewer compartments")
    if config.compartments == "layer":  # d is the total, at least one direction per layer
        import idbench.models
        from idbench.subspace import FlatLayout

        data = load_data(config.dataset, device, config.val_fraction, config.split_seed)
        net = idbench.models.create(config.model, input_shape=data.input_shape,
                                    num_classes=data.num_classes)
        layers = len(FlatLayout.of(net).compartments("layer", D)[0])
        smallest = min(config.grid) if config.grid else config.d_min
        if smallest < layers:
            raise IdbenchError(
                f"d = {smallest} is fewer than the {layers} layer compartments of {config.model}: "
                f"with --compartments layer d counts all directions, at least one per layer; "
                f"use --d-min {layers} or more"
            )
    check_theta0(config, device)
    check_probe(config, device)
    return D


def check_threshold(config: MeasureConfig, data: Any) -> None:
    """A global baseline must define a threshold above chance (a trained baseline at chance is
    refused once it has trained, before any subspace run: :func:`idbench.measurement.measure`)."""
    score = config.global_baseline
    classes = getattr(data, "num_classes", 0)
    if score is not None and data.metric == "accuracy" and classes > 1:
        if config.threshold * score <= 1 / classes:
            raise IdbenchError(
                f"the threshold {config.threshold:g} x {score:g} = {config.threshold * score:.3g} "
                f"is at or below chance (1/{classes} = {1 / classes:.3g}) on {config.dataset}: "
                "every subspace passes it; raise the global baseline or the threshold")


def check_theta0(config: MeasureConfig, device: str) -> None:
    """The cell's theta0 can be reached (:mod:`idbench.theta0`): a checkpoint file exists and its
    tensors fit the model (a head of other classes aside), a burn-in fits in the run's budget.
    Nothing trains: the checkpoint is loaded into a network that is then dropped."""
    from idbench.cell import load_data, run_spec
    from idbench.theta0 import checkpoint_path, load_checkpoint
    from idbench.train import burn_in_spec, start_network

    data = load_data(config.dataset, device, config.val_fraction, config.split_seed)
    spec = run_spec(config, seed=0, lr=1.0)
    if config.theta0.name == "burn-in":
        burn_in_spec(spec, len(data.x_train))
    if config.theta0.name == "checkpoint":
        net, _ = start_network(spec.replace(theta0="init"), data)
        load_checkpoint(net, checkpoint_path(config.theta0))


def check_probe(config: MeasureConfig, device: str) -> None:
    """The first probe's network, subspace and method build on the cell's data: every option of
    the projection and the method (``sparse[density=2]``, ``nes[sigma=-1]``) and the compartments
    against D are checked by the code that uses them, before anything is written or trains
    (otherwise only once the baseline and a tuning have trained). Nothing is kept; the global
    random state is left as it was."""
    import torch

    import idbench.methods
    from idbench.cell import load_data, run_spec
    from idbench.train import build_model

    data = load_data(config.dataset, device, config.val_fraction, config.split_seed)
    d = min(config.grid) if config.grid else config.d_min
    # from init: theta0 is check_theta0's, which trains nothing (a burn-in would train here)
    spec = run_spec(config, seed=0, lr=1.0, d=d).replace(theta0="init")
    with torch.random.fork_rng(devices=[]):
        try:
            idbench.methods.create(spec.method, model=build_model(spec, data), run_spec=spec)
        except IdbenchError:
            raise  # the component's own message, which names it
        except (ValueError, TypeError) as exc:  # a factory's own check of a value
            raise IdbenchError(f"projection {config.projection} with method {config.method}: "
                               f"{exc}") from None


# --------------------------------------------------------------------------- a suite


def check_suite_run(configs: list[MeasureConfig], *, out: str | os.PathLike[str],
                    leaderboard_dir: str | os.PathLike[str], device: str | None = None,
                    storage: str | None = None, local: bool = True) -> None:
    """Every check of a suite run before anything is written or trains: the device (available
    here when the runs train here, ``local``), the output, leaderboard and storage paths, and every
    cell's model on its data (each distinct pairing once). The specs and options were checked when
    the suite was loaded."""
    device = check_device(device) if local else (check_device_name(device) or "cpu")
    check_writable_dir(out, "--out")
    check_writable_dir(leaderboard_dir, "--leaderboard")
    check_storage(storage, out)
    seen = set()
    for config in configs:
        pairing = (config.model, config.dataset, config.val_fraction, config.split_seed,
                   config.d_min, config.grid, config.compartments, config.projection,
                   config.method, config.optimizer, config.theta0, config.said, config.epochs,
                   config.steps, config.batch_size)
        if pairing not in seen:
            seen.add(pairing)
            check_fits(config, device)


def stored_measurement(config: MeasureConfig, out: str | os.PathLike[str], *,
                       suite: str | None = None, suite_version: str | None = None,
                       device: str | None = None) -> MeasurementRow | None:
    """The measurement of ``config`` stored in ``out`` (by the same suite), or None.

    Its runs, and so its result, are the stored ones: a rerun returns it without loading data or
    models, and without creating anything. ``device`` is checked by name only (nothing trains).
    """
    check_device_name(device)
    if not (Path(out) / "measurements" / f"{config.key()}.parquet").is_file():
        return None
    from idbench.store import RunStore

    stored = RunStore(out).get_measurement(config.key())
    if stored is None or (stored.suite, stored.suite_version) != (suite, suite_version):
        return None
    return stored


__all__ = ["PLOT_FORMATS", "check_device", "check_device_name", "check_fits",
           "check_measurement", "check_plot_path", "check_probe", "check_spec", "check_specs",
           "check_storage", "check_suite_run", "check_theta0", "check_writable_dir",
           "check_writable_file", "stored_measurement"]
