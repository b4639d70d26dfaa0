"""The learning rates a cell tunes: one Optuna study per tuning, re-made from stored runs.

:class:`Tuner` runs a study (:func:`~idbench.tuning.tune_lr`) for the baseline's rate and for the
subspace rate at each d where the protocol tunes (:mod:`idbench.lr.protocols`). Its trials are
runs like any other: trained and stored through the cell's :class:`~idbench.cell.CellRuns`, at
tuning seeds apart from the measured ones. A study is named by what its runs depend on and how it
tunes (:func:`study_name`), so cells that share a baseline share its study; when its journal is
gone (a published ``runs.parquet``), its stored trials are replayed first, in their order, pruned
ones as pruned, so it proposes after them what the original proposed.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import polars as pl

from idbench.cell import SAME_RATE, CellRuns, holding, phase, run_spec
from idbench.config import MeasureConfig
from idbench.keys import stable_key
from idbench.schema import RunRow
from idbench.train import EvalCallback, RunResult, StopRun
from idbench.tuning import Pruned, tried_rates, tune_lr

TUNE_SEED = 10_000  # tuning trials use their own seed, apart from the measured seeds


def tuning_seeds(config: MeasureConfig) -> list[int]:
    """The seeds of every tuning trial's runs, apart from the measured seeds and from other
    replicates'."""
    first = TUNE_SEED + config.seed(0)
    return [first + i for i in range(config.tune_seeds)]


def study_name(config: MeasureConfig, role: str, d: int | None,
               lr_range: tuple[float, float]) -> str:
    """The Optuna study that tunes ``role``'s rate (``"baseline"``, ``d`` None, or
    ``"subspace"``) at ``d`` within ``lr_range``. It depends on what its runs depend on, so cells
    that share a baseline share its study, and on how it tunes (trials, seeds, its grid, its
    draw: :attr:`~idbench.config.MeasureConfig.draw`)."""
    probe = run_spec(config, seed=TUNE_SEED, lr=1.0, d=d).key_payload()
    payload = [probe, config.tune_trials, config.tune_seeds, lr_range]
    if config.damping_range is not None:  # (studies of the rate alone keep their names)
        payload.append(config.damping_range)
    if config.tune_grid != "log":  # (studies on the log grid keep their names)
        payload.append({"tune_grid": config.tune_grid})
    if draw := config.draw:  # another draw: another study, its grid and TPE elsewhere
        payload.append({"tune_draw": draw, "grid": "offset"})
    if (first := tuning_seeds(config)[0]) != TUNE_SEED:
        payload.append({"tuning_seed": first})
    return f"{role}-{stable_key(payload, 16)}"


class Tuner:
    """The tuned rates of one cell (:meth:`tune`), its trials trained through ``runs``; studies
    live in the Optuna ``storage``."""

    def __init__(self, runs: CellRuns, storage: str) -> None:
        self.runs, self.storage = runs, storage
        self.stored_trials = runs.stored.filter(pl.col("role") == "tune")
        # every tuning whose trials all diverged, as (role, d): its rate is the smallest it tried
        # (which diverged too), so the runs at that rate train at the rate their retries find
        self.unstable: list[tuple[str, int | None]] = []

    def tune(self, role: str, d: int | None, lr_range: tuple[float, float],
             moves: int = 0) -> float:
        """The tuned learning rate for baseline (``d`` None) or subspace runs at ``d``; with
        ``damping_range`` the damping tuned with it becomes the phase's
        (:meth:`~idbench.cell.CellRuns.spec`).

        ``moves``: a window is a guess at where the best rate lies. While the best trial so far is
        the lowest rate tried (pruned trials count as tried: the study judged them worse; every
        trial diverged included), the study is repeated in the window one width below the lowest
        window (while it is the highest rate tried, above the highest), at most ``moves`` times;
        the rate is the trial of lowest loss over all those studies (when every trial diverged,
        the smallest rate tried). A moved window ends where the last began, so each study replays
        only its own trials."""
        config = self.runs.config
        if config.tune_trials == 0:
            return config.lr if d is None else (config.lr_subspace or config.lr)
        best, study = self._study(role, d, lr_range)
        rates = tried_rates(study, self.storage) if moves else []
        width = lr_range[1] / lr_range[0]
        low, high = lr_range
        for _ in range(moves):
            if best["lr"] <= min(rates):
                window, low = (low / width, low), low / width
            elif best["lr"] >= max(rates) and math.isfinite(self._loss(best, d)):
                window, high = (high, high * width), high * width
            else:
                break
            moved, study = self._study(role, d, window)
            rates += tried_rates(study, self.storage)
            # (the lower rate on a tie: every trial diverged keeps the smallest rate tried)
            if (self._loss(moved, d), moved["lr"]) < (self._loss(best, d), best["lr"]):
                best = moved
        if "damping" in best:
            self.runs.damping[phase(d)] = best["damping"]
        if not math.isfinite(self._loss(best, d)):
            self.unstable.append((role, d))
            where = "" if d is None else f" at d={d}"
            self.runs.on_event(f"{role} tuning{where}: every trial diverged, so its runs train at "
                               f"the rate their retries find (flagged untuned)")
        return best["lr"]

    def _study(self, role: str, d: int | None,
               lr_range: tuple[float, float]) -> tuple[dict[str, float], str]:
        """One study within ``lr_range``: (best parameters, the study's name), its runs marked
        used."""
        config = self.runs.config
        study = study_name(config, role, d, lr_range)
        seeds = tuning_seeds(config)
        with holding([self.runs.lock_name(f"study-{study}")]):
            best, tried = tune_lr(
                lambda lr, report, damping=None: self._trial(lr, d, role, report, damping, seeds),
                study_name=study, storage=self.storage, n_trials=config.tune_trials,
                lr_range=lr_range, damping_range=config.damping_range,
                replay=self._replay(d, lr_range, seeds[0]), draw=config.draw,
                powers=config.tune_grid == "pow2")
        for params in tried:  # trials finished by an earlier, interrupted call count too
            for seed in seeds:
                spec = self.runs.spec(seed, params["lr"], d, params.get("damping"))
                row = self.runs.store.get(spec.key())
                if row is not None:
                    self.runs.used[row.run_key] = row
        return best, study

    def _loss(self, params: dict[str, float], d: int | None) -> float:
        """A finished trial's loss as its study saw it: the mean final validation loss of its
        runs, +inf where one diverged (:meth:`_trial`)."""
        rows = [self.runs.store.get(self.runs.spec(seed, params["lr"], d,
                                                   params.get("damping")).key())
                for seed in tuning_seeds(self.runs.config)]
        if any(row is None or row.diverged or row.retries for row in rows):
            return math.inf
        return float(np.mean([row.val_loss for row in rows]))

    def _replay(self, d: int | None, lr_range: tuple[float, float],
                first_seed: int) -> list[dict[str, float]]:
        """The trials of this study that stored runs record, in the order they were trained
        (:func:`~idbench.tuning.tune_lr`'s ``replay``): the study's runs at its first tuning seed
        and ``d``, within ``lr_range``; a pruned trial is stored as pruned and replayed as pruned
        (a store written before pruned trials were kept lacks them: its studies replay without
        them). Runs do not record ``tune_draw``, which redraws a study at the same tuning seeds,
        so a study under another ``tune_draw`` replays nothing: it keeps to its journal (a
        replicate tunes at seeds of its own, which tell its runs apart)."""
        if self.runs.config.tune_draw:
            return []
        rows = self.stored_trials.filter(
            pl.col("seed") == first_seed,
            pl.col("d").is_null() if d is None else pl.col("d") == d,
            pl.col("lr") >= lr_range[0] * (1 - SAME_RATE),
            pl.col("lr") <= lr_range[1] * (1 + SAME_RATE),
        ).sort("timestamp")
        tuned = self.runs.config.damping_range is not None
        trials = []
        for row in rows.iter_rows(named=True):
            params = {"lr": row["lr"], **({"damping": row["ngd_damping"]} if tuned else {})}
            spec = run_spec(self.runs.config, seed=first_seed, lr=row["lr"], d=d,
                            damping=params.get("damping"))
            if spec.key() == row["run_key"] and params not in trials:
                trials.append(params)
        return trials[:self.runs.config.tune_trials]

    def _trial(self, lr: float, d: int | None, role: str, report: EvalCallback,
               damping: float | None, seeds: list[int]) -> RunResult:
        """One tuning trial: every tuning seed at ``lr`` (and ``damping`` when tuned; the first
        seed reports to the pruner), so a rate at the edge of stability that works on one seed and
        kills another is not chosen."""
        results = [self._tuning_run(seed, lr, d, role, report if i == 0 else _ignore, damping)
                   for i, seed in enumerate(seeds)]
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
        spec = self.runs.spec(seed, lr, d, damping)
        stored = self.runs.store.get(spec.key())
        if stored is not None:
            self.runs.used[stored.run_key] = stored
            if stored.pruned:
                raise Pruned()
            return _result_of(stored)
        self.runs.on_event(f"tuning {role} lr={lr:.3g}"
                           + (f" damping={damping:.3g}" if damping else "")
                           + (f" at d={d}" if d else ""))
        pruned: list[int] = []

        def watched(index: int, val_score: float, val_loss: float) -> None:
            try:
                report(index, val_score, val_loss)
            except Pruned:
                pruned.append(index)
                raise StopRun() from None

        result, device = self.runs.train(spec, watched)
        if pruned:
            result = result.pruned_at(pruned[0])
        self.runs.record(spec, result, "tune", device)
        if pruned:
            raise Pruned()
        return result


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
