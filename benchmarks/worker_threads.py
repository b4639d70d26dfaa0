"""Why Dask CPU workers share the cores: N training processes at T torch threads each.

Starts ``--processes`` copies of one fixed training run (LeNet under Fastfood, d = 300, a quarter
epoch of Fashion-MNIST; ``--model``, ``--dataset`` and ``--steps`` change it) at the same time,
each in its own Python process (as Dask worker processes train), once with every process at 1
torch thread and once at ``--threads`` (default: the cores), alternating ``--repeats`` times, so
that load from other processes hits both alike. Prints one JSON object per setting: the median
wall seconds of the whole batch and of one run in it, and the ratio to the 1-thread setting::

    python benchmarks/worker_threads.py                 # 2 processes, 1 vs 2 threads
    python benchmarks/worker_threads.py --processes 2 --threads 2 --repeats 3 --model fc

Every run trains the same spec, so the scores printed alongside must agree across settings (a
check that the thread count moved only the time).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ONE_RUN = """
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
import idbench.data as data
from idbench.train import RunSpec, run
ds = data.load(sys.argv[3])
spec = RunSpec(model=sys.argv[2], dataset=sys.argv[3], seed=0, lr=0.05, projection="fastfood",
               d=300, steps=int(sys.argv[4]), epochs=None, batch_size=128)
start = time.perf_counter()
result = run(spec, ds)
print(json.dumps({"run_s": time.perf_counter() - start, "val_score": result.val_score}))
"""


def batch(processes: int, threads: int, args: argparse.Namespace) -> tuple[float, list[dict]]:
    """Wall seconds of ``processes`` concurrent runs at ``threads`` each, and their outputs."""
    command = [sys.executable, "-c", ONE_RUN, str(threads), args.model, args.dataset,
               str(args.steps)]
    start = time.perf_counter()
    running = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
               for _ in range(processes)]
    outputs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in running]
    return time.perf_counter() - start, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--steps", type=int, default=106, help="a quarter epoch at batch 128")
    args = parser.parse_args()
    settings = sorted({1, args.threads})
    walls: dict[int, list[float]] = {t: [] for t in settings}
    runs: dict[int, list[float]] = {t: [] for t in settings}
    scores: dict[int, set[float]] = {t: set() for t in settings}
    for _ in range(args.repeats):
        for threads in settings:
            wall, outputs = batch(args.processes, threads, args)
            walls[threads].append(wall)
            runs[threads].extend(o["run_s"] for o in outputs)
            scores[threads].update(o["val_score"] for o in outputs)
    base = statistics.median(walls[1])
    for threads in settings:
        print(json.dumps({
            "model": args.model, "processes": args.processes, "threads": threads,
            "cores": len(os.sched_getaffinity(0)), "batch_s": round(statistics.median(walls[threads]), 1),
            "run_s": round(statistics.median(runs[threads]), 1),
            "ratio_to_1_thread": round(statistics.median(walls[threads]) / base, 2),
            "val_scores": sorted(scores[threads]), "load_avg_1min": os.getloadavg()[0],
        }), flush=True)


if __name__ == "__main__":
    main()
