"""Measure one cell: baseline, threshold, d search, every run stored.

:func:`measure` is the whole protocol of the design notes for one model x dataset x projection x
method, in named phases:

1. **bounds**: the model's D, the search range (d_max clamped to D) or the grid;
2. **baseline**: tune the baseline learning rate (Optuna), train the full model with every seed,
   and set the threshold to ``threshold`` x the mean baseline score (or use ``global:<score>``);
3. **subspace rate**: the learning-rate protocol's strategy (:mod:`idbench.lr.protocols`):
   which rate a probe at d trains with, and where it is tuned;
4. **search**: search d (:mod:`idbench.search`) as the strategy runs it, each probe training
   every seed;
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
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from idbench.cell import CellRuns, OnEvent, parameter_count, run_spec
from idbench.lr.carry import Carry, tuning_range, window_label, window_moves
from idbench.lr.protocols import SubspaceLr, choose_subspace_lr
from idbench.lr.tuner import Tuner
from idbench.config import MeasureConfig
from idbench.errors import IdbenchError
from idbench.draws import measure_draws
from idbench.estimate import covers
from idbench.executors import Executor, LocalExecutor
from idbench.schema import MeasurementRow
from idbench.search import Probe, SearchResult, search
from idbench.provenance import device_name, git_rev, now_iso, versions
from idbench.store import RunStore
from idbench.theta0 import located, recorded_digest
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
    """The baseline phase's outcome: mean and std score, its learning rate (nan: global) and the
    score of each seed (None: global)."""

    mean: float
    std: float
    lr: float
    scores: tuple[float, ...] | None = None


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
    config = in_store(config, [Path(out)])
    stored = stored_measurement(config, out, suite=suite, suite_version=suite_version,
                                device=device)
    if stored is not None:  # measured before: its runs, and so its result, are the stored ones
        return stored
    if config.draws > 1:  # independent draws, each an ordinary measurement, then pooled
        row = measure_draws(config, lambda draw: measure(
            draw, out=out, suite=suite, suite_version=suite_version, device=device,
            storage=storage, executor=executor, on_event=on_event), cell_key(config),
            executor)
        RunStore(out).put_measurement(row)
        return row
    # every input checked before anything is written: a mistake leaves `out` as it was
    device = check_measurement(config, out=out, device=device, storage=storage)
    store = RunStore(out)
    storage = storage or str(Path(out).resolve() / "optuna-journal.log")
    open_storage(storage)
    runs = CellRuns(config, store, executor or LocalExecutor(), device, suite, on_event)
    tuner = Tuner(runs, storage)
    bounds = search_bounds(runs)
    baseline = measure_baseline(runs, tuner)
    threshold_score = config.threshold * baseline.mean
    runs.on_event(f"baseline {baseline.mean:.4f}, threshold {threshold_score:.4f}")
    rule = subspace_lr(runs, tuner, baseline, bounds)
    result = search_d(runs, rule, bounds, baseline, threshold_score)
    if tuner.unstable:  # a tuning found no finishing rate: a rate of the cell is not a tuned one
        result = replace(result, flags=(*result.flags, "untuned"))
    row = measurement_row(runs, bounds, baseline, rule, result, suite=suite,
                          suite_version=suite_version)
    store.put_measurement(row)
    return row


def in_store(config: MeasureConfig, stores: Sequence[Path]) -> MeasureConfig:
    """``config`` with a stored run's checkpoint theta0 that names no store found in the first of
    ``stores`` that holds it (:func:`idbench.theta0.located`)."""
    spec = located(config.theta0, stores)
    return config if spec is config.theta0 else config.model_copy(update={"theta0": spec})


def search_bounds(runs: CellRuns) -> Bounds:
    """Phase 1: D, the search range checked against it (d_max clamped, with a warning) and d_ref."""
    config = runs.config
    D = parameter_count(config, runs.data)
    grid = sorted(set(config.grid)) if config.grid else None
    d_max = grid[-1] if grid else config.d_max  # the largest d the search may probe
    # d counts directions per compartment with K equal ones: at most the smallest one's size
    k = config.compartments if isinstance(config.compartments, int) else 1
    limit, what = (D // k, f"the {D // k} parameters of each of {k} compartments: searching "
                   f"up to {D // k}") if k > 1 else (D, f"D = {D}: searching up to D")
    if d_max > limit:  # (d_min and the grid were checked against it: preflight.check_fits)
        warnings.warn(f"d_max = {d_max} exceeds {what} instead", stacklevel=3)
        d_max = limit
    d_ref = config.d_ref or (grid[len(grid) // 2] if grid else round(math.sqrt(config.d_min * d_max)))
    return Bounds(D=D, d_max=d_max, grid=grid, d_ref=min(d_ref, limit))


def measure_baseline(runs: CellRuns, tuner: Tuner) -> Baseline:
    """Phase 2: the global score, or the tuned full-space runs of every seed."""
    config = runs.config
    if config.global_baseline is not None:
        return Baseline(config.global_baseline, 0.0, math.nan)
    lr = tuner.tune("baseline", None, config.lr_range)
    runs.on_event(f"baseline: {config.seeds} seeds at lr={lr:.3g}")
    rows = runs.runs([runs.spec(config.seed(s), lr) for s in range(config.seeds)], "baseline")
    if all(r.diverged for r in rows):
        raise IdbenchError(
            f"every baseline run of {config.model} on {config.dataset} diverged at "
            f"lr={lr:.3g}: lower --lr or the tuning range"
        )
    scores = tuple(r.val_score for r in rows)
    std = float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0
    mean = float(np.mean(scores))
    # a regression onto exact targets has no chance level, but a score of 0 defines no threshold
    if mean <= 0 or runs.data.at_chance(mean, float(np.mean([r.val_loss for r in rows]))):
        raise IdbenchError(
            f"the baseline of {config.model} on {config.dataset} ends at chance (mean score "
            f"{mean:.4f}): {config.threshold:g} x chance defines no threshold; give it a budget "
            "or learning-rate range it can learn with, or a global:<score> baseline")
    return Baseline(mean, std, lr, scores)


def subspace_lr(runs: CellRuns, tuner: Tuner, baseline: Baseline, bounds: Bounds) -> SubspaceLr:
    """Phase 3: the strategy of the config's learning-rate protocol, with its tunings (each
    within :func:`~idbench.lr.carry.tuning_range`) and its rule for carrying a rate."""
    config = runs.config
    carry = Carry(config)
    moves = window_moves(config)

    def tune(d: int) -> float:
        return tuner.tune("subspace", d, tuning_range(config, baseline.lr, bounds.D, d), moves)

    return choose_subspace_lr(config, tune=tune, carry=carry, d_ref=bounds.d_ref,
                              window=window_label(baseline.lr, moves))


def search_d(runs: CellRuns, rule: SubspaceLr, bounds: Bounds, baseline: Baseline,
             threshold_score: float) -> SearchResult:
    """Phase 4: the d search; each probe trains every seed at the rule's lr."""
    config = runs.config

    def evaluate(d: int) -> list[float]:
        lr = rule.lr_at(d)
        runs.on_event(f"probe d={d}: {config.seeds} seeds at lr={lr:.3g}")
        rows = runs.runs([runs.spec(config.seed(s), lr, d) for s in range(config.seeds)],
                         "probe", origin=rule.origin(d))
        return [r.val_score for r in rows]

    def on_probe(probe: Probe) -> None:
        verdict = "pass" if probe.passed else "fail"
        runs.on_event(f"probe d={probe.d}: mean {probe.mean:.4f} ({verdict})")

    def search_from(start: int) -> SearchResult:
        return search(evaluate, threshold_score=threshold_score, d_min=start,
                      d_max=bounds.d_max, resolution=config.resolution, grid=bounds.grid,
                      on_probe=on_probe, baseline_scores=baseline.scores)

    return rule.search(search_from, config.d_min)


# MeasureConfig fields stored under another column name, and those recorded through another
# column (how the subspace lr was chosen is in tune_at / lr_subspace / lr_scaling)
RENAMED = {"steps": "steps_budget", "baseline": "baseline_kind"}
RECORDED_AS = {"tune_every_probe": "tune_at", "d_ref": "tune_at",
               "lr_retune_factor": "tune_at", "lr": "lr_baseline"}


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
        "metric": runs.data.metric, "theta0_sha256": recorded_digest(runs.config.theta0),
        "projection_options": _subspace_options(used, "projection_options"),
        "normalisation": "unit-column",
        "method_options": _subspace_options(used, "method_options"),
        "search": "grid" if bounds.grid else "bisect", "d_max": bounds.d_max,
        "grid": json.dumps(bounds.grid) if bounds.grid else None,
        "lr_baseline": baseline.lr, "baseline_mean": baseline.mean,
        "baseline_std": baseline.std, "threshold_score": runs.config.threshold * baseline.mean,
        "baseline_scores": json.dumps(baseline.scores) if baseline.scores else None,
        "d_int": result.d_int, "d_lo": result.d_lo, "d_hi": result.d_hi,
        "ci_low": result.ci_low, "ci_high": result.ci_high, "censored": result.censored,
        "ci_covers": covers(runs.config.seeds, tuned=runs.config.tune_trials > 0,
                            baseline=baseline.scores is not None),
        "flags": ",".join(result.flags),
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


__all__ = ["Baseline", "Bounds", "cell_key", "measure", "run_spec"]
