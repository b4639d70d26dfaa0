"""Measure one cell: baseline, threshold, d search, every run stored.

:func:`measure` is the whole protocol of the design notes for one model x dataset x projection x
method, in named phases:

1. **bounds**: the model's D, the search range (d_max clamped to D) or the grid;
2. **baseline**: tune the baseline learning rate (Optuna), train the full model with every seed,
   and set the threshold to ``threshold`` x the mean baseline score (or use ``global:<score>``);
3. **reference tuning**: choose how the subspace lr at a probe d is set (:class:`SubspaceLr`):
   tuned once at a reference d and carried to other d, or tuned at every probe;
4. **search**: search d (:mod:`idbench.search`), each probe training every seed;
5. **row**: one row for the cell in the run store (every run already has its own row).

Runs are keyed by everything that determines them, so a rerun reuses what is stored and an
interrupted measurement resumes where it stopped. The reported number of runs and wall time are
those of the runs the measurement used, whether trained now or found in the store.

Example::

    row = idbench.measure(MeasureConfig(model="fc[depth=1,width=64]", dataset="digits",
                                        projection="fastfood", seeds=2, epochs=10), out="out")
    row.d_int, row.d_lo, row.censored
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from idbench.cell import CellRuns, OnEvent, parameter_count, run_spec
from idbench.config import MeasureConfig
from idbench.errors import IdbenchError
from idbench.executors import Executor, LocalExecutor
from idbench.schema import MeasurementRow
from idbench.curvature import lambda_max_of_run
from idbench.lr_protocol import Carry, TunedAtBracket
from idbench.search import Probe, SearchResult, search
from idbench.provenance import device_name, git_rev, now_iso, versions
from idbench.store import RunStore
from idbench.preflight import check_measurement, stored_measurement
from idbench.tuning import open_storage


def cell_key(config: MeasureConfig) -> str:
    """A stable hash of the cell's full configuration (:meth:`MeasureConfig.key`)."""
    return config.key()


@dataclass(frozen=True)
class Bounds:
    """Where the search looks: the model's D, the largest d (clamped to D), the grid if any, and
    the reference d where the subspace lr is tuned."""

    D: int
    d_max: int
    grid: list[int] | None
    d_ref: int


@dataclass(frozen=True)
class Baseline:
    """The baseline phase's outcome: mean and std score, and its learning rate (nan: global)."""

    mean: float
    std: float
    lr: float


class SubspaceLr(Protocol):
    """How the learning rate of the subspace runs at probe d is chosen: the one piece a new
    learning-rate protocol replaces (:func:`choose_subspace_lr` picks it)."""

    def lr_at(self, d: int) -> float:
        """The learning rate of every seed's run at probe ``d``."""

    def origin(self, d: int) -> dict[str, Any]:
        """The run-row columns that say where the rate at ``d`` was tuned and how it was carried:
        ``lr_tuned_at``, ``lr_carried_by``, ``curvature``."""

    def record(self) -> dict[str, Any]:
        """The MeasurementRow columns that say how the rate was chosen: ``tune_at``,
        ``lr_subspace`` and ``lr_scaling``."""


def tuning_range(config: MeasureConfig, lr_baseline: float, D: int, d: int) -> tuple[float, float]:
    """Where to tune the subspace lr at ``d``: around the baseline's lr carried from d = D to d by
    the lr scaling rule (within a factor lr_window), else the whole lr_range."""
    if math.isnan(lr_baseline) or config.lr_window is None:
        return config.lr_range
    # no curvature estimate at d = D is made for the prior: curvature falls back to auto's rule
    rule = config.fallback_lr_scaling if config.lr_scaling == "curvature" else None
    prior = config.subspace_lr(lr_baseline, D, d, rule=rule)
    return prior / config.lr_window, prior * config.lr_window


def _window(config: MeasureConfig, lr_baseline: float) -> str:
    return "" if math.isnan(lr_baseline) or config.lr_window is None else \
        f" window:{config.lr_window:g}"


@dataclass
class CarriedFromReference:
    """Tuned once at ``d_ref``, carried to every other d by the config's lr scaling rule."""

    carry: Carry
    lr_ref: float
    d_ref: int
    window: str

    def lr_at(self, d: int) -> float:
        return self.carry(self.lr_ref, self.d_ref, d)

    def origin(self, d: int) -> dict[str, Any]:
        return self.carry.origin(self.d_ref, d)

    def record(self) -> dict[str, Any]:
        return {"tune_at": f"ref:{self.d_ref}{self.window}", "lr_subspace": self.lr_ref,
                "lr_scaling": self.carry.rule}


@dataclass
class TunedAtEveryProbe:
    """Tuned anew at every probe d (``tune_every_probe``), within ``tuning_range``."""

    runs: CellRuns
    lr_baseline: float
    D: int
    window: str

    def lr_at(self, d: int) -> float:
        config = self.runs.config
        return self.runs.tune("subspace", d, tuning_range(config, self.lr_baseline, self.D, d))

    def origin(self, d: int) -> dict[str, Any]:
        return {"lr_tuned_at": d, "lr_carried_by": "none", "curvature": None}

    def record(self) -> dict[str, Any]:
        return {"tune_at": f"every-probe{self.window}", "lr_subspace": None, "lr_scaling": "none"}


def measure(
    config: MeasureConfig,
    *,
    out: str | Path = "idbench-out",
    suite: str | None = None,
    suite_version: str | None = None,
    device: str | None = None,
    storage: str | None = None,
    executor: Executor | None = None,
    on_event: OnEvent | None = None,
) -> MeasurementRow:
    """Measure d_int of one cell (see the module docstring); returns the stored row."""
    stored = stored_measurement(config, out, suite=suite, suite_version=suite_version,
                                device=device)
    if stored is not None:  # measured before: its runs, and so its result, are the stored ones
        return stored
    # every input checked before anything is written: a mistake leaves `out` as it was
    device = check_measurement(config, out=out, device=device, storage=storage)
    store = RunStore(out)
    storage = storage or str(Path(out).resolve() / "optuna-journal.log")
    open_storage(storage)
    runs = CellRuns(config, store, executor or LocalExecutor(), device, suite, storage, on_event)
    bounds = search_bounds(runs)
    baseline = measure_baseline(runs)
    threshold_score = config.threshold * baseline.mean
    runs.on_event(f"baseline {baseline.mean:.4f}, threshold {threshold_score:.4f}")
    rule = choose_subspace_lr(runs, baseline, bounds)
    result = search_d(runs, rule, bounds, threshold_score)
    row = measurement_row(runs, bounds, baseline, rule, result, suite=suite,
                          suite_version=suite_version)
    store.put_measurement(row)
    return row


def search_bounds(runs: CellRuns) -> Bounds:
    """Phase 1: D, the search range checked against it (d_max clamped, with a warning) and d_ref."""
    config = runs.config
    D = parameter_count(config, runs.data)
    grid = sorted(set(config.grid)) if config.grid else None
    d_max = grid[-1] if grid else config.d_max  # the largest d the search may probe
    if d_max > D:  # (d_min and the grid were checked against D: idbench.preflight.check_fits)
        warnings.warn(f"d_max = {d_max} exceeds D = {D}: searching up to D instead", stacklevel=3)
        d_max = D
    d_ref = config.d_ref or (grid[len(grid) // 2] if grid else round(math.sqrt(config.d_min * d_max)))
    return Bounds(D=D, d_max=d_max, grid=grid, d_ref=min(d_ref, D))


def measure_baseline(runs: CellRuns) -> Baseline:
    """Phase 2: the global score, or the tuned full-space runs of every seed."""
    config = runs.config
    if config.global_baseline is not None:
        return Baseline(config.global_baseline, 0.0, math.nan)
    lr = runs.tune("baseline", None, config.lr_range)
    runs.on_event(f"baseline: {config.seeds} seeds at lr={lr:.3g}")
    rows = runs.runs([runs.spec(s, lr) for s in range(config.seeds)], "baseline")
    if all(r.diverged for r in rows):
        raise IdbenchError(
            f"every baseline run of {config.model} on {config.dataset} diverged at "
            f"lr={lr:.3g}: lower --lr or the tuning range"
        )
    scores = [r.val_score for r in rows]
    std = float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0
    return Baseline(float(np.mean(scores)), std, lr)


def choose_subspace_lr(runs: CellRuns, baseline: Baseline, bounds: Bounds) -> SubspaceLr:
    """Phase 3 (reference tuning): how each probe's lr is set; tunes at d_ref unless every probe
    is tuned."""
    config = runs.config
    window = _window(config, baseline.lr)
    if config.tune_every_probe:
        return TunedAtEveryProbe(runs, baseline.lr, bounds.D, window)
    carry = Carry(config, lambda d: lambda_max_of_run(
        run_spec(config, seed=0, lr=1.0, d=d), runs.data))

    def tune(d: int) -> float:
        return runs.tune("subspace", d, tuning_range(config, baseline.lr, bounds.D, d))

    if config.retunes_at_bracket:
        return TunedAtBracket(tune, carry, bounds.d_ref, window, config.lr_retune_factor,
                              config.retune_restart)
    return CarriedFromReference(carry, tune(bounds.d_ref), bounds.d_ref, window)


def search_d(runs: CellRuns, rule: SubspaceLr, bounds: Bounds,
             threshold_score: float) -> SearchResult:
    """Phase 4: the d search; each probe trains every seed at the rule's lr."""
    config = runs.config

    def evaluate(d: int) -> list[float]:
        lr = rule.lr_at(d)
        runs.on_event(f"probe d={d}: {config.seeds} seeds at lr={lr:.3g}")
        rows = runs.runs([runs.spec(s, lr, d) for s in range(config.seeds)], "probe",
                         origin=rule.origin(d))
        return [r.val_score for r in rows]

    def on_probe(probe: Probe) -> None:
        verdict = "pass" if probe.passed else "fail"
        runs.on_event(f"probe d={probe.d}: mean {probe.mean:.4f} ({verdict})")

    def search_from(start: int) -> SearchResult:
        return search(evaluate, threshold_score=threshold_score, d_min=start,
                      d_max=bounds.d_max, resolution=config.resolution, grid=bounds.grid,
                      on_probe=on_probe)

    if isinstance(rule, TunedAtBracket):  # re-tunes as the search narrows, and searches again
        return rule.search(search_from, config.d_min)
    return search_from(config.d_min)


# MeasureConfig fields stored under another column name, and those recorded through another
# column (how the subspace lr was chosen is in tune_at / lr_subspace / lr_scaling)
RENAMED = {"steps": "steps_budget", "baseline": "baseline_kind"}
RECORDED_AS = {"tune_every_probe": "tune_at", "d_ref": "tune_at", "lr_window": "tune_at",
               "lr_protocol": "tune_at", "lr_retune_factor": "tune_at", "retune_restart": "tune_at",
               "lr": "lr_baseline"}


def config_columns(config: MeasureConfig) -> dict[str, Any]:
    """The MeasurementRow columns that record ``config``: each field under its own (or
    :data:`RENAMED`) column, tuples as JSON, specs by name (their options come from the runs)."""
    row_fields = MeasurementRow.model_fields
    columns: dict[str, Any] = {}
    for name, value in config.recorded().items():
        column = RENAMED.get(name, name)
        if column in row_fields:
            columns[column] = json.dumps(list(value)) if isinstance(value, tuple) else value
    columns.update(projection=config.projection.name,
                   method=config.method.name,
                   compartments=str(config.compartments or 1))
    return columns


def measurement_row(runs: CellRuns, bounds: Bounds, baseline: Baseline, rule: SubspaceLr,
                    result: SearchResult, *, suite: str | None,
                    suite_version: str | None) -> MeasurementRow:
    """Phase 5: the cell's row: its config, how it was measured, the result and provenance."""
    used = runs.used.values()
    return MeasurementRow(**{
        **config_columns(runs.config),
        **rule.record(),
        **({"ngd_damping": runs.damping["subspace"]} if "subspace" in runs.damping else {}),
        "cell": runs.key, "suite": suite, "suite_version": suite_version, "D": bounds.D,
        "metric": runs.data.metric,
        "projection_options": _subspace_options(used, "projection_options"),
        "normalisation": "unit-column",
        "method_options": _subspace_options(used, "method_options"),
        "search": "grid" if bounds.grid else "bisect", "d_max": bounds.d_max,
        "grid": json.dumps(bounds.grid) if bounds.grid else None,
        "lr_baseline": baseline.lr, "baseline_mean": baseline.mean,
        "baseline_std": baseline.std, "threshold_score": runs.config.threshold * baseline.mean,
        "d_int": result.d_int, "d_lo": result.d_lo, "d_hi": result.d_hi,
        "ci_low": result.ci_low, "ci_high": result.ci_high, "censored": result.censored,
        "probes": json.dumps([p.to_dict() for p in sorted(result.probes, key=lambda p: p.d)]),
        "n_runs": len(runs.used), "run_keys": json.dumps(sorted(runs.used)), "wall_s": sum(r.wall_s for r in used),
        "device": device_name(runs.device), "versions": json.dumps(versions(), sort_keys=True),
        "git_rev": git_rev(),
        "timestamp": max((r.timestamp for r in used), default=None) or now_iso(),
    })


def _subspace_options(rows: Any, column: str) -> str:
    """The options of the subspace runs (all probes share them), as stored JSON."""
    for row in rows:
        if row.role != "baseline" and row.projection is not None:
            return getattr(row, column)
    return "{}"


__all__ = ["Baseline", "Bounds", "CarriedFromReference", "SubspaceLr", "TunedAtEveryProbe",
           "cell_key", "measure", "run_spec"]
