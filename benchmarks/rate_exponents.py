"""How the tuned subspace rate falls with d, read off the published boards' runs (trains nothing).

The default protocol tunes the subspace rate at one d and carries it to the other probes by a
scaling rule (``inverse-d`` for SGD: lr x d_ref / d keeps E[P P^T] = (d/D) I's step fixed). Where
one draw of a cell tuned at two d at least x3 apart, the slope of log(tuned rate) against log d
between them says which rule would have carried the rate from one to the other: -1 for
``inverse-d``, -0.5 for ``inverse-sqrt-d``. The tuned rate is the trial of lowest final validation
loss at that d, as the tuner picks it. A draw is one training seed (its tuning trials run under
``seed + 10,000``), so each line is one (cell, draw, pair of tuning points).

Prints one JSON object per pair, then one per (method, compartments, optimizer) with the median slope::

    python benchmarks/rate_exponents.py                      # every board in leaderboards/
    python benchmarks/rate_exponents.py --boards leaderboards/fashion-mnist-settled
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

import polars as pl

KEYS = ["model", "method", "projection", "compartments", "optimizer", "epochs", "seed"]


def slopes(runs: pl.DataFrame, spread: float = 3.0) -> list[dict]:
    """One row per draw that tuned at two d at least ``spread`` apart: the slope of log(rate)
    against log d between its lowest and highest tuning points."""
    tuned = (runs.filter((pl.col("role") == "tune") & pl.col("d").is_not_null()
                         & pl.col("val_loss").is_finite())
             .sort("val_loss").group_by([*KEYS, "d"], maintain_order=True).first())
    out = []
    for draw in tuned.partition_by(KEYS):
        draw = draw.sort("d")
        d_lo, d_hi = draw["d"][0], draw["d"][-1]
        if d_hi < spread * d_lo:
            continue
        slope = math.log(draw["lr"][-1] / draw["lr"][0]) / math.log(d_hi / d_lo)
        out.append({**{k: draw[k][0] for k in KEYS}, "d_lo": d_lo, "d_hi": d_hi,
                    "slope": round(slope, 2)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", nargs="*", type=Path,
                        default=sorted(Path("leaderboards").glob("*/runs.parquet")))
    args = parser.parse_args()
    files = [b / "runs.parquet" if b.is_dir() else b for b in args.boards]
    rows = []
    for path in files:
        runs = pl.read_parquet(path).unique("run_key", maintain_order=True)
        for row in slopes(runs):
            rows.append({"board": path.parent.name, **row})
            print(json.dumps(rows[-1]))
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        groups.setdefault((row["method"], row["compartments"], row["optimizer"]),
                          []).append(row["slope"])
    for (method, compartments, optimizer), values in sorted(groups.items(), key=str):
        print(json.dumps({"method": method, "compartments": compartments, "optimizer": optimizer,
                          "pairs": len(values),
                          "median_slope": round(statistics.median(values), 2),
                          "range": [min(values), max(values)]}))


if __name__ == "__main__":
    main()
