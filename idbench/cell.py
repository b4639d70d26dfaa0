"""The runs of one measurement while it is measured: :class:`CellRuns` trains or reuses them.

A measurement asks for runs by :class:`~idbench.train.RunSpec` and for tuned learning rates; this
module answers from the run store where a run is finished, trains the rest through the executor,
records every run it trains, and remembers every run the measurement used (its ``n_runs`` and wall
time count them whether trained now or found in the store).

Cells measured concurrently (distributed executors) can share runs and Optuna studies, e.g. the
baseline of one model under several projections: the locks of :func:`holding` let the first thread
train them while the others wait and then find them in the store.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import functools
import math
import threading
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import polars as pl

import idbench.data
import idbench.models
from idbench.config import MeasureConfig
from idbench.data import Dataset
from idbench.executors import Executor
from idbench.keys import stable_key
from idbench.options import TrainOptions
from idbench.schema import RunRow
from idbench.provenance import device_name
from idbench.registry import Spec
from idbench.rows import run_row
from idbench.store import RunStore
from idbench.train import MAX_RETRIES, EvalCallback, RunResult, RunSpec, StopRun, run
from idbench.workers import worker_device
from idbench.tuning import Pruned, tune_lr

TUNE_SEED = 10_000  # tuning trials use their own seed, apart from the measured seeds
SAME_RATE = 1e-9  # relative: two learning rates closer than this are one rate (stored_rate)
OnEvent = Callable[[str], None]


@functools.lru_cache(maxsize=2)
def load_data(dataset: str | Spec, device: str, val_fraction: float,
              split_seed: int = 0) -> Dataset:
    """Load a dataset once per process (suites measure many cells on the same data)."""
    return idbench.data.load(dataset, device=device, val_fraction=val_fraction,
                             split_seed=split_seed)


def execute(job: tuple[RunSpec, str], max_retries: int = MAX_RETRIES) -> tuple[RunResult, str]:
    """Train one run (``job`` = (spec, device)); returns (result, device name it trained on).

    A top-level function so executors can ship it. On a Dask worker the run trains on the
    worker's own device (:func:`idbench.workers.worker_device`), not the parent's.
    ``max_retries``: 0 for tuning runs, wherever they train (:func:`idbench.train.run`).
    """
    spec, device = job
    device = worker_device() or device
    data = load_data(spec.dataset, device, spec.val_fraction, spec.split_seed)
    return run(spec, data, max_retries=max_retries), device_name(device)


def parameter_count(config: MeasureConfig, data: Dataset) -> int:
    """D: the number of parameters of the cell's model on its data."""
    net = idbench.models.create(config.model, input_shape=data.input_shape,
                                num_classes=data.num_classes)
    return sum(p.numel() for p in net.parameters())


def run_spec(config: MeasureConfig, *, seed: int, lr: float, d: int | None = None,
             damping: float | None = None) -> RunSpec:
    """The RunSpec of a baseline run (``d`` None) or a subspace run of ``config``: the config's
    training options, the cell's model and data, and for subspace runs its projection and method;
    ``damping``: ngd's damping where it was tuned (None: the config's ``ngd_damping``)."""
    options = config.model_dump(include=set(TrainOptions.model_fields))
    if damping is not None:
        options["ngd_damping"] = damping
    subspace = {} if d is None else {"projection": config.projection, "d": d,
                                     "compartments": config.compartments,
                                     "method": config.method}
    return RunSpec(model=config.model, dataset=config.dataset, seed=seed, lr=lr, **subspace,
                   **options)


def study_name(config: MeasureConfig, role: str, d: int | None,
               lr_range: tuple[float, float]) -> str:
    """The Optuna study that tunes ``role``'s rate (``"baseline"``, ``d`` None, or
    ``"subspace"``) at ``d`` within ``lr_range``. It depends on what its runs depend on, so cells
    that share a baseline share its study, and on how it tunes (trials, seeds, its draw:
    :meth:`~idbench.config.MeasureConfig.draw_at`)."""
    probe = run_spec(config, seed=TUNE_SEED, lr=1.0, d=d).key_payload()
    payload = [probe, config.tune_trials, config.tune_seeds, lr_range]
    if config.damping_range is not None:  # (studies of the rate alone keep their names)
        payload.append(config.damping_range)
    if draw := config.draw_at(d):  # another draw: another study, its grid and TPE elsewhere
        payload.append({"tune_draw": draw, "grid": "offset"})
    return f"{role}-{stable_key(payload, 16)}"


def stored_rate(lr: float, rates: Sequence[float]) -> float:
    """The stored rate within :data:`SAME_RATE` of ``lr`` (``rates``: sorted), else ``lr``.

    A run's key holds its rate to the last bit, and a tuned rate is not reproducible to the last
    bit across machines: TPE's proposal is computed in floating point (NumPy's vectorised exp and
    log among it), and a carried rate inherits any difference. Without this, a measurement
    re-measured from its runs elsewhere (a published ``runs.parquet``, ``--reuse``) trained again,
    at a rate equal to the stored one to 16 digits, runs it already had (23 of the flagship's FC
    Fastfood cell, moving its d_int90 from 303 to 304).
    """
    i = bisect.bisect_left(rates, lr)
    near = [rate for rate in rates[max(i - 1, 0):i + 1]
            if math.isclose(rate, lr, rel_tol=SAME_RATE)]
    return min(near, key=lambda rate: abs(rate - lr), default=lr)


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def holding(names: list[str]) -> Iterator[None]:
    """Hold the locks of ``names`` (taken in sorted order, so threads cannot deadlock)."""
    with _LOCKS_GUARD:
        locks = [_LOCKS.setdefault(name, threading.Lock()) for name in sorted(set(names))]
    with contextlib.ExitStack() as stack:
        for lock in locks:
            stack.enter_context(lock)
        yield


class CellRuns:
    """The runs of one cell: stored, trained, tuned, and which of them the measurement used."""

    def __init__(self, config: MeasureConfig, store: RunStore, executor: Executor, device: str,
                 suite: str | None, storage: str, on_event: OnEvent | None) -> None:
        self.config, self.store, self.executor = config, store, executor
        self.device, self.suite, self.storage = device, suite, storage
        self.on_event = on_event or (lambda message: None)
        self.key = config.key()
        self.data = load_data(config.dataset, device, config.val_fraction, config.split_seed)
        self.used: dict[str, RunRow] = {}
        stored = store.table()
        self.rates = sorted(set(stored["lr"].drop_nulls().to_list()))  # (stored_rate)
        self.stored_trials = stored.filter(pl.col("role") == "tune", pl.col("seed") == TUNE_SEED)
        # ngd's damping chosen with the rate by the latest tuning of each phase (damping_range)
        self.damping: dict[str, float] = {}

    def spec(self, seed: int, lr: float, d: int | None = None) -> RunSpec:
        """The RunSpec of a baseline (``d`` None) or subspace run at ``lr``, at the damping tuned
        with the phase's rate where it was tuned (:func:`run_spec`)."""
        return self._spec(seed, lr, d, self.damping.get(_phase(d)))

    def _spec(self, seed: int, lr: float, d: int | None, damping: float | None) -> RunSpec:
        """:func:`run_spec` at ``lr`` where that run is stored, else at the stored rate that
        ``lr`` equals (:func:`stored_rate`), whether it was stored before this measurement began
        or by it: a rate re-tuned to within an ulp of the carried one reuses its runs, so an
        interrupted and resumed measurement matches an uninterrupted one."""
        spec = run_spec(self.config, seed=seed, lr=lr, d=d, damping=damping)
        rate = lr if self.store.has(spec.key()) else stored_rate(lr, self.rates)
        return spec if rate == lr else run_spec(self.config, seed=seed, lr=rate, d=d,
                                                damping=damping)

    def record(self, spec: RunSpec, result: RunResult, role: str,
               device: str | None = None, origin: dict[str, Any] | None = None) -> RunRow:
        """Store the run ``spec`` trained to ``result`` and count it as used; ``origin``: where its
        rate was tuned and how it was carried (RunRow's lr_tuned_at, lr_carried_by, curvature)."""
        row = run_row(spec, result, cell=self.key, suite=self.suite, role=role,
                      metric=self.data.metric, device=device or device_name(self.device))
        if origin:
            row = row.model_copy(update=origin)
        self.store.put(row)
        i = bisect.bisect_left(self.rates, row.lr)
        if i == len(self.rates) or self.rates[i] != row.lr:
            self.rates.insert(i, row.lr)
        self.used[row.run_key] = row
        return row

    def runs(self, specs: list[RunSpec], role: str,
             origin: dict[str, Any] | None = None) -> list[RunRow]:
        """Rows of ``specs``: from the store where finished, else trained through the executor
        (and recorded with ``origin``, see :meth:`record`). A stored run that ended at chance or
        diverged after fewer retries than :func:`idbench.train.run` now makes (stored before it
        retried such runs, or retried them fewer times) is trained again, so a result never
        depends on when its runs were stored."""
        with holding([self._lock_name(s.key()) for s in specs]):
            rows = {s.key(): self.store.get(s.key()) for s in specs}
            missing = [s for s in specs if rows[s.key()] is None or self._unretried(rows[s.key()])]
            if missing:
                results = self.executor.map(execute, [(s, self.device) for s in missing])
                for spec, (result, device) in zip(missing, results):
                    rows[spec.key()] = self.record(spec, result, role, device, origin)
        for row in rows.values():
            self.used[row.run_key] = row
        return [rows[s.key()] for s in specs]

    def _unretried(self, row: RunRow) -> bool:
        failed = row.diverged or self.data.at_chance(row.val_score, row.val_loss)
        return failed and row.retries < MAX_RETRIES

    def tune(self, role: str, d: int | None, lr_range: tuple[float, float]) -> float:
        """The tuned learning rate for baseline (``d`` None) or subspace runs at ``d``; with
        ``damping_range`` the damping tuned with it becomes the phase's (:meth:`spec`)."""
        config = self.config
        if config.tune_trials == 0:
            return config.lr if d is None else (config.lr_subspace or config.lr)
        draw = config.draw_at(d)
        study = study_name(config, role, d, lr_range)
        with holding([self._lock_name(f"study-{study}")]):
            best, tried = tune_lr(
                lambda lr, report, damping=None: self._trial(lr, d, role, report, damping),
                study_name=study, storage=self.storage, n_trials=config.tune_trials,
                lr_range=lr_range, damping_range=config.damping_range,
                replay=self._replay(d, lr_range, draw), draw=draw, pick=config.tune_pick)
        for params in tried:  # trials finished by an earlier, interrupted call count too
            for seed in self._tune_seeds():
                spec = self._spec(seed, params["lr"], d, params.get("damping"))
                row = self.store.get(spec.key())
                if row is not None:
                    self.used[row.run_key] = row
        if "damping" in best:
            self.damping[_phase(d)] = best["damping"]
        return best["lr"]

    def _replay(self, d: int | None, lr_range: tuple[float, float],
                draw: int) -> list[dict[str, float]]:
        """The trials of this study that stored runs record, in the order they were trained
        (:func:`~idbench.tuning.tune_lr`'s ``replay``): the study's runs at the first tuning seed
        and ``d``, within ``lr_range``; a pruned trial is stored as pruned and replayed as pruned
        (a store written before pruned trials were kept lacks them: its studies replay without
        them). Runs do not record the tuner's draw, so a study of another draw (``draw``, the
        config's ``tune_draw`` where it redraws this study) replays nothing: it keeps to its
        journal."""
        if draw:
            return []
        rows = self.stored_trials.filter(
            pl.col("d").is_null() if d is None else pl.col("d") == d,
            pl.col("lr") >= lr_range[0] * (1 - SAME_RATE),
            pl.col("lr") <= lr_range[1] * (1 + SAME_RATE),
        ).sort("timestamp")
        tuned = self.config.damping_range is not None
        trials = []
        for row in rows.iter_rows(named=True):
            params = {"lr": row["lr"], **({"damping": row["ngd_damping"]} if tuned else {})}
            spec = run_spec(self.config, seed=TUNE_SEED, lr=row["lr"], d=d,
                            damping=params.get("damping"))
            if spec.key() == row["run_key"] and params not in trials:
                trials.append(params)
        return trials[:self.config.tune_trials]

    def _tune_seeds(self) -> list[int]:
        return [TUNE_SEED + i for i in range(self.config.tune_seeds)]

    def _trial(self, lr: float, d: int | None, role: str, report: EvalCallback,
               damping: float | None) -> RunResult:
        """One tuning trial: every tuning seed at ``lr`` (and ``damping`` when tuned; the first
        seed reports to the pruner), so a rate at the edge of stability that works on one seed and
        kills another is not chosen."""
        results = [self._tuning_run(seed, lr, d, role, report if i == 0 else _ignore, damping)
                   for i, seed in enumerate(self._tune_seeds())]
        return dataclasses.replace(  # (a stored tuning run with retries, from a Dask worker of
            # an older idbench that retried them, diverged at this rate all the same)
            results[0], diverged=any(r.diverged or r.retries for r in results),
            val_loss=float(np.mean([r.val_loss for r in results])),
            val_score=float(np.mean([r.val_score for r in results])),
        )

    def _tuning_run(self, seed: int, lr: float, d: int | None, role: str,
                    report: EvalCallback, damping: float | None) -> RunResult:
        """One run of a trial, from the store, trained here (pruned live by Optuna) or on a
        worker (its evaluations then replayed to the pruner: a pruned trial ends as it would have
        here, only later). A pruned trial is stored as pruned (:meth:`RunResult.pruned_at`), so a
        study re-made from the runs alone prunes it again without training it."""
        spec = self._spec(seed, lr, d, damping)
        stored = self.store.get(spec.key())
        if stored is not None:
            self.used[stored.run_key] = stored
            if stored.pruned:
                raise Pruned()
            return _result_of(stored)
        self.on_event(f"tuning {role} lr={lr:.3g}" + (f" damping={damping:.3g}" if damping else "")
                      + (f" at d={d}" if d else ""))
        pruned: list[int] = []

        def watched(index: int, val_score: float, val_loss: float) -> None:
            try:
                report(index, val_score, val_loss)
            except Pruned:
                pruned.append(index)
                raise StopRun() from None

        if self.executor.in_process:
            result, device = run(spec, self.data, on_eval=watched, max_retries=0), None
        else:
            [(result, device)] = self.executor.map(functools.partial(execute, max_retries=0),
                                                   [(spec, self.device)])
            with contextlib.suppress(StopRun):
                for index, point in enumerate(result.history):
                    watched(index, point["val_score"], point["val_loss"])
        if pruned:
            result = result.pruned_at(pruned[0])
        self.record(spec, result, "tune", device)
        if pruned:
            raise Pruned()
        return result

    def _lock_name(self, key: str) -> str:
        return f"{self.store.out_dir.resolve()}/{key}"


def _phase(d: int | None) -> str:
    """The phase whose runs a run at ``d`` belongs to: baseline (``d`` None) or subspace."""
    return "baseline" if d is None else "subspace"


def _ignore(index: int, val_score: float, val_loss: float) -> None:
    """An evaluation callback that reports nowhere."""


def _result_of(row: RunRow) -> RunResult:
    """The result a stored run row records (what tuning needs of it)."""
    return RunResult(
        val_score=row.val_score, val_loss=row.val_loss, test_score=row.test_score,
        train_loss=row.train_loss, steps=row.steps, wall_s=row.wall_s, diverged=row.diverged,
        retries=row.retries, lr_final=row.lr_final, threads=row.threads,
        stopped_early=row.stopped_early, D=row.D, d_total=row.d_total,
    )
