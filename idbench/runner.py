"""Run a suite: measure every cell, store every run, publish the leaderboard.

``run_suite`` expands the suite file into cells, measures each with :func:`idbench.measure` (runs
found in the store are reused, so a rerun resumes where it stopped), exports the suite's Parquet
results and renders the leaderboard next to them (``leaderboards/<suite>/`` by default).

Example::

    result = idbench.run_suite("suites/quickstart.yaml", out="idbench-out/quickstart")
    print(result.table)          # the Markdown leaderboard
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import polars as pl

import idbench.leaderboard as leaderboard
from idbench.config import MeasureConfig
from idbench.errors import IdbenchError
from idbench.executors import LocalExecutor
from idbench.measurement import cell_key, measure
from idbench.schema import MeasurementRow
from idbench.store import RunStore
from idbench.suites import Cell, Suite, load_suite

OnEvent = Callable[[str], None]


def cell_label(config: MeasureConfig) -> str:
    """A readable name of a cell, matched by ``--only``: model/dataset/projection/method."""
    label = f"{config.model}/{config.dataset}/{config.projection}/{config.method}"
    return label if config.compartments is None else f"{label}/c={config.compartments}"


@dataclass
class SuiteResult:
    """What a suite run produced."""

    suite: Suite
    measurements: list[MeasurementRow] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (cell label, reason)
    files: dict[str, Path] = field(default_factory=dict)  # leaderboard files written
    table: str = ""  # the Markdown leaderboard


def select_cells(suite: Suite, only: str | None) -> list[Cell]:
    """The suite's cells whose label matches the wildcard ``only`` (all when None)."""
    cells = suite.cells()
    if only is None:
        return cells
    chosen = [c for c in cells if fnmatch.fnmatch(cell_label(c.config), only)]
    if not chosen:
        labels = "\n  ".join(cell_label(c.config) for c in cells)
        raise IdbenchError(f"--only {only!r} matches no cell of {suite.name}; its cells are:\n  {labels}")
    return chosen


def plan(suite_path: str | Path, *, out: str | Path | None = None,
         only: str | None = None) -> list[dict]:
    """What ``--dry-run`` prints: each cell, whether it runs, and how much of it is stored."""
    suite = load_suite(suite_path)
    out = Path(out or default_out(suite))
    stored_runs = pl.DataFrame()
    stored_cells: set[str] = set()
    if (out / "runs").is_dir():
        store = RunStore(out)
        stored_runs = store.table()
        stored_cells = set(store.measurements()["cell"])
    rows = []
    for cell in select_cells(suite, only):
        key = cell_key(cell.config)
        runs = stored_runs.filter(pl.col("cell") == key).height if stored_runs.height else 0
        rows.append({"cell": cell_label(cell.config), "key": key, "skipped": cell.skipped,
                     "stored_runs": runs, "measured": key in stored_cells})
    return rows


def default_out(suite: Suite) -> Path:
    return Path("idbench-out") / suite.name


def run_suite(
    suite_path: str | Path,
    *,
    out: str | Path | None = None,
    leaderboard_dir: str | Path | None = None,
    only: str | None = None,
    resume: bool = False,
    device: str | None = None,
    storage: str | None = None,
    executor: LocalExecutor | None = None,
    on_event: OnEvent | None = None,
    on_cell: Callable[[int, int, str], None] | None = None,
) -> SuiteResult:
    """Measure every cell of a suite and render its leaderboard (see the module docstring).

    ``out`` holds the run store and the Optuna studies (default ``idbench-out/<suite>``);
    ``leaderboard_dir`` the published results (default ``leaderboards/<suite>``). An output folder
    that already holds runs is only continued with ``resume=True``.
    """
    suite = load_suite(suite_path)
    cells = select_cells(suite, only)
    out = Path(out or default_out(suite))
    leaderboard_dir = Path(leaderboard_dir or Path("leaderboards") / suite.name)
    if not resume and (out / "runs").is_dir() and any((out / "runs").glob("*.parquet")):
        raise IdbenchError(
            f"{out} already holds runs: pass --resume to continue that suite, or choose another --out"
        )
    store = RunStore(out)
    result = SuiteResult(suite)
    todo = [c for c in cells if c.skipped is None]
    result.skipped = [(cell_label(c.config), c.skipped) for c in cells if c.skipped is not None]
    for index, cell in enumerate(todo):
        label = cell_label(cell.config)
        if on_cell is not None:
            on_cell(index, len(todo), label)
        row = measure(cell.config, out=out, suite=suite.name, suite_version=suite.version,
                      device=device, storage=storage, executor=executor, on_event=on_event)
        result.measurements.append(row)
    if not result.measurements:
        raise IdbenchError(f"no cell of {suite.name} could run: " + "; ".join(
            f"{label}: {reason}" for label, reason in result.skipped))
    # the leaderboard covers every cell measured into this output folder (earlier --only runs too)
    measurements, runs = store.measurements(), store.table()
    provenance = {"suite": suite.name, "suite_version": suite.version, "suite_hash": suite.hash}
    result.files = leaderboard.render(measurements, runs, leaderboard_dir, provenance=provenance)
    store.export(leaderboard_dir / "runs.parquet")
    store.export_measurements(leaderboard_dir / "measurements.parquet")
    result.table = leaderboard.format_table(leaderboard.table(measurements, runs), "md")
    return result
