"""The run store: one small Parquet file per training run, written atomically, read as one table.

Every training run idbench makes becomes a :class:`~idbench.schema.RunRow` stored under its run key
(a hash of everything that determines the run), and every measured cell a
:class:`~idbench.schema.MeasurementRow` under its cell key::

    out/runs/<run_key>.parquet
    out/measurements/<cell>.parquet

One file per key makes resuming trivial (``has(key)``: the run is done) and makes concurrent writers
safe without locks: a row is written to a uniquely named temporary file in the same folder, flushed
to disk, then renamed onto its final name. The rename is atomic, so a reader sees either no file or
a complete one; a crash loses only the run in flight; two processes writing the same key leave
exactly one file, because the same key always maps to the same name. Temporary leftovers of a crash
start with a dot and are ignored by readers.

Example::

    store = RunStore("out/mnist-fc")
    key = spec.key()
    if not store.has(key):
        result = idbench.train.run(spec, data)
        store.put(run_row(spec, result, cell=cell, suite=None, role="probe", metric="accuracy",
                          device=device_name(data.x_train.device)))
    runs = store.table()  # polars.DataFrame, one row per run, columns as in RunRow
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import re
import secrets
import subprocess
import types
import typing
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import BaseModel

import idbench
from idbench.errors import IdbenchError
from idbench.registry import parse_spec
from idbench.schema import SCHEMA_VERSION, MeasurementRow, RunRow

if TYPE_CHECKING:
    import torch

    from idbench.train import RunResult, RunSpec

# keys of SubspaceModel.describe(); whatever else a run's description holds is the method's
SUBSPACE_KEYS = frozenset(
    {"projection", "projection_options", "normalisation", "compartments", "n_compartments", "d",
     "d_total", "D"}
)
_KEY = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*")
_POLARS_TYPES: dict[Any, pl.DataType] = {
    int: pl.Int64(), float: pl.Float64(), str: pl.String(), bool: pl.Boolean()
}


def polars_schema(model: type[BaseModel]) -> pl.Schema:
    """The Polars schema of a row model: its fields in order, ``X | None`` as nullable ``X``."""
    schema = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        if typing.get_origin(annotation) is typing.Literal:
            annotation = type(typing.get_args(annotation)[0])
        schema[name] = _POLARS_TYPES[annotation]
    return pl.Schema(schema)


@dataclass(frozen=True)
class _Kind:
    """One kind of row the store holds: its folder, its model and which field is its key."""

    folder: str
    model: type[BaseModel]
    key: str
    schema: pl.Schema
    redo: str  # what deleting a damaged file costs


_RUNS = _Kind("runs", RunRow, "run_key", polars_schema(RunRow), "the run is redone on resume")
_MEASUREMENTS = _Kind(
    "measurements", MeasurementRow, "cell", polars_schema(MeasurementRow),
    "the cell is measured again on resume (its finished runs are kept)",
)


class RunStore:
    """The results of a measurement or suite in ``out_dir``: run rows and measurement rows.

    Creating a store creates ``out_dir`` and checks that it can be written, so a bad ``--out`` fails
    before any training starts (and leaves nothing behind).
    """

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.out_dir = Path(out_dir)
        folders = [self.out_dir / kind.folder for kind in (_RUNS, _MEASUREMENTS)]
        # everything this call may create, deepest first, to remove again if the check fails
        created = [p for p in (*folders, self.out_dir, *self.out_dir.parents) if not p.exists()]
        try:
            for folder in folders:
                folder.mkdir(parents=True, exist_ok=True)
                probe = folder / f".probe-{os.getpid()}-{secrets.token_hex(4)}"
                try:
                    probe.write_bytes(b"")
                finally:
                    probe.unlink(missing_ok=True)
        except OSError as exc:
            for path in created:
                try:
                    path.rmdir()
                except OSError:
                    pass
            raise IdbenchError(
                f"cannot write to output folder {self.out_dir}: {exc.strerror or exc}; "
                "choose another --out"
            ) from None

    # runs

    def has(self, run_key: str) -> bool:
        """Whether the run ``run_key`` is stored (finished)."""
        return self._path(_RUNS, run_key).exists()

    def get(self, run_key: str) -> RunRow | None:
        """The stored row of run ``run_key``, or None."""
        return self._get(_RUNS, run_key)

    def put(self, row: RunRow) -> None:
        """Store ``row`` under its run key, atomically; a second put of the key replaces it."""
        self._put(_RUNS, row)

    def table(self) -> pl.DataFrame:
        """All stored runs, one row per run key, columns (and dtypes) as in :class:`RunRow`."""
        return self._table(_RUNS)

    def export(self, path: str | os.PathLike[str]) -> None:
        """Write all runs as one Parquet file at ``path`` (atomically), e.g. a leaderboard's."""
        _write_atomic(self.table(), Path(path))

    # measurements

    def get_measurement(self, cell: str) -> MeasurementRow | None:
        """The stored measurement of ``cell``, or None."""
        return self._get(_MEASUREMENTS, cell)

    def put_measurement(self, row: MeasurementRow) -> None:
        """Store ``row`` under its cell key (atomically)."""
        self._put(_MEASUREMENTS, row)

    def measurements(self) -> pl.DataFrame:
        """All stored measurements, one row per cell, columns as in :class:`MeasurementRow`."""
        return self._table(_MEASUREMENTS)

    def export_measurements(self, path: str | os.PathLike[str]) -> None:
        """Write all measurements as one Parquet file at ``path`` (atomically)."""
        _write_atomic(self.measurements(), Path(path))

    # shared by both kinds

    def _path(self, kind: _Kind, key: str) -> Path:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(f"{kind.key} {key!r} is not a valid file name (a hash is expected)")
        return self.out_dir / kind.folder / f"{key}.parquet"

    def _get(self, kind: _Kind, key: str) -> Any:
        path = self._path(kind, key)
        if not path.exists():
            return None
        return kind.model.model_validate(_read_file(path, kind).row(0, named=True))

    def _put(self, kind: _Kind, row: BaseModel) -> None:
        frame = pl.DataFrame([row.model_dump()], schema=kind.schema)
        _write_atomic(frame, self._path(kind, getattr(row, kind.key)))

    def _table(self, kind: _Kind) -> pl.DataFrame:
        folder = self.out_dir / kind.folder
        files = sorted(
            entry.path for entry in os.scandir(folder)
            if entry.name.endswith(".parquet") and not entry.name.startswith(".")
        )
        if not files:
            return pl.DataFrame(schema=kind.schema)
        try:  # fast path: one multi-file read
            frame = pl.read_parquet(files, glob=False, hive_partitioning=False)
            if frame.schema == kind.schema and (frame["schema_version"] == SCHEMA_VERSION).all():
                return frame
            if set(frame.columns) <= set(kind.schema) and "schema_version" in frame.columns:
                if (frame["schema_version"] <= SCHEMA_VERSION).all():
                    with contextlib.suppress(IdbenchError):  # the slow path names the file
                        return _upgrade(frame, kind, folder)
        except (pl.exceptions.PolarsError, OSError):
            pass
        # slow path: file by file, to name the file that is damaged or from another schema
        return pl.concat([_read_file(Path(f), kind) for f in files])


def _read_file(path: Path, kind: _Kind) -> pl.DataFrame:
    """One stored row, checked: readable, of this schema version, with the expected columns."""
    try:
        frame = pl.read_parquet(path, glob=False, hive_partitioning=False)
    except (pl.exceptions.PolarsError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise IdbenchError(
            f"cannot read {path}: {reason}; the file is damaged: delete it ({kind.redo})"
        ) from None
    versions = (
        frame["schema_version"].unique().to_list() if "schema_version" in frame.columns else [None]
    )
    if len(versions) != 1 or versions[0] is None or versions[0] > SCHEMA_VERSION:
        raise IdbenchError(
            f"{path} holds results of schema version {versions[0]}, but this idbench reads versions "
            f"up to {SCHEMA_VERSION}: the results in {path.parent.parent} come from another idbench "
            "version; rerun into a fresh --out (or read them with the version that wrote them)"
        )
    if frame.height != 1 or not set(frame.columns) <= set(kind.schema):
        raise IdbenchError(
            f"{path} does not hold one {kind.model.__name__} of schema version {SCHEMA_VERSION}; "
            f"the file is damaged: delete it ({kind.redo})"
        )
    try:
        return _upgrade(frame, kind, path)
    except IdbenchError:
        raise
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise IdbenchError(
            f"{path} does not hold one {kind.model.__name__} of schema version {SCHEMA_VERSION} "
            f"({exc}); the file is damaged: delete it ({kind.redo})"
        ) from None


def _upgrade(frame: pl.DataFrame, kind: _Kind, where: Path) -> pl.DataFrame:
    """``frame`` (rows of this or an older schema version) in the current schema.

    The upgrade path for stores written before a column was added: a missing column is filled
    with its field's default, or null where the field is optional; a column whose type widened
    (``int`` to ``float``) is cast. A missing column with neither (a required field) means the
    rows cannot be read as they are: that is an error naming the column.
    """
    if frame.schema == kind.schema:
        return frame
    fill = []
    for name, dtype in kind.schema.items():
        if name in frame.columns:
            continue
        field = kind.model.model_fields[name]
        nullable = type(None) in typing.get_args(field.annotation)
        if field.is_required() and not nullable:
            version = frame["schema_version"][0]
            raise IdbenchError(
                f"{where} holds results of schema version {version} without the column {name!r} "
                "that this idbench needs: rerun into a fresh --out (or read them with the version "
                "that wrote them)"
            )
        value = None if field.is_required() else field.get_default(call_default_factory=True)
        fill.append(pl.lit(value, dtype=dtype).alias(name))
    return frame.with_columns(fill).select(
        [pl.col(name).cast(dtype) for name, dtype in kind.schema.items()]
    )


def upgrade(frame: pl.DataFrame, model: type[BaseModel], where: str | os.PathLike[str]) -> pl.DataFrame:
    """Rows of ``model`` (RunRow or MeasurementRow) of this or an older schema version in the
    current schema, as :func:`_upgrade` (published leaderboards are read the same way)."""
    return _upgrade(frame, _RUNS if model is RunRow else _MEASUREMENTS, Path(where))


def _write_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` so that ``path`` is either absent, the old file, or complete."""
    tmp = path.with_name(f".tmp-{path.stem}-{os.getpid()}-{secrets.token_hex(4)}.parquet")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            frame.write_parquet(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise IdbenchError(
            f"cannot write {path}: {exc.strerror or exc}; check the free space and permissions of "
            "the output folder"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


# row builders


def run_row(
    spec: RunSpec,
    result: RunResult,
    *,
    cell: str,
    suite: str | None,
    role: str,
    metric: str,
    device: str,
) -> RunRow:
    """The store row of one finished run: the spec, the outcome and the provenance.

    Subspace columns (projection, normalisation, compartments, d...) come from the run's own
    description (``result.subspace``), so they record what was built rather than what was asked;
    they are None for baseline runs. ``method_options`` holds what the method's ``describe()``
    added (with options given in the method spec).
    """
    info = result.subspace
    method, method_options = parse_spec(spec.method)
    extra = {k: v for k, v in info.items() if k not in SUBSPACE_KEYS}
    grad_cosine = extra.pop("grad_cosine", None)
    # methods with their own update rule (rbd, nes) say which optimiser they really used
    optimiser = {k: extra.pop(k, getattr(spec, k)) for k in ("optimizer", "momentum", "weight_decay")}
    method_options.update(extra.pop("method_options", {}))
    method_options.update(extra)
    subspace: dict[str, Any] = dict.fromkeys(
        ("projection", "normalisation", "compartments", "n_compartments", "d", "d_total")
    )
    projection_options: dict[str, Any] = {}
    if not spec.is_baseline:
        name, projection_options = parse_spec(spec.projection)
        projection_options.update(info.get("projection_options", {}))
        compartments = info.get("compartments", spec.compartments or 1)
        subspace = {
            "projection": info.get("projection", name),
            "normalisation": info.get("normalisation"),
            "compartments": str(compartments),
            "n_compartments": info.get("n_compartments"),
            "d": spec.d,
            "d_total": result.d_total if result.d_total is not None else info.get("d_total"),
        }
    return RunRow(
        run_key=spec.key(), cell=cell, suite=suite, role=role,
        model=spec.model, dataset=spec.dataset, D=result.D, metric=metric,
        projection_options=_json(projection_options), method=method,
        method_options=_json(method_options), **subspace,
        seed=spec.seed, lr=spec.lr, **optimiser, batch_size=spec.batch_size, epochs=spec.epochs,
        steps_budget=spec.steps, schedule=spec.schedule, warmup=spec.warmup,
        eval_every=spec.eval_every,
        patience=spec.patience, val_fraction=spec.val_fraction, split_seed=spec.split_seed,
        val_score=result.val_score, val_loss=result.val_loss, test_score=result.test_score,
        train_loss=result.train_loss, diverged=result.diverged, retries=result.retries,
        lr_final=result.lr_final if result.lr_final is not None else spec.lr,
        stopped_early=result.stopped_early, steps=result.steps, wall_s=result.wall_s,
        grad_cosine=grad_cosine, history=_json(result.history), device=device, versions=_json(versions()),
        git_rev=git_rev(), timestamp=now_iso(),
    )


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


# provenance


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
