"""Each cell's score at a given d as a fraction of its baseline, read off a leaderboard's probes.

Gressmann et al. 2020 compare methods at a fixed number of directions: on Fashion-MNIST with an FC
network at d = 250, random bases descent reaches 98% of SGD's accuracy and fixed projection
descent 89%. This reads the same figure from published results without training: each cell's mean
validation score over seeds at d, interpolated linearly in log d between the two probes around it
(exact where d was probed; none outside the probed range), over the cell's baseline (full-space
training with the same budget and tuning). d counts the cell's total directions (d per
compartment x compartments, as the leaderboard's comparison view does).

    python benchmarks/score_at_d.py leaderboards/fashion-mnist-1epoch --d 250

prints one JSON object per cell: {"model", "projection", "method", "compartments", "optimizer",
"epochs", "d", "probes_around", "score", "baseline", "fraction"}.
"""

from __future__ import annotations

import argparse
import json
import math

from idbench.leaderboard import load_results, table


def score_at(probes: list[dict], d: float) -> tuple[float | None, list[int]]:
    """The mean score at ``d`` (log-linear between the probes around it) and those probes' d."""
    ordered = sorted(probes, key=lambda p: p["d"])
    for low, high in zip(ordered, ordered[1:]):
        if low["d"] <= d <= high["d"]:
            if d == low["d"]:
                return low["mean"], [low["d"]]
            frac = math.log(d / low["d"]) / math.log(high["d"] / low["d"])
            return low["mean"] + frac * (high["mean"] - low["mean"]), [low["d"], high["d"]]
    exact = [p for p in ordered if p["d"] == d]
    return (exact[0]["mean"], [exact[0]["d"]]) if exact else (None, [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="a leaderboard folder or a run store (--out)")
    parser.add_argument("--d", type=float, default=250, help="total directions")
    args = parser.parse_args()
    df = table(*load_results(args.results))
    for row in df.to_dicts():
        per_unit = (row["d_int_total"] / row["d_int"]) if row["d_int"] and row["d_int_total"] else 1
        score, around = score_at(json.loads(row["probes"]), args.d / per_unit)
        print(json.dumps({
            "model": row["model"], "projection": row["projection"], "method": row["method"],
            "compartments": row["compartments"], "optimizer": row["optimizer"],
            "epochs": row["epochs"], "d": args.d, "probes_around": [p * per_unit for p in around],
            "score": None if score is None else round(score, 4),
            "baseline": round(row["baseline_mean"], 4),
            "fraction": None if score is None else round(score / row["baseline_mean"], 4),
        }))


if __name__ == "__main__":
    main()
