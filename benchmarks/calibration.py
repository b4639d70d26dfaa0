"""Does a cell's interval contain what an independent re-measurement finds? Calibration of d_int.

Each cell is measured K times with ``replicate`` 0..K-1 (other training, baseline and tuning
seeds, another tuner draw; everything else the same), all into one output folder. For every
ordered pair of replicates (i, j), i != j, it checks whether replicate i's 95% interval contains
replicate j's estimate. A calibrated 95% interval of an estimate whose noise it fully covers
contains another replicate's estimate about 83% of the time (the difference of two estimates
has twice the variance of one); an interval that leaves a source of noise out contains it less.

Prints one JSON object per measurement ({"cell", "replicate", "d_int", "ci_low", "ci_high",
"n_runs", "flags"}), then per cell and overall {"cell", "containment": fraction of ordered pairs,
"pairs", "median_rel_width": median (hi - lo) / d_int, "median_runs": runs per measurement,
"spread": max / min d_int}.

    python benchmarks/calibration.py --replicates 8 --out DIR            # the three cells
    python benchmarks/calibration.py --cells digits-fastfood --set seeds=5 tune_trials=12

``--set name=value`` overrides a measurement option of every cell (the protocol under test);
``--cells`` picks cells by name. A protocol of R independent draws per measurement is the option
``draws`` (``--set draws=R seeds=1 tune_seeds=1``; :mod:`idbench.draws`): replicate r then
measures draws r x R .. r x R + R - 1, so the runs of single-draw replicates are those of pooled
ones. Output folders can be shared between runs of the script: a measurement made before is read
back, not trained again.
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any

from idbench.config import MeasureConfig
from idbench.measurement import measure

CELLS: dict[str, dict[str, Any]] = {
    # FC 64-64-10 on the 8x8 digits, Fastfood, 10 epochs
    "digits-fastfood": dict(model="fc[depth=1,width=64]", dataset="digits",
                            projection="fastfood", epochs=10, d_min=32, d_max=8192),
    # FC 64-32-32-10 on the 8x8 digits, sparse, 10 epochs
    "digits-sparse": dict(model="fc[depth=2,width=32]", dataset="digits", projection="sparse",
                          epochs=10, d_min=32, d_max=8192),
    # FC 784-64-10 on Fashion-MNIST, Fastfood, 1 epoch
    "fmnist-fastfood": dict(model="fc[depth=1,width=64]", dataset="fashion-mnist",
                            projection="fastfood", epochs=1, d_min=32, d_max=8192),
}


def parse_value(text: str) -> Any:
    """A --set value as JSON where it parses (numbers, true/false), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def summary(cell: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Containment over ordered pairs, median relative width and runs, spread of estimates."""
    found = [r for r in rows if r["d_int"] is not None]
    pairs = [(a, b) for a in found for b in found if a is not b]
    inside = [a["ci_low"] is not None and a["ci_low"] <= b["d_int"] <= a["ci_high"]
              for a, b in pairs]
    widths = [(r["ci_high"] - r["ci_low"]) / r["d_int"] for r in found
              if r["ci_low"] is not None]
    estimates = [r["d_int"] for r in found]
    return {"cell": cell, "measurements": len(rows), "censored": len(rows) - len(found),
            "containment": sum(inside) / len(pairs) if pairs else None, "pairs": len(pairs),
            "median_rel_width": statistics.median(widths) if widths else None,
            "median_runs": statistics.median(r["n_runs"] for r in rows) if rows else None,
            "spread": max(estimates) / min(estimates) if estimates else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="*", default=list(CELLS), choices=list(CELLS))
    parser.add_argument("--replicates", type=int, default=8)
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE")
    parser.add_argument("--out", required=True, help="run store shared by every measurement")
    args = parser.parse_args()
    overrides = {k: parse_value(v) for k, v in (item.split("=", 1) for item in args.set)}
    everything = []
    for cell in args.cells:
        rows = []
        for replicate in range(args.replicates):
            config = MeasureConfig(**{**CELLS[cell], **overrides, "replicate": replicate})
            row = measure(config, out=args.out, device="cpu")
            found = {"cell": cell, "replicate": replicate, "d_int": row.d_int,
                     "ci_low": row.ci_low, "ci_high": row.ci_high, "n_runs": row.n_runs,
                     "flags": getattr(row, "flags", None)}
            rows.append(found)
            print(json.dumps(found), flush=True)
        print(json.dumps(summary(cell, rows)), flush=True)
        everything += rows
    per_cell = [summary(c, [r for r in everything if r["cell"] == c]) for c in args.cells]
    pairs = sum(s["pairs"] for s in per_cell)
    inside = sum(s["containment"] * s["pairs"] for s in per_cell if s["pairs"])
    overall = summary("all", everything)  # (its pairs mix cells: replaced by the cells' pairs)
    overall.update(containment=inside / pairs if pairs else None, pairs=pairs, spread=None)
    print(json.dumps(overall), flush=True)


if __name__ == "__main__":
    main()
