"""How far the tuner's draw moves d_int: one cell measured at several draws of TPE's proposals.

The CI of a leaderboard is a bootstrap over the seeds of the runs; the learning rates come from a
few Optuna trials (a grid, then TPE), and another draw of TPE's proposals is another measurement
of the same cell. ``tune_draw`` selects the draw (0 is the default): this measures one cell at
draws 0..N-1 into one output folder (the grid trials and any run two draws share are trained
once) and prints one JSON object per draw, {"draw", "d_int", "ci_low", "ci_high", "d_lo", "d_hi",
"lr_subspace", "tune_at", "n_runs"}, then a summary {"draws", "d_int_min", "d_int_max",
"spread": max / min, "cis_overlap": whether one d lies in every draw's CI}.

    python benchmarks/tuning_noise.py --draws 4                  # FC 64-64-10 on digits
    python benchmarks/tuning_noise.py --model lenet --dataset fashion-mnist --epochs 1 \\
        --method rbd --compartments layer --draws 3 --out DIR   # a Fashion-MNIST cell (~1 h here)
"""

from __future__ import annotations

import argparse
import json
import tempfile

from idbench.config import MeasureConfig
from idbench.measurement import measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="fc[depth=1,width=64]")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--projection", default="fastfood")
    parser.add_argument("--method", default="fpd")
    parser.add_argument("--compartments", default=None)
    parser.add_argument("--epochs", type=float, default=10.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tune-trials", type=int, default=6)
    parser.add_argument("--draws", type=int, default=4)
    parser.add_argument("--out", default=None, help="run store (default: a temporary folder)")
    args = parser.parse_args()
    compartments = (None if args.compartments is None else
                    args.compartments if args.compartments == "layer" else int(args.compartments))
    common = dict(model=args.model, dataset=args.dataset, projection=args.projection,
                  method=args.method, compartments=compartments, epochs=args.epochs,
                  seeds=args.seeds, tune_trials=args.tune_trials, d_min=32, d_max=8192,
                  resolution=0.1, batch_size=128)
    with tempfile.TemporaryDirectory() as scratch:
        rows = []
        for draw in range(args.draws):
            row = measure(MeasureConfig(**common, tune_draw=draw), out=args.out or scratch,
                          device="cpu")
            rows.append(row)
            print(json.dumps({"draw": draw, "d_int": row.d_int, "ci_low": row.ci_low,
                              "ci_high": row.ci_high, "d_lo": row.d_lo, "d_hi": row.d_hi,
                              "lr_subspace": row.lr_subspace, "tune_at": row.tune_at,
                              "n_runs": row.n_runs}), flush=True)
    found = [r.d_int for r in rows if r.d_int is not None]
    lows = [r.ci_low for r in rows if r.ci_low is not None]
    highs = [r.ci_high for r in rows if r.ci_high is not None]
    print(json.dumps({
        "draws": args.draws, "d_int_min": min(found, default=None),
        "d_int_max": max(found, default=None),
        "spread": max(found) / min(found) if found else None,
        "cis_overlap": bool(lows and highs and max(lows) <= min(highs)),
    }))


if __name__ == "__main__":
    main()
