"""How far a board's probes ran from their tuned rates: its tunings that found no finishing rate,
and the rates its probes' retries ended at, read from its stored runs (nothing trains).

A tuning whose every trial diverged hands its probes the smallest rate it tried, which diverged
too; each probe then retries at half the rate until a run finishes (idbench.train.run), and the
cell is flagged ``untuned``. Per group of cells (model, dataset, theta0, SAID, method,
compartments) this prints one JSON object: the subspace tunings (one per tuned d and draw) and how
many diverged at every rate, the share of probe runs that were retried, their median number of
halvings, and the median of the final rate times d (the rate a probe of d directions ran at,
comparable across d where rates are carried as 1/d)::

    python benchmarks/retried_rates.py leaderboards/fashion-mnist-transfer
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import polars as pl

GROUP = ["model", "dataset", "theta0", "said", "method", "compartments"]


def summary(runs: pl.DataFrame) -> pl.DataFrame:
    """One row per group of cells: its tunings and its probes' retries."""
    runs = runs.unique("run_key").with_columns(pl.col("theta0").fill_null("init"),
                                               pl.col("said").fill_null(False))
    tunings = (runs.filter((pl.col("role") == "tune") & pl.col("d").is_not_null())
               .group_by([*GROUP, "cell", "d", "seed"])
               .agg(every_trial_diverged=pl.col("diverged").all())
               .group_by(GROUP)
               .agg(tunings=pl.len(),
                    all_diverged=pl.col("every_trial_diverged").sum().cast(pl.Int64)))
    probes = (runs.filter(pl.col("role") == "probe")
              .group_by(GROUP)
              .agg(probes=pl.len(), retried=(pl.col("retries") > 0).mean().round(3),
                   median_halvings=pl.col("retries").median(),
                   median_rate_x_d=(pl.col("lr_final") * pl.col("d")).median().round(1)))
    return probes.join(tunings, on=GROUP, how="left").sort(GROUP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("board", type=Path, help="a results folder holding runs.parquet")
    args = parser.parse_args()
    for row in summary(pl.read_parquet(args.board / "runs.parquet")).to_dicts():
        print(json.dumps(row))


if __name__ == "__main__":
    main()
