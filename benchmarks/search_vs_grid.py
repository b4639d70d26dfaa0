"""Runs and wall time of one d_int90 measurement: the search against the published grid.

The search needs about log2(d_max / d_min) + log2(1 / resolution) probes; the published Li et al.
MNIST FC sweep has 16 fixed points. Both measure the same cell (FC 784-200-200-10 on Fashion-MNIST
under fastfood by default) in one process, each into its own fresh output folder, and print one
JSON object per mode: {"mode", "d_int90", "d_lo", "d_hi", "probes", "n_runs", "wall_s"}.

    python benchmarks/search_vs_grid.py --json
    python benchmarks/search_vs_grid.py --quick      # 1 seed, a fraction of an epoch
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from idbench.config import MeasureConfig
from idbench.measurement import measure

LI2018_MNIST_FC_GRID = (10, 50, 100, 200, 300, 400, 500, 600, 700, 750, 800, 900, 1000, 2000,
                        3000, 4000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="fc[depth=2,width=200]")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--projection", default="fastfood")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--json", action="store_true", help="JSON lines only")
    parser.add_argument("--quick", action="store_true", help="1 seed, 0.25 epochs")
    args = parser.parse_args()
    seeds, epochs = (1, 0.25) if args.quick else (args.seeds, args.epochs)
    common = dict(model=args.model, dataset=args.dataset, projection=args.projection,
                  seeds=seeds, epochs=epochs, tune_trials=4,
                  d_min=10, d_max=4000, resolution=0.05)
    for mode, extra in (("search", {}), ("grid", {"grid": LI2018_MNIST_FC_GRID})):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            row = measure(MeasureConfig(**common, **extra), out=out, device="cpu")
            wall = time.perf_counter() - start
        probes = json.loads(row.probes)
        result = {"mode": mode, "model": row.model, "dataset": row.dataset,
                  "projection": row.projection, "seeds": seeds, "epochs": epochs,
                  "d_int90": row.d_int, "d_lo": row.d_lo, "d_hi": row.d_hi,
                  "probes": len(probes), "n_runs": row.n_runs, "wall_s": round(wall, 1)}
        print(json.dumps(result) if args.json else
              f"{mode:>6}: d_int90={row.d_int} [{row.d_lo}, {row.d_hi}] "
              f"probes={len(probes)} runs={row.n_runs} wall={wall:.0f}s")


if __name__ == "__main__":
    main()
