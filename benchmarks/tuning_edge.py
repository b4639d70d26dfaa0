"""How far below the stability edge the tuner's pick lies, read from published runs.

With a short budget the best rate lies just below the one that diverges, and a tuning trial whose
seeds diverge scores inf, so the tuner picks the largest trial below the edge: with 6 to 8 trials
x3 apart that can be a factor of 3 below it. Probe runs, by contrast, are retried at half the rate
when they diverge, so a carried rate above the edge trains just below it. On LeNet Fastfood
(Fashion-MNIST, 0.25 epoch) a re-tuning at d = 174 lost one of two seeds at 6.9 and chose 2.19,
and every probe up to d_max failed at that rate (protocol_check.md, noise_stop).

For each subspace tuning study of each results folder (its trials: the tuning runs of one cell
at one d), nothing trained: the best trial (lowest mean final validation loss, no seed diverged),
whether the next larger rate tried lost a seed to divergence, and their ratio. Pruned trials are
not stored, so they are not counted. Also the probe runs retried at a lower rate. One JSON line
per folder, then the totals.

    python benchmarks/tuning_edge.py leaderboards/fashion-mnist-1epoch leaderboards/fashion-mnist-budget
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Any

import polars as pl

from idbench.leaderboard.results import load_runs

GAP = 1.5  # a pick this far or further below a diverging rate is "at the edge"


def edge_gaps(runs: pl.DataFrame) -> list[float | None]:
    """Per subspace tuning study: the ratio of the next larger rate tried to the best trial's
    when that rate lost a seed to divergence, else None."""
    trials = (runs.filter(pl.col("role") == "tune", pl.col("d").is_not_null())
              .group_by("cell", "d", "lr")
              .agg(pl.col("val_loss").mean().alias("loss"), pl.col("diverged").any().alias("lost")))
    gaps: list[float | None] = []
    for _, study in trials.group_by("cell", "d"):
        study = study.sort("lr")
        rates, lost = study["lr"].to_list(), study["lost"].to_list()
        loss = [math.inf if lost_seed or not math.isfinite(v) else v
                for v, lost_seed in zip(study["loss"].to_list(), lost)]
        if all(math.isinf(v) for v in loss):
            continue
        best = min(range(len(rates)), key=loss.__getitem__)
        above = best + 1 < len(rates) and lost[best + 1]
        gaps.append(rates[best + 1] / rates[best] if above else None)
    return gaps


def summary(gaps: list[float | None], runs: pl.DataFrame) -> dict[str, Any]:
    at_edge = [g for g in gaps if g is not None and g >= GAP]
    probes = runs.filter(pl.col("role") == "probe")
    return {"studies": len(gaps), f"below_a_diverging_rate_by_x{GAP:g}_or_more": len(at_edge),
            "median_gap": round(statistics.median(at_edge), 2) if at_edge else None,
            "probe_runs": probes.height,
            "probe_runs_retried": int((probes["retries"] > 0).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="results folders or runs.parquet files")
    args = parser.parse_args()
    everything = []
    for path in args.results:
        runs = load_runs(path)
        everything.append(runs)
        print(json.dumps({"results": str(Path(path)), **summary(edge_gaps(runs), runs)}))
    runs = pl.concat(everything, how="diagonal_relaxed").unique("run_key")
    print(json.dumps({"results": "all", **summary(edge_gaps(runs), runs)}))


if __name__ == "__main__":
    main()
