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
exactly one file, because the same key always maps to the same name (:mod:`idbench.atomic`).
Temporary leftovers of a crash start with a dot and are ignored by readers; opening the store
deletes those whose writer process is dead. Rows of an older schema version are read through
:func:`idbench.frames.upgrade`. The store only persists rows: they are built by :mod:`idbench.rows`.

Reads are cached in the process, by each file's (inode, modification time, size): a file is only
ever replaced by a rename, which gives it a new inode, so an unchanged signature is unchanged
content, and a run another process stores is seen at the next read. Measuring the cells of a suite
from stored runs reads each file once instead of once per cell.

Example::

    store = RunStore("out/mnist-fc")
    key = spec.key()
    if not store.has(key):
        result = idbench.train.run(spec, data)
        store.put(idbench.rows.run_row(spec, result, cell=cell, suite=None, role="probe", metric="accuracy",
                          device=device_name(data.x_train.device)))
    runs = store.table()  # polars.DataFrame, one row per run, columns as in RunRow
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection

import polars as pl
from pydantic import BaseModel

from idbench.atomic import remove_stale_temps, write_atomic
from idbench.errors import IdbenchError
from idbench.frames import polars_schema, upgrade
from idbench.schema import SCHEMA_VERSION, MeasurementRow, RunRow

_KEY = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*")


@dataclass(frozen=True)
class _Kind:
    """One kind of row the store holds: its folder, its model and which field is its key."""

    folder: str
    model: type[BaseModel]
    key: str
    schema: pl.Schema
    redo: str  # what deleting a damaged file costs


_RUNS = _Kind("runs", RunRow, "run_key", polars_schema(RunRow), "the run is redone on resume")
Signature = tuple[int, int, int]
_FILES: dict[Path, tuple[Signature, pl.DataFrame]] = {}  # one-row frames read, by path
_TABLES: dict[Path, tuple[tuple[tuple[str, Signature], ...], pl.DataFrame]] = {}  # by folder
_CACHED_FILES, _CACHED_TABLES = 50_000, 8  # bounds: past them the oldest entries are dropped
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
                remove_stale_temps(folder)  # left by a writer killed in the middle of a write
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

    def adopt(self, runs: pl.DataFrame) -> int:
        """Store the runs of ``runs`` (rows as in :class:`RunRow`, e.g. a published
        ``runs.parquet``, which lists a run once per cell that used it) that this store lacks;
        returns how many. A run's key is everything that determines it, so a cell that needs one
        of them finds it here instead of training it again."""
        added = 0
        for row in runs.unique("run_key", keep="first", maintain_order=True).iter_rows(named=True):
            if not self.has(row["run_key"]):
                self.put(RunRow(**row))
                added += 1
        return added

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

    # shared by both kinds

    def _path(self, kind: _Kind, key: str) -> Path:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(f"{kind.key} {key!r} is not a valid file name (a hash is expected)")
        return self.out_dir / kind.folder / f"{key}.parquet"

    def _get(self, kind: _Kind, key: str) -> Any:
        path = self._path(kind, key)
        try:
            signature = _signature(path.stat())
        except FileNotFoundError:
            return None
        cached = _FILES.get(path)
        if cached is None or cached[0] != signature:
            cached = _remember(_FILES, path, (signature, _read_file(path, kind)), _CACHED_FILES)
        return kind.model.model_validate(cached[1].row(0, named=True))

    def _put(self, kind: _Kind, row: BaseModel) -> None:
        frame = pl.DataFrame([row.model_dump()], schema=kind.schema)
        path = write_atomic(self._path(kind, getattr(row, kind.key)), frame.write_parquet)
        # a row of this schema version reads back as the frame just written: a get() of it (a
        # measurement using the runs it adopted or trained) need not parse it, until the file changes
        if row.schema_version == SCHEMA_VERSION:
            _remember(_FILES, path, (_signature(path.stat()), frame), _CACHED_FILES)

    def _table(self, kind: _Kind) -> pl.DataFrame:
        folder = self.out_dir / kind.folder
        listing = tuple(sorted(
            (entry.path, _signature(entry.stat())) for entry in os.scandir(folder)
            if entry.name.endswith(".parquet") and not entry.name.startswith(".")
        ))
        cached = _TABLES.get(folder)
        if cached is None or cached[0] != listing:
            cached = _remember(_TABLES, folder, (listing, _read_table(kind, folder, listing)),
                               _CACHED_TABLES)
        return cached[1]


def _signature(stat: os.stat_result) -> Signature:
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def _remember(cache: dict, key: Path, value: tuple, bound: int) -> tuple:
    """Store ``value`` under ``key``, dropping the oldest entry past ``bound``; return it."""
    cache.pop(key, None)
    if len(cache) >= bound:
        cache.pop(next(iter(cache)))
    cache[key] = value
    return value


def _read_table(kind: _Kind, folder: Path,
                listing: tuple[tuple[str, Signature], ...]) -> pl.DataFrame:
    """The rows of the files of ``listing`` (in ``folder``) as one frame, checked."""
    files = [path for path, _ in listing]
    if not files:
        return pl.DataFrame(schema=kind.schema)
    try:  # fast path: one multi-file read
        frame = pl.read_parquet(files, glob=False, hive_partitioning=False)
        if frame.schema == kind.schema and (frame["schema_version"] == SCHEMA_VERSION).all():
            return frame
        if set(frame.columns) <= set(kind.schema) and "schema_version" in frame.columns:
            if (frame["schema_version"] <= SCHEMA_VERSION).all():
                with contextlib.suppress(IdbenchError):  # the slow path names the file
                    return upgrade(frame, kind.model, folder)
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
        return upgrade(frame, kind.model, path)
    except IdbenchError:
        raise
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise IdbenchError(
            f"{path} does not hold one {kind.model.__name__} of schema version {SCHEMA_VERSION} "
            f"({exc}); the file is damaged: delete it ({kind.redo})"
        ) from None


def stored_run_keys(out_dir: str | os.PathLike[str]) -> set[str]:
    """The keys of the runs stored in ``out_dir``, read from the file names without creating
    anything (none when it holds no run store)."""
    runs = Path(out_dir) / _RUNS.folder
    return {p.stem for p in runs.glob("*.parquet") if not p.name.startswith(".")} \
        if runs.is_dir() else set()


def of_cells(frame: pl.DataFrame, cells: Collection[str]) -> pl.DataFrame:
    """The rows of ``frame`` (runs or measurements) whose cell key is in ``cells``."""
    return frame.filter(pl.col("cell").is_in(list(cells)))


def cell_runs(runs: pl.DataFrame, measurements: pl.DataFrame) -> pl.DataFrame:
    """The runs each of ``measurements`` used, one row per (cell, run), under that cell's key.

    A stored run keeps the cell that trained it; cells that reuse it (one baseline under several
    projections, a cell re-keyed by a protocol change) list it in their ``run_keys``. A measurement
    stored before that column existed gets the runs stored under its own cell key.
    """
    listed = measurements.filter(pl.col("run_keys").is_not_null())
    keys = pl.col("run_keys").str.json_decode(pl.List(pl.String)).alias("run_key")
    by_key = (
        listed.select("cell", keys).explode("run_key")
        .join(runs.drop("cell"), on="run_key", how="inner")
        .select(runs.columns)
    )
    unlisted = of_cells(runs, measurements.filter(pl.col("run_keys").is_null())["cell"].to_list())
    return pl.concat([by_key, unlisted])  # disjoint: a cell lists its runs or it does not


def export(frame: pl.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write ``frame`` (rows of the store, e.g. a leaderboard's) as one Parquet file at ``path``,
    atomically."""
    write_atomic(path, frame.write_parquet)
