"""What the dask executor costs over the local one: cluster start-up, per-run overhead, suite time.

Two parts, each printing one JSON object per line:

``overhead`` (default): a local Dask cluster of ``--workers`` processes against in-process
execution, on

- ``noop``: a function that does nothing (pure scheduling and transfer cost of one task);
- ``run``: a real, tiny training run (fc[depth=1,width=16] on digits, ``--epochs``) through
  :func:`idbench.cell.execute`, as measurements submit them.

For each it reports the median seconds of one run alone (``local_s``; ``dask_s``: one ``map`` of
one item, the latency a tuning trial sees) and ``overhead_ms`` = ``dask_s - local_s``; and, for a
batch of ``--batch`` runs in one ``map`` (the seeds of a probe), the seconds per run on each
(``batch_local_s_per_run``, ``batch_dask_s_per_run``; the dask figure shares the work among the
workers). Worker start-up (``start_s``) and shutdown (``close_s``) are reported apart.

``suite``: the wall time of a whole suite run with one executor, into a fresh temporary folder::

    python benchmarks/executor_overhead.py                        # overhead, 2 workers
    python benchmarks/executor_overhead.py suite suites/quickstart.yaml --executor local
    python benchmarks/executor_overhead.py suite suites/quickstart.yaml --executor dask --workers 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from idbench.dask_executor import DaskExecutor
from idbench.executors import LocalExecutor
from idbench.cell import execute
from idbench.train import RunSpec


def noop(item: int) -> int:
    return item


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def overhead(workers: int, repeats: int, batch: int, epochs: float) -> list[dict]:
    spec = RunSpec(model="fc[depth=1,width=16]", dataset="digits", seed=0, lr=0.1, epochs=epochs)
    cases = {"noop": (noop, lambda i: i),
             "run": (execute, lambda i: (RunSpec(**{**spec.to_dict(), "seed": i}), "cpu"))}
    local = LocalExecutor()
    start = time.perf_counter()
    dask = DaskExecutor(workers=workers, device="cpu")
    start_s = time.perf_counter() - start
    rows = []
    try:
        for name, (fn, item) in cases.items():
            for executor in (local, dask):  # warm up: imports, data loaded once per process
                executor.map(fn, [item(i) for i in range(max(workers, 2))])
            one = {label: statistics.median(timed(ex.map, fn, [item(0)]) for _ in range(repeats))
                   for label, ex in (("local", local), ("dask", dask))}
            many = {label: timed(ex.map, fn, [item(i) for i in range(batch)]) / batch
                    for label, ex in (("local", local), ("dask", dask))}
            rows.append({
                "case": name, "workers": workers, "repeats": repeats, "epochs": epochs,
                "local_s": round(one["local"], 5), "dask_s": round(one["dask"], 5),
                "overhead_ms": round(1000 * (one["dask"] - one["local"]), 2),
                "batch": batch, "batch_local_s_per_run": round(many["local"], 5),
                "batch_dask_s_per_run": round(many["dask"], 5),
            })
    finally:
        start = time.perf_counter()
        dask.close()
        close_s = time.perf_counter() - start
    return [{"case": "cluster", "workers": workers, "start_s": round(start_s, 2),
             "close_s": round(close_s, 2)}, *rows]


def suite(path: str, executor: str, workers: int | None, only: str | None = None) -> dict:
    from idbench.runner import run_suite
    from idbench.store import RunStore

    options = {"workers": workers, "device": "cpu"} if executor == "dask" else {}
    with tempfile.TemporaryDirectory(prefix="idbench-bench-") as tmp:
        start = time.perf_counter()
        result = run_suite(path, out=Path(tmp) / "out", leaderboard_dir=Path(tmp) / "lb",
                           device="cpu", only=only, executor=executor, executor_options=options)
        wall = time.perf_counter() - start
        runs = RunStore(Path(tmp) / "out").table()
    return {"case": "suite", "suite": result.suite.name, "only": only, "executor": executor,
            "workers": workers if executor == "dask" else 1, "wall_s": round(wall, 1),
            "cells": len(result.measurements), "runs": runs.height,
            "run_s_sum": round(float(runs["wall_s"].sum()), 1),
            "d_int": [m.d_int for m in result.measurements]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="part")
    over = sub.add_parser("overhead", help="per-run overhead (default)")
    for p in (parser, over):
        p.add_argument("--workers", type=int, default=2)
        p.add_argument("--repeats", type=int, default=20)
        p.add_argument("--batch", type=int, default=8)
        p.add_argument("--epochs", type=float, default=2.0)
    run = sub.add_parser("suite", help="wall time of a suite with one executor")
    run.add_argument("path")
    run.add_argument("--executor", choices=["local", "dask"], default="local")
    run.add_argument("--workers", type=int, default=2)
    run.add_argument("--only", help="wildcard over the cells, as `idbench run --only`")
    args = parser.parse_args()
    if args.part == "suite":
        rows = [suite(args.path, args.executor, args.workers, args.only)]
    else:
        rows = overhead(args.workers, args.repeats, args.batch, args.epochs)
    for row in rows:
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
