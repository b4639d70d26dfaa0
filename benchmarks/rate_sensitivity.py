"""How far the crossing moves with the learning rate: the reference's verdicts at its own bracket
under rates a little off the tuned one.

protocol_check compares the default protocol's bracket with tune-every-probe's. Whether a miss of
one or two d is the protocol's fault or the instrument's depends on how sharply a probe's verdict
depends on its rate: if the verdict at the reference's own d_lo or d_hi flips when its tuned rate
is scaled by 0.9 or 1.1, no protocol whose rate at that d differs by 10% (a carried rate, another
draw of the tuner, another tuner) can be expected to find the same bracket, and agreement within
the bracket is below the measurement's resolution in the rate.

For each cell of protocol_check's output folder (``--out``, the folder its run wrote), this reads
the every-probe measurement (draw 0), and at its d_lo and d_hi trains every measured seed at the
tuned rate times each ``--factors`` (stored in the cell's run store, so a rerun trains nothing).
One JSON line per cell: the tuned rate and the mean score at each factor for d_lo and d_hi, and the
factors that flip a verdict at either end; then a summary line: on how many cells each factor
flips one, and on how many any does.

    python benchmarks/rate_sensitivity.py --out OUT --steps 300   # the known-answer family
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import polars as pl
import torch

from idbench.cell import CellRuns
from idbench.config import MeasureConfig
from idbench.executors import LocalExecutor
from idbench.store import RunStore, cell_runs

from protocol_check import PROTOCOLS, cell_folder, known_cells  # (benchmarks/protocol_check.py)

FACTORS = (0.8, 0.9, 1.1, 1.25)


def sensitivity(cell: str, options: dict, out: Path, factors: tuple[float, ...]) -> dict | None:
    config = MeasureConfig.build(**{**options, **PROTOCOLS["every-probe"]})
    store = RunStore(out)
    row = store.get_measurement(config.key())
    if row is None or row.censored or row.d_lo is None:
        return None
    runs = CellRuns(config, store, LocalExecutor(), "cpu", None, None)
    used = cell_runs(store.table(), store.measurements().filter(pl.col("cell") == row.cell))
    probes = used.filter(pl.col("role") == "probe")
    threshold = row.threshold_score
    ends = {}
    for d in (row.d_lo, row.d_hi):
        lr = probes.filter(pl.col("d") == d)["lr"][0]
        scores = {}
        for factor in (1.0, *factors):
            specs = [runs.spec(seed, lr * factor, d) for seed in range(config.seeds)]
            scores[factor] = float(sum(r.val_score for r in runs.runs(specs, "probe"))
                                   / config.seeds)
        ends[d] = {"lr": lr, "mean": {f"{f:g}": s for f, s in scores.items()}}
        passed_at_tuned = scores[1.0] >= threshold
        ends[d]["flips"] = [f for f in factors if (scores[f] >= threshold) != passed_at_tuned]
    return {"cell": cell, "d_lo": row.d_lo, "d_hi": row.d_hi, "threshold": threshold,
            "ends": {str(d): e for d, e in ends.items()},
            "flips": sorted({f for e in ends.values() for f in e["flips"]})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="protocol_check's output folder")
    parser.add_argument("--steps", type=int, default=2000, help="as protocol_check's --steps")
    parser.add_argument("--factors", nargs="+", type=float, default=list(FACTORS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    factors = tuple(args.factors)
    results = []
    for cell, options in known_cells(False, args.steps, None):
        result = sensitivity(cell, options, Path(args.out) / cell_folder(cell), factors)
        if result is not None:
            results.append(result)
            print(json.dumps(result), flush=True)
    print(json.dumps({"summary": True, "cells": len(results),
                      "cells_flipped_by": {f"{f:g}": sum(f in r["flips"] for r in results)
                                           for f in factors},
                      "cells_flipped": sum(bool(r["flips"]) for r in results)}), flush=True)

if __name__ == "__main__":
    main()
