"""The result schema: one typed, commented row per training run and one per measured cell.

These two models are the contract between the trainer, the run store, the search and the
leaderboard. Every choice that determines a number is a column, so any row can be reproduced from
the row alone. Bump ``SCHEMA_VERSION`` when a column changes meaning; readers refuse other versions.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = 1

Role = Literal["baseline", "probe", "tune", "pretrain"]  # pretrain: idbench.pretrain


class RunRow(BaseModel):
    """One training run (a row of the run store, ``runs.parquet``)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    schema_version: int = SCHEMA_VERSION
    # identifiers
    run_key: str  # RunSpec.key(): hash of everything that determines the run
    cell: str  # cell key of the measurement the run belongs to
    suite: str | None  # suite name, None for a standalone `idbench measure`
    role: Role  # baseline seed, probe seed at some d, or a learning-rate tuning trial
    # what was trained
    model: str  # model spec, e.g. "fc[depth=2,width=200]"
    dataset: str  # dataset spec
    D: int  # number of parameters
    metric: str  # what score means, e.g. "accuracy"
    # subspace (null for baseline runs)
    projection: str | None  # projection name
    projection_options: str  # JSON object of projection options ("{}" if none)
    normalisation: str | None  # basis normalisation convention, "unit-column"
    method: str  # "fpd", "rbd", "nes"
    method_options: str  # JSON object of method options (distribution, sigma...)
    compartments: str | None  # "1", "K", or "layer"
    n_compartments: int | None
    # the search axis: directions per compartment with one or K equal compartments, the total
    # with per-layer compartments (split across the layers: subspace.split_directions)
    d: int | None
    d_total: int | None  # total directions, the sum over compartments
    directions: str | None = None  # JSON list: directions of each compartment
    # training protocol
    seed: int
    lr: float
    optimizer: str
    momentum: float
    weight_decay: float
    batch_size: int
    epochs: float | None
    steps_budget: int | None  # RunSpec.steps (None: epochs decide)
    schedule: str
    warmup: float  # fraction of the budget with a linear learning-rate warm-up
    eval_every: int | None
    patience: int | None
    val_fraction: float
    split_seed: int
    # optimizer ngd's options and the path-metric window (null: stored before they were columns)
    ngd_samples: int | None = None
    ngd_damping: float | None = None
    ngd_refresh: int | None = None
    path_window: int | None = None
    # where the run started (idbench.theta0; null: stored before it was a column, i.e. init) and
    # SAID's per-layer scalars (null: off); a checkpoint's file digest and whether its head fit
    theta0: str | None = None
    said: bool | None = None
    theta0_sha256: str | None = None
    theta0_head: str | None = None  # "kept" or "reinitialised" (classes of another task)
    # outcome (of the final model, never the best epoch)
    val_score: float
    val_loss: float
    test_score: float
    train_loss: float
    diverged: bool  # diverged at every rate tried (lr, then halved up to 8 times): scores 0
    # attempts after the first, each at half the rate: the earlier ones diverged or ended at chance
    # (train.failed); when all failed, the recorded attempt is the first at chance (lr_final = lr)
    retries: int = 0
    lr_final: float | None = None  # peak rate of the recorded attempt (lr / 2**retries)
    # where a probe's rate was tuned (d) and the rule that carried it to this d (inverse-d,
    # inverse-sqrt-d, curvature, none: tuned here); null for baseline and tuning runs
    lr_tuned_at: int | None = None
    lr_carried_by: str | None = None
    # lambda_max(P^T H P) at theta0 under the former lr_scaling curvature (null since)
    curvature: float | None = None
    stopped_early: bool  # before its budget: patience ran out, or the optimiser converged (lbfgs)
    # a tuning trial the pruner stopped: its outcome is its last evaluation (history ends there),
    # test_score NaN; a study re-made from the runs replays it as pruned and never trains it again
    pruned: bool = False
    steps: int  # optimiser steps actually taken
    wall_s: float
    grad_cosine: float | None  # mean cosine of step and full gradient (rbd/nes diagnostic)
    # training-path metrics of the whole run (idbench.paths): displacement, path length, their
    # ratio psi (directedness) and psi of the last complete path_window steps; theta-space for
    # every run, z-space for subspace runs (null otherwise, and for rows stored before them)
    theta_displacement: float | None = None
    theta_path_length: float | None = None
    theta_psi: float | None = None
    theta_psi_window: float | None = None
    z_displacement: float | None = None
    z_path_length: float | None = None
    z_psi: float | None = None
    z_psi_window: float | None = None
    theta_psi_windows: str | None = None  # JSON list: psi of every completed path_window steps
    z_psi_windows: str | None = None
    history: str  # JSON list of {step, val_score, val_loss, train_loss, and the path metrics}
    # provenance
    device: str
    threads: int | None = None  # torch CPU threads the run trained with (None: not recorded)
    versions: str  # JSON object: idbench, torch, python...
    git_rev: str | None
    timestamp: str  # ISO 8601, UTC


class MeasurementRow(BaseModel):
    """One measured cell: the baseline, the threshold and the d_int search (``measurements.parquet``)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    schema_version: int = SCHEMA_VERSION
    cell: str  # hash of everything that determines the measurement
    suite: str | None
    suite_version: str | None
    # the cell
    model: str
    dataset: str
    D: int
    metric: str
    projection: str
    projection_options: str  # JSON object
    normalisation: str
    method: str
    method_options: str  # JSON object
    compartments: str  # "1", "K" or "layer"
    # protocol
    seeds: int  # seeds per baseline and per probe
    replicate: int = 0  # which independent re-measurement (0: the default seeds and tuner draw)
    draws: int = 1  # independent draws pooled into this row (idbench.draws; 1: one measurement)
    # JSON list: each draw's d_int (null where one draw): the pooled d_int is their geometric mean
    draw_d_ints: str | None = None
    epochs: float | None
    steps_budget: int | None
    batch_size: int
    optimizer: str
    schedule: str  # learning-rate schedule of every run: cosine (to zero) or constant
    warmup: float  # fraction of each run's budget with a linear warm-up
    momentum: float | None = None  # SGD momentum of every run (null: stored before it was a column)
    weight_decay: float | None = None
    eval_every: int | None = None  # steps between evaluations (null: once per epoch)
    patience: int | None = None  # early stop after this many evaluations without improvement
    val_fraction: float | None = None  # fraction of the training split held out for validation
    split_seed: int | None = None  # seed of the train/validation split
    ngd_samples: int | None = None  # optimizer ngd's options (null: stored before ngd)
    ngd_damping: float | None = None  # with damping_range: the one the probes' last tuning chose
    ngd_refresh: int | None = None
    path_window: int | None = None  # steps per window of the runs' windowed psi
    theta0: str | None = None  # where every run started (idbench.theta0; null: before it, init)
    said: bool | None = None  # SAID's per-layer scalars, counted in d (null: before it, off)
    theta0_sha256: str | None = None  # the checkpoint's file digest (theta0 checkpoint only)
    lr_range: str | None = None  # JSON [low, high]: tuning range of the baseline lr
    damping_range: str | None = None  # JSON [low, high]: ngd damping tuned with the lr; null: fixed
    baseline_kind: str  # "local" or "global:<score>"
    threshold: float  # fraction of the baseline to reach, e.g. 0.9
    search: str  # "bisect" or "grid"
    d_min: int
    d_max: int
    resolution: float  # relative resolution of the bisection
    grid: str | None  # JSON list of d for grid mode
    tune_trials: int
    tune_seeds: int  # seeds per tuning trial (objective: mean final validation loss)
    tune_draw: int = 0  # which draw of the tuner's grid and TPE (0: the default; rows before it: 0)
    tune_grid: str | None = None  # where trials lie: log (then TPE) or pow2 (null: before it, log)
    # former options, recorded by rows measured while they existed (later rows: all, best):
    tune_redraw: str = "all"  # which tunings that draw redraws: all, or subspace (baseline: draw 0's)
    tune_pick: str = "best"  # the tuned rate: the best trial, or a parabola's minimum (fit)
    # where the subspace lr was tuned: "ref:<d>", "every-probe" or "bracket:<d>,<d>... retune:x<f>"
    # (tuned at d_ref, re-tuned where the crossing lay > x<f> away) [+ " restart:lattice": searches
    # after a re-tuning restarted on d_min x 2^k; rows without it restarted at half the bracket]
    # [+ " window:<w>"]
    tune_at: str
    lr_baseline: float
    lr_subspace: float | None  # lr at d_ref; None when tuned at every probe
    lr_scaling: str  # how lr_subspace carries to other d: none | inverse-d | inverse-sqrt-d
    # results
    baseline_mean: float
    baseline_std: float
    threshold_score: float  # threshold * baseline
    baseline_scores: str | None = None  # JSON list: each seed's baseline score (null: global)
    # d_int: where a monotone fit of the probes' mean scores crosses threshold_score, in log d
    # (idbench.estimate); None if censored. Rows stored before it: the crossing of the probes
    # that bracket it, as recomputed from their probes (idbench.frames)
    d_int: float | None
    d_lo: int | None  # largest failing probe below d_hi (None: d_min passed)
    d_hi: int | None  # smallest passing probe with every larger probe passing
    # 95% interval of d_int over seeds (idbench.estimate.interval): a bootstrap of the seeds
    # (with their baseline runs), Student-t scaled;
    # None below 3 seeds or when censored; ci_high inf when some resamples never cross
    ci_low: float | None
    ci_high: float | None
    ci_covers: str | None = None  # the noise the interval covers, e.g. "seeds, baseline seeds"
    censored: bool  # the fitted curve never reaches the threshold up to d_max: "> d_max"
    # comma-separated flags of an ill-defined cell (idbench.estimate.flags): threshold-low,
    # falls, flat; and untuned (a tuning of the baseline's or the subspace rate diverged at every
    # rate it tried: idbench.lr.tuner.Tuner.unstable); empty: none
    flags: str | None = None
    probes: str  # JSON list of {d, mean, std, scores, passed}
    n_runs: int  # training runs this measurement used (baseline, probes, tuning)
    # JSON sorted list of those runs' keys (null: stored before it was a column); a run reused from
    # another cell (a shared baseline) is stored under the cell that trained it
    run_keys: str | None = None
    wall_s: float
    # provenance
    device: str
    versions: str
    git_rev: str | None
    timestamp: str
