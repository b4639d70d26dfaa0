"""Run a suite: measure every cell, store every run, publish the leaderboard.

``run_suite`` expands the suite file into cells, measures each with :func:`idbench.measure` (runs
found in the store are reused, so a rerun resumes where it stopped), exports the suite's Parquet
results and renders the leaderboard next to them: ``<out>/leaderboard/`` by default, so a run writes
nothing outside its output folder; publishing into a checkout's ``leaderboards/<suite>/`` is asked
for by naming that folder (``leaderboard_dir``, the command line's ``--leaderboard``).

Example::

    result = idbench.run_suite("suites/quickstart.yaml", out="idbench-out/quickstart")
    print(result.table)          # the Markdown leaderboard
"""

from __future__ import annotations

import fnmatch
import functools
import json
import threading
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import polars as pl

import idbench.leaderboard as leaderboard
from idbench.errors import IdbenchError
import idbench.executors as executors
from idbench.executors import Executor
from idbench.leaderboard.results import MEASUREMENTS_FILE, RUNS_FILE, load_runs
from idbench.atomic import write_atomic
from idbench.config import MeasureConfig
from idbench.draws import draw_config
from idbench.measurement import cell_key, in_store, measure
from idbench.schema import MeasurementRow
from idbench.store import RunStore, cell_runs, export, of_cells, stored_run_keys
from idbench.suites import Cell, Suite, load_suite
from idbench.preflight import check_suite_run
from idbench.theta0 import CHECKPOINTS, checkpoint_path

OnEvent = Callable[[str], None]
LEADERBOARD_DIR = "leaderboard"  # the leaderboard's folder inside --out, unless one is named


@dataclass
class SuiteResult:
    """What a suite run produced."""

    suite: Suite
    measurements: list[MeasurementRow] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (cell label, reason)
    files: dict[str, Path] = field(default_factory=dict)  # leaderboard files written
    table: str = ""  # the Markdown leaderboard
    reused_runs: int = 0  # runs the measured cells used that were stored before this run
    trained_runs: int = 0  # runs stored by this run (trained here)


def select_cells(suite: Suite, only: str | None) -> list[Cell]:
    """The suite's cells whose label matches the wildcard ``only`` (all when None)."""
    cells = suite.cells()
    if only is None:
        return cells
    chosen = [c for c in cells if fnmatch.fnmatch(c.label, only)]
    if not chosen:
        labels = "\n  ".join(c.label for c in cells)
        raise IdbenchError(f"--only {only!r} matches no cell of {suite.name}; its cells are:\n  {labels}")
    return chosen


def plan(suite_path: str | Path, *, out: str | Path | None = None,
         only: str | None = None, reuse: Sequence[str | Path] = ()) -> list[dict]:
    """What ``--dry-run`` prints: each cell, whether it runs, and how much of it is stored (in
    ``out``, or in the results that ``reuse`` would copy there)."""
    suite = load_suite(suite_path)
    out = Path(out or default_out(suite))
    frames = [load_runs(path).select("run_key", "cell") for path in reuse]
    stored_cells: set[str] = set()
    if (out / "runs").is_dir():
        store = RunStore(out)
        frames.append(store.table().select("run_key", "cell"))
        stored_cells = set(store.measurements()["cell"])
    stored_runs = pl.concat(frames).unique() if frames else pl.DataFrame()
    rows = []
    for cell in select_cells(suite, only):
        key = cell_key(cell.config)
        keys = [key] + [cell_key(draw_config(cell.config, i))  # a pooled cell's draws (their runs)
                        for i in range(cell.config.draws if cell.config.draws > 1 else 0)]
        runs = stored_runs.filter(pl.col("cell").is_in(keys)).height if stored_runs.height else 0
        rows.append({"cell": cell.label, "key": key, "skipped": cell.skipped,
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
    executor: Executor | str | None = None,
    executor_options: dict | None = None,
    on_event: OnEvent | None = None,
    on_cell: Callable[[int, int, str], None] | None = None,
    reuse: Sequence[str | Path] = (),
) -> SuiteResult:
    """Measure every cell of a suite and render its leaderboard (see the module docstring).

    ``out`` holds the run store and the Optuna studies (default ``idbench-out/<suite>``);
    ``leaderboard_dir`` the leaderboard and its Parquet results (default ``<out>/leaderboard``;
    ``leaderboards/<suite>`` publishes into a checkout's boards). An output folder
    that already holds runs is only continued with ``resume=True``.

    ``executor`` is an executor, or the name of one to start (``"dask"``, with
    ``executor_options`` such as ``workers``) after the suite and storage are checked and to close
    at the end. With a distributed executor the cells are measured concurrently, as many at a time
    as it has slots (each cell's d search stays sequential).

    ``reuse``: results folders (``leaderboards/<suite>/``) or ``runs.parquet`` files whose runs are
    copied into ``out`` first, so that no run they hold trains again: a published leaderboard is
    re-measured from its runs alone, and a suite that shares cells with it trains only the rest.
    """
    suite = load_suite(suite_path)
    out = Path(out or default_out(suite))
    leaderboard_dir = Path(leaderboard_dir or out / LEADERBOARD_DIR)
    result = SuiteResult(suite)
    todo, result.skipped = _runnable_cells(suite, only, out, resume)
    reused = [load_runs(path) for path in reuse]
    todo = _with_checkpoints_found(todo, [out, *reuse])
    # every input checked before anything is written or trains (the cells' specs and options
    # were checked by load_suite)
    distributed = executor != "local" if isinstance(executor, str) else (
        executor is not None and not executor.in_process)
    check_suite_run([c.config for c in todo], out=out, leaderboard_dir=leaderboard_dir,
                    device=device, storage=storage, local=not distributed)
    owned = isinstance(executor, str) or (executor is None and bool(executor_options))
    if owned:  # an unknown name, or a scheduler that cannot be reached, fails here
        executor = executors.create(executor or "local", **(executor_options or {}))
    try:
        store, stored = _open_store(out, reused, resume, todo)
        result.measurements = _measure_cells(
            todo, executor or executors.LocalExecutor(), on_cell,
            lambda config, executor: measure(
                config, out=out, suite=suite.name, suite_version=suite.version,
                device=device, storage=storage, executor=executor, on_event=on_event))
    finally:
        if owned:
            executor.close()
    _publish(store, suite, leaderboard_dir, result)
    _count_runs(result, out, stored)
    return result


def _count_runs(result: SuiteResult, out: Path, stored: set[str]) -> None:
    """How many runs the measured cells reused from those ``stored`` before, and how many this
    run stored (trained)."""
    used = {key for row in result.measurements for key in json.loads(row.run_keys or "[]")}
    result.reused_runs = len(used & stored)
    result.trained_runs = len(stored_run_keys(out) - stored)


def _open_store(out: Path, reused: list[pl.DataFrame], resume: bool,
                cells: list[Cell]) -> tuple[RunStore, set[str]]:
    """The run store in ``out`` with the ``reused`` runs (and the checkpoints ``cells`` start
    from) copied in, and the keys of the runs it then holds; a ``resume`` of a folder without runs
    says that it starts from scratch (a mistyped --out would otherwise silently train everything
    again)."""
    store = RunStore(out)
    for runs in reused:
        store.adopt(runs)
    _copy_checkpoints([c.config for c in cells], out)
    stored = stored_run_keys(out)
    if resume and not stored:
        warnings.warn(f"--resume: {out} holds no stored runs, so this run starts from scratch "
                      "(if you meant to continue a run, check --out)", stacklevel=3)
    return store, stored



def _with_checkpoints_found(cells: list[Cell], stores: Sequence[str | Path]) -> list[Cell]:
    """``cells``, a stored run's checkpoint that names no store found in the first of ``stores``
    (the output folder, then the --reuse folders or those of their runs.parquet) that holds it."""
    folders = [Path(p) if Path(p).is_dir() or i == 0 else Path(p).parent
               for i, p in enumerate(stores)]
    return [replace(c, config=in_store(c.config, folders)) for c in cells]


def _copy_checkpoints(configs: Sequence[MeasureConfig], into: Path) -> None:
    """The stored runs' checkpoints that ``configs`` start from, copied into the store ``into``
    where they lie elsewhere (a reused folder): the store then holds all it needs, and a board
    published from it ships them."""
    for config in configs:
        if config.theta0.name == "checkpoint" and "run" in config.theta0.options:
            source = checkpoint_path(config.theta0)
            target = into / CHECKPOINTS / source.name
            if source.is_file() and not target.is_file():
                write_atomic(target, source.read_bytes())


def _runnable_cells(suite: Suite, only: str | None, out: Path,
                    resume: bool) -> tuple[list[Cell], list[tuple[str, str]]]:
    """The cells to measure, and (label, reason) of those skipped; refuses an output folder that
    holds runs without ``resume`` and a suite of which no cell can run."""
    cells = select_cells(suite, only)
    if not resume and stored_run_keys(out):
        raise IdbenchError(
            f"{out} already holds runs: pass --resume to continue that suite, or choose another --out"
        )
    todo = [c for c in cells if c.skipped is None]
    skipped = [(c.label, c.skipped) for c in cells if c.skipped is not None]
    if not todo:
        raise IdbenchError(f"no cell of {suite.name} could run: " + "; ".join(
            f"{label}: {reason}" for label, reason in skipped))
    return todo, skipped


def _publish(store: RunStore, suite: Suite, leaderboard_dir: Path, result: SuiteResult) -> None:
    """Render the leaderboard and export the Parquet results into ``leaderboard_dir``: every cell
    of this suite measured into this output folder (earlier --only runs too), and no other (an
    output folder shared by several suites also holds theirs, and cells of earlier protocols);
    with the stored pretraining runs its cells start from, and their checkpoints."""
    keys = {cell_key(cell.config) for cell in suite.cells()}
    measurements = of_cells(store.measurements(), keys)
    measured = set(measurements["cell"])
    configs = [in_store(c.config, [store.out_dir]) for c in suite.cells()
               if cell_key(c.config) in measured]
    _copy_checkpoints(configs, leaderboard_dir)
    table = store.table()
    pretrained = {c.theta0.options["run"] for c in configs if "run" in c.theta0.options}
    runs = pl.concat([cell_runs(table, measurements),  # with the pretrainings theta0 comes from
                      table.filter(pl.col("run_key").is_in(list(pretrained)))], how="diagonal")
    provenance = {"suite": suite.name, "suite_version": suite.version, "suite_hash": suite.hash}
    result.files = leaderboard.render(measurements, runs, leaderboard_dir, provenance=provenance)
    export(runs, leaderboard_dir / RUNS_FILE)
    export(measurements, leaderboard_dir / MEASUREMENTS_FILE)
    result.table = leaderboard.format_table(leaderboard.table(measurements, runs), "md")


def _measure_cells(cells: list[Cell], executor: Executor, on_cell: Callable | None,
                   measure_one: Callable) -> list[MeasurementRow]:
    """Measure ``cells`` (rows in cell order): one after the other in this process, or, for a
    distributed executor, up to ``executor.slots`` at a time in threads that wait on its workers.

    The first error (or Ctrl-C) cancels the outstanding runs and stops the other cells; what
    finished is stored, so ``--resume`` continues from there.
    """
    total = len(cells)
    if executor.in_process:
        rows = []
        for index, cell in enumerate(cells):
            if on_cell is not None:
                on_cell(index, total, cell.label)
            rows.append(measure_one(cell.config, executor))
        return rows

    done = [0]
    guard = threading.Lock()

    def one(cell: Cell) -> MeasurementRow:
        if on_cell is not None:
            with guard:
                on_cell(done[0], total, cell.label)
        row = measure_one(cell.config, executor)
        with guard:
            done[0] += 1
        return row

    return executors.concurrently([functools.partial(one, cell) for cell in cells], executor,
                                  threads=executor.slots, name="idbench-cell")
