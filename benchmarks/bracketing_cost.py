"""What the default protocol would cost if its searches before a re-tuning trained one seed.

The default (``lr_protocol: bracket``) searches at a carried rate, re-tunes where that search
brackets the crossing, and searches again; the probes of a search that a re-tuning replaces only
locate the bracket, yet each trains every measured seed. protocol_check finds the default at
30-47% of tune-every-probe's runs on Fashion-MNIST but 38-68% of its training steps, and at more
than half on most of the known-answer family, where searches are short. This reads protocol_check's
stores (nothing is trained) and prices the candidate "bracket with one seed, measure with all": the
probe runs whose rate was tuned at an earlier tuning point (``lr_tuned_at`` not the last one) cost
one seed's run instead of every seed's. It is an upper bound on the saving: it assumes one seed's
verdicts bracket where every seed's did.

One JSON line per cell (runs and training steps of the default as a fraction of every-probe's,
now and under one-seed bracketing), then a summary line: on how many cells each is at most half.

    python benchmarks/bracketing_cost.py --out OUT --only known --steps 300
    python benchmarks/bracketing_cost.py --out OUT --only fashion --models lenet --epochs 0.25
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import polars as pl

from idbench.config import MeasureConfig
from idbench.store import RunStore, cell_runs

from protocol_check import (MODELS, PROJECTIONS, PROTOCOLS, cell_folder,  # (benchmarks/)
                            fashion_cells, known_cells)


def used_runs(store: RunStore, options: dict[str, Any], protocol: str) -> tuple[Any, pl.DataFrame]:
    """The stored measurement of ``protocol`` on the cell, and the runs it used (None, empty when
    it was not measured)."""
    key = MeasureConfig.build(**{**options, **PROTOCOLS[protocol]}).key()
    row = store.get_measurement(key)
    if row is None:
        return None, pl.DataFrame()
    return row, cell_runs(store.table(), store.measurements().filter(pl.col("cell") == key))


def price(cell: str, options: dict[str, Any], out: Path) -> dict[str, Any] | None:
    store = RunStore(out)
    row, default = used_runs(store, options, "bracket")
    _, reference = used_runs(store, options, "every-probe")
    if row is None or reference.is_empty():
        return None
    seeds = row.seeds
    last = int(row.tune_at.split()[0].split(":")[1].split(",")[-1])  # "bracket:447,231 ..."
    replaced = default.filter(pl.col("role") == "probe", pl.col("lr_tuned_at") != last)
    runs, steps = default.height, int(default["steps"].sum())
    saved_runs = replaced.height * (seeds - 1) / seeds
    saved_steps = int(replaced["steps"].sum()) * (seeds - 1) / seeds
    ref_runs, ref_steps = reference.height, int(reference["steps"].sum())
    return {"cell": cell, "tune_at": row.tune_at, "probe_runs_replaced": replaced.height,
            "runs_fraction": round(runs / ref_runs, 3),
            "runs_fraction_one_seed": round((runs - saved_runs) / ref_runs, 3),
            "steps_fraction": round(steps / ref_steps, 3),
            "steps_fraction_one_seed": round((steps - saved_steps) / ref_steps, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="protocol_check's output folder")
    parser.add_argument("--only", choices=("fashion", "known"), required=True)
    parser.add_argument("--steps", type=int, default=2000, help="as protocol_check's --steps")
    parser.add_argument("--epochs", type=float, default=2.0, help="as protocol_check's --epochs")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--projections", nargs="+", default=list(PROJECTIONS), choices=PROJECTIONS)
    args = parser.parse_args()
    cells = (known_cells(False, args.steps, None) if args.only == "known" else
             fashion_cells(False, args.projections, args.models, args.epochs))
    results = []
    for cell, options in cells:
        result = price(cell, options, Path(args.out) / cell_folder(cell))
        if result is not None:
            results.append(result)
            print(json.dumps(result), flush=True)
    print(json.dumps({"summary": True, "cells": len(results), **{
        f"at_most_half_{key}": sum(r[key] <= 0.5 for r in results)
        for key in ("runs_fraction", "runs_fraction_one_seed", "steps_fraction",
                    "steps_fraction_one_seed")}}), flush=True)


if __name__ == "__main__":
    main()
