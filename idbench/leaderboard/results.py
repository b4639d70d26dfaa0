"""Reading a suite's results for the leaderboard: two Parquet files, checked before anything renders.

A results folder (``leaderboards/<suite>/``, or a measurement's ``--out`` folder after export) holds

    measurements.parquet   one row per measured cell (:class:`~idbench.schema.MeasurementRow`)
    runs.parquet           one row per training run and cell that used it
                           (:class:`~idbench.schema.RunRow`)

Files from a newer schema version, or without a column the current rows require, are refused
with one :class:`IdbenchError` before any output is written; rows of an older version are upgraded
as the run store upgrades them (a column added since is filled with its default).
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from idbench.errors import IdbenchError
from idbench.schema import SCHEMA_VERSION, MeasurementRow, RunRow
from idbench.frames import polars_schema, upgrade

MEASUREMENTS_FILE = "measurements.parquet"
RUNS_FILE = "runs.parquet"
MEASUREMENT_SCHEMA = polars_schema(MeasurementRow)
RUN_SCHEMA = polars_schema(RunRow)


def load_results(path: str | os.PathLike[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(measurements, runs)`` of a results folder, of a ``measurements.parquet`` path, or of a
    run store (the ``--out`` folder of ``idbench measure`` or ``idbench run``).

    Raises :class:`IdbenchError` when a file is missing, unreadable, or of another schema version.
    """
    path = Path(path)
    folder = path.parent if path.is_file() or path.suffix == ".parquet" else path
    if not folder.is_dir():
        raise IdbenchError(
            f"results folder {folder} does not exist: give the folder that holds "
            f"{MEASUREMENTS_FILE} and {RUNS_FILE} (e.g. leaderboards/<suite>/) or the --out "
            "folder of `idbench measure` or `idbench run`"
        )
    if not (folder / MEASUREMENTS_FILE).is_file() and (folder / "measurements").is_dir():
        # a run store (`idbench measure --out`, `idbench run --out`): its rows, read in place
        from idbench.store import RunStore, cell_runs

        store = RunStore(folder)
        measurements = store.measurements()
        if measurements.height == 0:
            raise IdbenchError(
                f"{folder} holds no finished measurement yet ({store.table().height} runs): "
                "finish it by rerunning the command that wrote it"
            )
        return measurements, cell_runs(store.table(), measurements)
    measurements = _read(folder / MEASUREMENTS_FILE, MEASUREMENT_SCHEMA)
    runs = _read(folder / RUNS_FILE, RUN_SCHEMA)
    return measurements, runs


def load_runs(path: str | os.PathLike[str]) -> pl.DataFrame:
    """The runs of a results folder (its ``runs.parquet``), of a ``runs.parquet`` path, or of a
    run store (the ``--out`` folder of ``idbench measure`` or ``idbench run``: every run stored
    there): what ``idbench run --reuse`` copies into a run store.

    Raises :class:`IdbenchError` when there is no such file, or it is unreadable or of another
    schema version.
    """
    path = Path(path)
    if path.is_dir() and not (path / RUNS_FILE).is_file() and (path / "runs").is_dir():
        from idbench.store import RunStore

        return RunStore(path).table()
    if path.is_dir():
        path = path / RUNS_FILE
    if not path.is_file():
        raise IdbenchError(
            f"--reuse {path}: not found; give a results folder that holds {RUNS_FILE} "
            "(leaderboards/<suite>/), the path of a runs.parquet, or the --out folder of "
            "`idbench run` or `idbench measure`"
        )
    return _read(path, RUN_SCHEMA)


def _read(path: Path, schema: pl.Schema) -> pl.DataFrame:
    if not path.is_file():
        raise IdbenchError(
            f"{path} not found: a results folder holds {MEASUREMENTS_FILE} (one row per cell) and "
            f"{RUNS_FILE} (its runs), as `idbench run` writes them to leaderboards/<suite>/"
        )
    try:
        frame = pl.read_parquet(path, glob=False, hive_partitioning=False)
    except (pl.exceptions.PolarsError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise IdbenchError(f"cannot read {path}: {reason}; is it a Parquet file idbench wrote?") from None
    return check_frame(frame, schema, str(path))


def check_frame(frame: pl.DataFrame, schema: pl.Schema, name: str) -> pl.DataFrame:
    """``frame`` in ``schema``, after checking its schema version and columns: rows of an older
    version are upgraded as the run store does (a column added since, filled with its default)."""
    if "schema_version" not in frame.columns:
        raise IdbenchError(f"{name} has no schema_version column: it is not an idbench results file")
    versions = sorted(v for v in frame["schema_version"].unique().to_list() if v is not None)
    newer = [v for v in versions if v > SCHEMA_VERSION]
    if newer:
        raise IdbenchError(
            f"{name} was written by schema version {newer[0]}, this idbench reads versions up to "
            f"{SCHEMA_VERSION}: re-run the suite or use a matching idbench"
        )
    model = MeasurementRow if schema == MEASUREMENT_SCHEMA else RunRow
    try:
        return upgrade(frame, model, name)
    except pl.exceptions.PolarsError as exc:
        raise IdbenchError(f"{name} has columns of the wrong type ({exc}); re-run the suite") from None


def check_measurements(frame: pl.DataFrame, name: str = "the measurements") -> pl.DataFrame:
    return check_frame(frame, MEASUREMENT_SCHEMA, name)


def check_runs(frame: pl.DataFrame | None, name: str = "the runs") -> pl.DataFrame:
    if frame is None:
        return pl.DataFrame(schema=RUN_SCHEMA)
    return check_frame(frame, RUN_SCHEMA, name)


def latest_per_cell(measurements: pl.DataFrame) -> pl.DataFrame:
    """One row per cell key: the latest measurement when a cell was measured more than once."""
    return (
        measurements.sort("timestamp", nulls_last=False, maintain_order=True)
        .unique(subset="cell", keep="last", maintain_order=True)
    )
