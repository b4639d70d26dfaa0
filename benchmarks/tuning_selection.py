"""How far the tuned rate at one d moves between two draws of the tuner, by how the rate is picked.

The tuner picks the trial with the lowest validation loss among a few (a log grid, then TPE).
With 8 trials over two decades the grid points lie x3 apart, and the best trial's rate is quantised
by where the trials happened to fall: another draw of the tuner (``tune_draw``: the grid moved
within its bins, other TPE proposals) picks another rate at the same d, and d_int moves with it
(tuning_noise.py; protocol_check's every-probe against its own other draw). A rate read off a
smooth fit of the trials, here the vertex of the parabola in log lr through the best trial and its
two neighbours (the best trial where it is the smallest or largest rate tried, or the parabola
opens downward), does not depend on where the grid fell, only on the loss curve and its noise.
"fit" is the rule of the former ``tune_pick: fit`` (:func:`fitted_rate`): the minimum of a
least-squares parabola through every finite trial within a decade of the best, below divergence.
It did not make d_int agree better between protocols (``protocol_check.md``), and was removed from
idbench; the rule lives on here, with the comparison that measured it.

This reads protocol_check's stores (``--out``: the folder its run wrote; nothing is trained): for
each cell measured by ``every-probe`` and ``every-probe-redraw`` (``--draws``: another pair, such as
the 4-seed ``every-probe-4`` and its redraw), at each d both draws tuned, it
loads the two Optuna studies and compares the rates the two draws pick, best trial against
parabola and fit. One JSON line per cell ({"cell", "pairs", "best_ratio", "parabola_ratio",
"fit_ratio"}: per d, the larger rate over the smaller), then a summary line: the median ratio and
how many pairs lie within x1.25, for each rule.

    python benchmarks/tuning_selection.py --out OUT --only known --steps 300
    python benchmarks/tuning_selection.py --out OUT --only fashion --models lenet --epochs 0.25
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import optuna

from idbench.lr.tuner import study_name
from idbench.config import MeasureConfig
from idbench.lr.carry import tuning_range
from idbench.store import RunStore
from idbench.tuning import open_storage

from protocol_check import (MODELS, PROJECTIONS, PROTOCOLS, cell_folder,  # (benchmarks/)
                            fashion_cells, known_cells)

DRAWS = ("every-probe", "every-probe-redraw")  # the two draws compared (--draws)
RULES = ("best", "parabola", "fit")  # how a study's rate is read off its trials (picks)


FIT_WINDOW = 1.0  # decades either side of the best trial that the parabola of fitted_rate sees
# (inclusive: grid trials lie whole fractions of a decade apart, and log10 of their ratio lands a
# few ulps either side of the boundary, which would keep one side's neighbour and drop the other's)
WINDOW_SLACK = 1e-9


def fitted_rate(trials: Sequence[tuple[float, float]]) -> float:
    """The rate at the minimum of a least-squares parabola of loss against log10 lr (the rule
    of the former ``tune_pick: fit``, kept here with the evidence that rejected it).

    ``trials``: (lr, final validation loss; inf where it diverged). The parabola is fitted to
    the finite trials within :data:`FIT_WINDOW` decades of the best one and below the smallest
    diverged rate above it; its minimum is kept within the fitted rates. Fewer than three
    distinct rates there, or a parabola that does not open upwards: the best trial's rate.

    >>> round(fitted_rate([(0.03, 1.6), (0.1, 1.2), (0.3, 1.0), (1.0, 1.1), (10.0, math.inf)]), 3)
    0.389
    """
    best = min((loss, lr) for lr, loss in trials if math.isfinite(loss))[1]
    ceiling = min((lr for lr, loss in trials if not math.isfinite(loss) and lr > best),
                  default=math.inf)
    near = [(math.log10(lr), loss) for lr, loss in trials if math.isfinite(loss) and lr < ceiling
            and abs(math.log10(lr / best)) <= FIT_WINDOW + WINDOW_SLACK]
    xs = [x for x, _ in near]
    if len(set(xs)) < 3:
        return best
    a, b, _ = np.polyfit(xs, [loss for _, loss in near], 2)
    if a <= 0:
        return best
    return 10 ** min(max(-b / (2 * a), min(xs)), max(xs))


def parabola_vertex(points: list[tuple[float, float]]) -> float:
    """The x of the vertex of the parabola through the lowest of ``points`` (x, y) and its two
    neighbours in x, kept between them; the lowest point's x where it has no neighbour on one side
    or the parabola opens downward."""
    ordered = sorted(points)
    i = min(range(len(ordered)), key=lambda k: ordered[k][1])
    if i in (0, len(ordered) - 1):
        return ordered[i][0]
    (x0, y0), (x1, y1), (x2, y2) = ordered[i - 1:i + 2]
    # divided differences: y = y1 + s (x - x1) + a (x - x1)^2 ... through the three points
    a = ((y2 - y1) / (x2 - x1) - (y1 - y0) / (x1 - x0)) / (x2 - x0)
    if a <= 0:
        return x1
    slope = (y1 - y0) / (x1 - x0) + a * (x1 - x0)  # the derivative at x1
    return min(max(x1 - slope / (2 * a), x0), x2)


def picks(storage: optuna.storages.BaseStorage, name: str) -> tuple[float, ...] | None:
    """(best trial's, parabola vertex's, fitted_rate's log lr) of the study ``name`` (None: no
    finite trial)."""
    study = optuna.load_study(study_name=name, storage=storage)
    trials = [(t.params["lr"], t.value) for t in study.trials
              if t.state == optuna.trial.TrialState.COMPLETE]
    points = [(math.log(lr), loss) for lr, loss in trials if math.isfinite(loss)]
    if not points:
        return None
    return (min(points, key=lambda p: p[1])[0], parabola_vertex(points),
            math.log(fitted_rate(trials)))


def compare(cell: str, options: dict[str, Any], out: Path,
            draws: tuple[str, str] = DRAWS) -> dict[str, Any] | None:
    store = RunStore(out)
    storage = open_storage(str(out / "optuna-journal.log"))
    chosen: dict[str, dict[int, tuple[float, ...]]] = {}
    for protocol in draws:
        config = MeasureConfig.build(**{**options, **PROTOCOLS[protocol]})
        row = store.get_measurement(config.key())
        if row is None:
            return None
        chosen[protocol] = {}
        for d in {p["d"] for p in json.loads(row.probes)}:
            name = study_name(config, "subspace", d,
                              tuning_range(config, row.lr_baseline, row.D, d))
            pick = picks(storage, name)
            if pick is not None:
                chosen[protocol][d] = pick
    first, second = (chosen[protocol] for protocol in draws)
    common = sorted(set(first) & set(second))
    ratios = {rule: [round(math.exp(abs(first[d][i] - second[d][i])), 3) for d in common]
              for i, rule in enumerate(RULES)}
    return {"cell": cell, "pairs": common, **{f"{rule}_ratio": ratios[rule] for rule in RULES}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="protocol_check's output folder")
    parser.add_argument("--only", choices=("fashion", "known"), required=True)
    parser.add_argument("--steps", type=int, default=2000, help="as protocol_check's --steps")
    parser.add_argument("--epochs", type=float, default=2.0, help="as protocol_check's --epochs")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--projections", nargs="+", default=list(PROJECTIONS), choices=PROJECTIONS)
    parser.add_argument("--draws", nargs=2, default=list(DRAWS), choices=PROTOCOLS,
                        help="the two protocol_check protocols compared (default: %(default)s)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cells = (known_cells(False, args.steps, None) if args.only == "known" else
             fashion_cells(False, args.projections, args.models, args.epochs))
    summary: dict[str, list[float]] = {rule: [] for rule in RULES}
    for cell, options in cells:
        result = compare(cell, options, Path(args.out) / cell_folder(cell), tuple(args.draws))
        if result is not None:
            print(json.dumps(result), flush=True)
            for rule in RULES:
                summary[rule] += result[f"{rule}_ratio"]
    print(json.dumps({"summary": True, "pairs": len(summary["best"]), **{
        rule: {"median_ratio": round(statistics.median(r), 3) if r else None,
               "within_x1.25": sum(v <= 1.25 for v in r)} for rule, r in summary.items()}}),
          flush=True)


if __name__ == "__main__":
    main()
