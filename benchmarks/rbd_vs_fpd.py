"""Random bases descent against fixed projection descent at equal d (Gressmann et al. 2020).

The longer version of ``tests/methods/test_rbd.py::test_rbd_beats_fpd_on_fashion_mnist_at_d250``:
FC-128 (D = 101,770) on Fashion-MNIST, d = 250, constant learning rate, each method at the best
learning rate of its own grid (mean validation accuracy of the final models over seeds). Optionally
nes on the same bases, for the study's three-way comparison.

    python benchmarks/rbd_vs_fpd.py [--quick] [--steps 2000] [--seeds 2] [--projection fastfood]
                                    [--nes] [--threads 1]

prints one JSON object per run ({"method", "basis", "lr", "seed", "val_score", "diverged",
"wall_s"}) and one summary per method ({"method", "basis", "best_lr", "val_score_mean"}).
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

import idbench.data
from idbench.train import RunSpec, run

GRIDS = {  # half-decade grids around each method's optimum at d = 250 (unit-norm bases)
    "fpd": (0.3, 1.0, 3.0, 10.0, 30.0),
    "rbd": (1.0, 3.0, 10.0, 30.0, 100.0),
    "nes": (1.0, 3.0, 10.0, 30.0, 100.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 steps, one seed, 3 lrs each")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--d", type=int, default=250)
    parser.add_argument("--projection", default="fastfood")
    parser.add_argument("--nes", action="store_true", help="also run nes (2 d forwards a step)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    steps, seeds = (200, 1) if args.quick else (args.steps, args.seeds)

    data = idbench.data.load("fashion-mnist", download=False)
    for method in ("fpd", "rbd", "nes") if args.nes else ("fpd", "rbd"):
        grid = GRIDS[method][1:4] if args.quick else GRIDS[method]
        means = {}
        for lr in grid:
            scores = []
            for seed in range(seeds):
                spec = RunSpec(model="fc[depth=1,width=128]", dataset="fashion-mnist", seed=seed,
                               lr=lr, steps=steps, projection=args.projection, d=args.d,
                               method=method, schedule="constant")
                result = run(spec, data)
                scores.append(result.val_score)
                print(json.dumps({
                    "method": method, "basis": args.projection, "lr": lr, "seed": seed,
                    "val_score": round(result.val_score, 4), "diverged": result.diverged,
                    "wall_s": round(result.wall_s, 1),
                }), flush=True)
            means[lr] = statistics.mean(scores)
        best = max(means, key=means.get)
        print(json.dumps({"method": method, "basis": args.projection, "best_lr": best,
                          "val_score_mean": round(means[best], 4)}), flush=True)


if __name__ == "__main__":
    main()
