"""One measurement from R independent draws of the whole measurement (``draws=R``).

An interval over the seeds of one measurement cannot show what a re-measurement would see: every
seed shares the cell's one tuning, and another draw of the tuner moves d_int by more than the seeds
do. Drawing everything again is what covers it. Draw i of replicate r is the measurement of the
same cell with ``replicate = r * R + i`` and ``draws = 1``: its own training and baseline seeds, its
own tunings and tuner draw, its own search. It is stored as an ordinary measurement row under its
own key. The pooled row reports the geometric mean of the draws' d_int with a Student-t interval
over them (:func:`idbench.estimate.pooled`). It lists every draw's runs, so a board publishes them,
while the draws' own rows stay off the board (their keys are not the suite's cells).

A draw that never reaches the threshold (censored) makes the pooled row censored too. A log mean
cannot include "more than d_max", and dropping the draw would bias the estimate down.

Example::

    config = MeasureConfig(model="fc[depth=1,width=64]", dataset="digits", projection="fastfood",
                           draws=4, seeds=1, tune_seeds=1, epochs=10)
    row = idbench.measure(config, out="out")   # 4 draws, then the pooled row
    json.loads(row.draw_d_ints)                # each draw's d_int
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable

import numpy as np

from idbench.config import MeasureConfig
from idbench.estimate import Curve, flags, pooled
from idbench.executors import Executor, concurrently
from idbench.provenance import now_iso
from idbench.schema import MeasurementRow


def draw_config(config: MeasureConfig, i: int) -> MeasureConfig:
    """Draw ``i`` of ``config``: one measurement, replicate ``config.replicate * draws + i``."""
    return config.model_copy(update={"draws": 1,
                                     "replicate": config.replicate * config.draws + i})


def measure_draws(config: MeasureConfig, measure_one: Callable[[MeasureConfig], MeasurementRow],
                  key: str, executor: Executor | None = None) -> MeasurementRow:
    """Measure ``config``'s draws with ``measure_one`` and pool them into the row of cell ``key``.

    Each draw is stored as it finishes, so an interrupted measurement resumes at the draws left.
    Where runs train in this process (no ``executor``, or one that is ``in_process``) the draws
    run one after the other. With a distributed executor they run at once, a thread each: a draw
    is a sequence of runs (tuning trials, then probes), so with one seed per draw a cell measured
    draw after draw would keep a single worker busy. The first draw to fail cancels the
    executor's outstanding runs, so the others end promptly, and its error is raised.
    """
    configs = [draw_config(config, i) for i in range(config.draws)]
    if executor is None or executor.in_process:
        return pool(config, [measure_one(c) for c in configs], key)
    rows = concurrently([functools.partial(measure_one, c) for c in configs], executor,
                        threads=len(configs), name="idbench-draw")
    return pool(config, rows, key)


def pool(config: MeasureConfig, rows: list[MeasurementRow], key: str) -> MeasurementRow:
    """The row of ``config`` (cell ``key``) from its draws' ``rows``: the module docstring."""
    censored = any(r.censored or r.d_int is None for r in rows)
    estimates = [r.d_int for r in rows if r.d_int is not None]
    d_int, low, high = (None, None, None) if censored else pooled(estimates)
    scores = [s for r in rows for s in json.loads(r.baseline_scores or "[]")]
    means = [r.baseline_mean for r in rows]
    subspace = [r.lr_subspace for r in rows if r.lr_subspace is not None]
    return rows[0].model_copy(update={
        "cell": key, "replicate": config.replicate, "draws": config.draws,
        "d_int": d_int, "ci_low": low, "ci_high": high, "censored": censored,
        "ci_covers": _covers(config),
        "draw_d_ints": json.dumps([r.d_int for r in rows]),
        "d_lo": _lowest([r.d_lo for r in rows if r.d_hi is not None]),  # draws with a bracket
        "d_hi": None if censored else _highest([r.d_hi for r in rows]),
        "flags": ",".join(_flags(config, rows)),
        "probes": json.dumps([{**p, "draw": i} for i, r in enumerate(rows)
                              for p in json.loads(r.probes)]),
        "baseline_mean": float(np.mean(means)),
        "baseline_std": float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0,
        "baseline_scores": json.dumps(scores) if scores else None,
        "threshold_score": config.threshold * float(np.mean(means)),
        "lr_baseline": _geometric([r.lr_baseline for r in rows]),
        "lr_subspace": _geometric(subspace) if len(subspace) == len(rows) else None,
        "n_runs": sum(r.n_runs for r in rows),
        "run_keys": json.dumps(sorted({k for r in rows for k in json.loads(r.run_keys or "[]")})),
        "wall_s": sum(r.wall_s for r in rows), "timestamp": now_iso()})


def _flags(config: MeasureConfig, rows: list[MeasurementRow]) -> list[str]:
    """Every flag some draw raised, and those of the curve the draws share: at each d every draw
    probed, a unit per draw (its mean score, its baseline mean), so that a curve that falls or is
    flat against the noise between draws is flagged even with one seed per draw."""
    raised = [f for r in rows for f in (r.flags or "").split(",") if f]
    by_draw = [{p["d"]: float(np.mean(p["scores"])) for p in json.loads(r.probes)} for r in rows]
    shared = sorted(set.intersection(*(set(d) for d in by_draw)))
    if len(rows) > 1 and len(shared) >= 2:
        fixed = config.global_baseline  # a global baseline: a fixed threshold score
        curve = Curve.of([(d, [draw[d] for draw in by_draw]) for d in shared],
                         None if fixed else [r.baseline_mean for r in rows],
                         config.threshold * fixed if fixed else config.threshold)
        raised += [f for f in flags(curve) if f != "threshold-low"]  # (the draws say that)
    order = ["threshold-low", "falls", "flat", "untuned"]
    return sorted(dict.fromkeys(raised), key=lambda f: order.index(f) if f in order else 99)


def _covers(config: MeasureConfig) -> str:
    """What the interval over draws covers: everything a draw redraws."""
    sources = ["seeds"] + (["baseline seeds"] if config.global_baseline is None else []) + (
        ["the tuner's draw"] if config.tune_trials > 0 else [])
    return f"{', '.join(sources)} ({config.draws} draws)"


def _geometric(values: list[float]) -> float:
    return math.exp(float(np.mean(np.log(values))))


def _lowest(values: list[int | None]) -> int | None:
    """The lowest failing probe below any draw's bracket (None where a draw passed at d_min, or
    where no draw has a bracket)."""
    return None if not values or None in values else min(values)  # type: ignore[type-var]


def _highest(values: list[int | None]) -> int | None:
    return max((v for v in values if v is not None), default=None)


__all__ = ["draw_config", "measure_draws", "pool"]
