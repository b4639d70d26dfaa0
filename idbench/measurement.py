"""Measure one cell: baseline, threshold, d search, every run stored.

:func:`measure` is the whole protocol of the design notes for one model x dataset x projection x
method:

1. tune the baseline learning rate (Optuna), train the full model with every seed, and set the
   threshold to ``threshold`` x the mean baseline score (or use a ``global:<score>`` baseline);
2. tune the subspace learning rate once at a reference d (or at every probe);
3. search d (:mod:`idbench.search`), each probe training every seed;
4. write one row per training run and one row for the cell into the run store.

Runs are keyed by everything that determines them, so a rerun reuses what is stored and an
interrupted measurement resumes where it stopped. The reported number of runs and wall time are
those of the runs the measurement used, whether trained now or found in the store.

Example::

    row = idbench.measure(MeasureConfig(model="fc[depth=1,width=64]", dataset="digits",
                                        projection="fastfood", seeds=2, epochs=10), out="out")
    row.d_int, row.d_lo, row.censored
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import math
import threading
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

import idbench.data
import idbench.models
from idbench.config import MeasureConfig
from idbench.data import Dataset
from idbench.errors import IdbenchError
from idbench.executors import Executor, LocalExecutor, worker_device
from idbench.schema import MeasurementRow, RunRow
from idbench.search import Probe, search
from idbench.store import RunStore, device_name, git_rev, now_iso, run_row, versions
from idbench.train import EvalCallback, RunResult, RunSpec, run
from idbench.tuning import open_storage, tune_lr

TUNE_SEED = 10_000  # tuning trials use their own seed, apart from the measured seeds
OnEvent = Callable[[str], None]


def cell_key(config: MeasureConfig) -> str:
    """A stable hash of the cell's full configuration."""
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@functools.lru_cache(maxsize=2)
def load_data(dataset: str, device: str, val_fraction: float, split_seed: int = 0) -> Dataset:
    """Load a dataset once per process (suites measure many cells on the same data)."""
    return idbench.data.load(dataset, device=device, val_fraction=val_fraction,
                             split_seed=split_seed)


def execute(job: tuple[RunSpec, str]) -> tuple[RunResult, str]:
    """Train one run (``job`` = (spec, device)); returns (result, device name it trained on).

    A top-level function so executors can ship it. On a Dask worker the run trains on the
    worker's own device (:func:`idbench.executors.worker_device`), not the parent's.
    """
    spec, device = job
    device = worker_device() or device
    data = load_data(spec.dataset, device, spec.val_fraction, spec.split_seed)
    return run(spec, data), device_name(device)


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def _holding(names: list[str]):
    """Hold the locks of ``names`` (taken in sorted order, so threads cannot deadlock).

    Cells measured concurrently (distributed executors) can share runs and studies, e.g. the
    baseline of one model under several projections: the first thread trains them, the others
    wait and then find them in the store.
    """
    with _LOCKS_GUARD:
        locks = [_LOCKS.setdefault(name, threading.Lock()) for name in sorted(set(names))]
    with contextlib.ExitStack() as stack:
        for lock in locks:
            stack.enter_context(lock)
        yield


def run_spec(config: MeasureConfig, *, seed: int, lr: float, d: int | None = None) -> RunSpec:
    """The RunSpec of a baseline run (``d`` None) or a subspace run of ``config``."""
    return RunSpec(
        model=config.model, dataset=config.dataset, seed=seed, lr=lr,
        projection=None if d is None else config.projection, d=d,
        compartments=None if d is None else config.compartments,
        method="fpd" if d is None else config.method,
        optimizer=config.optimizer, momentum=config.momentum, batch_size=config.batch_size,
        epochs=config.epochs, steps=config.steps, schedule=config.schedule, warmup=config.warmup,
        patience=config.patience, val_fraction=config.val_fraction,
    )


class _Cell:
    """The state of one measurement while it runs: where runs go and which runs it used."""

    def __init__(self, config, store, executor, device, suite, storage, on_event) -> None:
        self.config, self.store, self.executor = config, store, executor
        self.device, self.suite, self.storage = device, suite, storage
        self.on_event = on_event or (lambda message: None)
        self.key = cell_key(config)
        self.data = load_data(config.dataset, device, config.val_fraction)
        self.used: dict[str, RunRow] = {}

    def record(self, spec: RunSpec, result: RunResult, role: str,
               device: str | None = None) -> RunRow:
        row = run_row(spec, result, cell=self.key, suite=self.suite, role=role,
                      metric=self.data.metric, device=device or device_name(self.device))
        self.store.put(row)
        self.used[row.run_key] = row
        return row

    def runs(self, specs: list[RunSpec], role: str) -> list[RunRow]:
        """Rows of ``specs``: from the store where finished, else trained through the executor."""
        with _holding([self._lock_name(s.key()) for s in specs]):
            rows = {s.key(): self.store.get(s.key()) for s in specs}
            missing = [s for s in specs if rows[s.key()] is None]
            if missing:
                results = self.executor.map(execute, [(s, self.device) for s in missing])
                for spec, (result, device) in zip(missing, results):
                    rows[spec.key()] = self.record(spec, result, role, device)
        for row in rows.values():
            self.used[row.run_key] = row
        return [rows[s.key()] for s in specs]

    def tune(self, role: str, d: int | None, lr_range: tuple[float, float]) -> float:
        """The tuned learning rate for baseline (``d`` None) or subspace runs at ``d``."""
        config = self.config
        if config.tune_trials == 0:
            return config.lr if d is None else (config.lr_subspace or config.lr)

        tune_seeds = [TUNE_SEED + i for i in range(config.tune_seeds)]

        def train_at(lr: float, report: EvalCallback) -> RunResult:
            """Every tuning seed at ``lr`` (the first reports to the pruner): a rate at the edge of
            stability that works on one seed and kills another is not chosen."""
            results = [one(seed, lr, report if i == 0 else _ignore) for i, seed in enumerate(tune_seeds)]
            losses = [r.val_loss for r in results]
            return dataclasses.replace(  # a run retried (on a worker) diverged at this rate
                results[0], diverged=any(r.diverged or r.retries for r in results),
                val_loss=float(np.mean(losses)), val_score=float(np.mean([r.val_score for r in results])),
            )

        def one(seed: int, lr: float, report: EvalCallback) -> RunResult:
            spec = run_spec(config, seed=seed, lr=lr, d=d)
            stored = self.store.get(spec.key())
            if stored is not None:
                self.used[stored.run_key] = stored
                return _result_of(stored)
            self.on_event(f"tuning {role} lr={lr:.3g}" + (f" at d={d}" if d else ""))
            if not getattr(self.executor, "distributed", False):  # here, pruned live by Optuna
                result, device = run(spec, self.data, on_eval=report, max_retries=0), None
            else:  # train on a worker, then replay its evaluations to the pruner: a pruned
                # trial ends exactly as it would have here (not stored), only later
                [(result, device)] = self.executor.map(execute, [(spec, self.device)])
                for index, point in enumerate(result.history):
                    report(index, point["val_score"], point["val_loss"])
            self.record(spec, result, "tune", device)
            return result

        # the study depends on what the runs depend on, so cells that share a baseline share it
        probe = run_spec(config, seed=TUNE_SEED, lr=1.0, d=d).to_dict()
        study = hashlib.sha256(
            json.dumps([probe, config.tune_trials, config.tune_seeds, lr_range], sort_keys=True,
                       default=str)
            .encode()
        ).hexdigest()[:16]
        with _holding([self._lock_name(f"study-{role}-{study}")]):
            lr, tried = tune_lr(train_at, study_name=f"{role}-{study}", storage=self.storage,
                                n_trials=config.tune_trials, lr_range=lr_range)
        for trial_lr in tried:  # trials finished by an earlier, interrupted call count too
            for seed in tune_seeds:
                row = self.store.get(run_spec(config, seed=seed, lr=trial_lr, d=d).key())
                if row is not None:
                    self.used[row.run_key] = row
        return lr

    def _lock_name(self, key: str) -> str:
        return f"{self.store.out_dir.resolve()}/{key}"


def _ignore(index: int, val_score: float, val_loss: float) -> None:
    """An evaluation callback that reports nowhere."""


def _result_of(row: RunRow) -> RunResult:
    return RunResult(
        val_score=row.val_score, val_loss=row.val_loss, test_score=row.test_score,
        train_loss=row.train_loss, steps=row.steps, wall_s=row.wall_s, diverged=row.diverged,
        retries=row.retries, lr_final=row.lr_final,
        stopped_early=row.stopped_early, D=row.D, d_total=row.d_total,
    )


def parameter_count(config: MeasureConfig, data: Dataset) -> int:
    net = idbench.models.create(config.model, input_shape=data.input_shape,
                                num_classes=data.num_classes)
    return sum(p.numel() for p in net.parameters())


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
    store = RunStore(out)
    storage = storage or str(Path(out).resolve() / "optuna-journal.log")
    open_storage(storage)  # fail before any training when the storage cannot be opened
    device = device or default_device()
    cell = _Cell(config, store, executor or LocalExecutor(), device, suite, storage, on_event)
    D = parameter_count(config, cell.data)
    d_max = config.d_max
    if config.d_min > D:
        raise IdbenchError(f"d_min = {config.d_min} exceeds the model's D = {D} parameters")
    if d_max > D:
        warnings.warn(f"d_max = {d_max} exceeds D = {D}: searching up to D instead", stacklevel=2)
        cell.on_event(f"d_max clamped to D = {D}")
        d_max = D
    grid = sorted(set(config.grid)) if config.grid else None
    if grid and grid[-1] > D:
        raise IdbenchError(f"grid value {grid[-1]} exceeds the model's D = {D} parameters")
    seeds = range(config.seeds)

    if config.global_baseline is not None:
        baseline_mean, baseline_std, lr_baseline = config.global_baseline, 0.0, math.nan
    else:
        lr_baseline = cell.tune("baseline", None, config.lr_range)
        cell.on_event(f"baseline: {config.seeds} seeds at lr={lr_baseline:.3g}")
        rows = cell.runs([run_spec(config, seed=s, lr=lr_baseline) for s in seeds], "baseline")
        if all(r.diverged for r in rows):
            raise IdbenchError(
                f"every baseline run of {config.model} on {config.dataset} diverged at "
                f"lr={lr_baseline:.3g}: lower --lr or the tuning range"
            )
        scores = [r.val_score for r in rows]
        baseline_mean = float(np.mean(scores))
        baseline_std = float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0
    threshold_score = config.threshold * baseline_mean
    cell.on_event(f"baseline {baseline_mean:.4f}, threshold {threshold_score:.4f}")

    d_ref = config.d_ref or (grid[len(grid) // 2] if grid else round(math.sqrt(config.d_min * d_max)))
    d_ref = min(d_ref, D)

    def sub_range(d: int) -> tuple[float, float]:
        """Where to tune the subspace lr at d: around the baseline's lr carried from d = D to d by
        the lr scaling rule (within a factor lr_window), else the whole lr_range."""
        if math.isnan(lr_baseline) or config.lr_window is None:
            return config.lr_range
        prior = config.subspace_lr(lr_baseline, D, d)
        return prior / config.lr_window, prior * config.lr_window

    lr_sub = None if config.tune_every_probe else cell.tune("subspace", d_ref, sub_range(d_ref))

    def evaluate(d: int) -> list[float]:
        if lr_sub is None:
            lr = cell.tune("subspace", d, sub_range(d))
        else:
            lr = config.subspace_lr(lr_sub, d_ref, d)
        cell.on_event(f"probe d={d}: {config.seeds} seeds at lr={lr:.3g}")
        rows = cell.runs([run_spec(config, seed=s, lr=lr, d=d) for s in seeds], "probe")
        return [r.val_score for r in rows]

    def on_probe(probe: Probe) -> None:
        verdict = "pass" if probe.passed else "fail"
        cell.on_event(f"probe d={probe.d}: mean {probe.mean:.4f} ({verdict})")

    result = search(evaluate, threshold_score=threshold_score, d_min=config.d_min, d_max=d_max,
                    resolution=config.resolution, grid=grid, on_probe=on_probe)
    row = MeasurementRow(
        cell=cell.key, suite=suite, suite_version=suite_version,
        model=config.model, dataset=config.dataset, D=D, metric=cell.data.metric,
        projection=config.projection.split("[")[0],
        projection_options=_subspace_options(cell.used.values(), "projection_options"),
        normalisation="unit-column", method=config.method.split("[")[0],
        method_options=_subspace_options(cell.used.values(), "method_options"),
        compartments=str(config.compartments or 1),
        seeds=config.seeds, epochs=config.epochs, steps_budget=config.steps,
        batch_size=config.batch_size, optimizer=config.optimizer, schedule=config.schedule,
        warmup=config.warmup, baseline_kind=config.baseline,
        threshold=config.threshold, search="grid" if grid else "bisect", d_min=config.d_min,
        d_max=d_max, resolution=config.resolution, grid=json.dumps(grid) if grid else None,
        tune_trials=config.tune_trials, tune_seeds=config.tune_seeds,
        tune_at=("every-probe" if config.tune_every_probe else f"ref:{d_ref}")
        + ("" if math.isnan(lr_baseline) or config.lr_window is None
           else f" window:{config.lr_window:g}"),
        lr_baseline=lr_baseline, lr_subspace=lr_sub,
        lr_scaling="none" if lr_sub is None else config.resolved_lr_scaling,
        baseline_mean=baseline_mean, baseline_std=baseline_std, threshold_score=threshold_score,
        d_int=result.d_int, d_lo=result.d_lo, d_hi=result.d_hi,
        ci_low=result.ci_low, ci_high=result.ci_high, censored=result.censored,
        probes=json.dumps([p.to_dict() for p in sorted(result.probes, key=lambda p: p.d)]),
        n_runs=len(cell.used), wall_s=sum(r.wall_s for r in cell.used.values()),
        device=device_name(device), versions=json.dumps(versions(), sort_keys=True),
        git_rev=git_rev(),
        timestamp=max((r.timestamp for r in cell.used.values()), default=None) or now_iso(),
    )
    store.put_measurement(row)
    return row


def _subspace_options(rows, column: str) -> str:
    """The options of the subspace runs (all probes share them), as stored JSON."""
    for row in rows:
        if row.role != "baseline" and row.projection is not None:
            return getattr(row, column)
    return "{}"
