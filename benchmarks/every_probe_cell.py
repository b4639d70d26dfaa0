"""The tune-every-probe reference for one cell of a published board, its runs reused.

A board's default protocol tunes the subspace rate at d_ref and near the crossing; where a cell's
``tune_at`` looks wrong (a re-tuning at d_max carried far back, tuning_edge.py), this measures the
same cell with a rate tuned at every probe, starting from the board's published runs (copied into
``--out``: every run they hold is found, not trained), and prints one JSON line: d_int, bracket,
CI, runs, and every probe's mean score.

    python benchmarks/every_probe_cell.py fashion-mnist 'fc*/fashion-mnist/fastfood/rbd' --out OUT
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from idbench.errors import IdbenchError
from idbench.leaderboard.results import load_runs
from idbench.measurement import measure
from idbench.runner import select_cells
from idbench.store import RunStore
from idbench.suites import load_suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", help="shipped suite name or suite file")
    parser.add_argument("cell", help="wildcard naming exactly one cell, as idbench run --only")
    parser.add_argument("--out", required=True, help="folder for the store (the board's runs go in)")
    parser.add_argument("--board", default=None, help="published results (default: "
                        "leaderboards/<suite>)")
    parser.add_argument("--tune-draw", type=int, default=0, help="the tuner's draw (tune_draw): "
                        "another one measures how well the reference agrees with itself")
    args = parser.parse_args()
    suite = load_suite(args.suite)
    try:
        cells = [c for c in select_cells(suite, args.cell) if c.skipped is None]
    except IdbenchError as exc:
        parser.error(str(exc))
    if len(cells) != 1:
        parser.error(f"{args.cell!r} names {len(cells)} runnable cells of {suite.name}, not one")
    torch.set_num_threads(1)
    RunStore(args.out).adopt(load_runs(args.board or f"leaderboards/{suite.name}"))
    config = cells[0].config.model_copy(update={"tune_every_probe": True,
                                                "tune_draw": args.tune_draw})
    start = time.perf_counter()
    row = measure(config, out=args.out, suite=suite.name, suite_version=suite.version,
                  device="cpu")
    print(json.dumps({
        "cell": cells[0].label, "tune_draw": row.tune_draw,
        "d_int": row.d_int,
        "d_lo": row.d_lo, "d_hi": row.d_hi,
        "ci": [row.ci_low, row.ci_high], "runs": row.n_runs, "wall_s": round(row.wall_s, 1),
        "elapsed_s": round(time.perf_counter() - start, 1), "git_rev": row.git_rev,
        "probes": [[p["d"], round(p["mean"], 4)] for p in json.loads(row.probes)],
    }))


if __name__ == "__main__":
    main()
