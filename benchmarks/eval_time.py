"""Seconds per evaluation pass (validation and test splits) with the forward pass in one piece per
batch of ``EVAL_BATCH`` images against chunks of ``FORWARD_CHUNK``, side by side in one process.

An evaluation sums the loss and score over batches of 2,048 images; a convolution's activations
over 2,048 images do not fit in cache. ``idbench.train.evaluate`` therefore runs each batch's
forward pass in chunks (on the CPU) and gets the same logits bit for bit. This script measures
what that saves, alternating the two settings ``--repeats`` times and reporting medians, and
checks that both give the same (score, loss). One JSON object per model::

    {"model", "whole_ms", "chunked_ms", "ratio", "same_bits", "threads", "device"}

With ``--runs N`` it also times N whole 1-epoch runs of each model in a d = 290 Fastfood
subspace per setting, alternating (``run_whole_s``, ``run_chunked_s``: medians of the runs' own
wall seconds; ``run_same_bits``: the runs' results agree)::

    python benchmarks/eval_time.py --threads 1
    python benchmarks/eval_time.py --threads 1 --models lenet --runs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

import idbench.data
import idbench.train as train
from idbench.provenance import device_name
from idbench.train import RunSpec, build_model, evaluate, run


def timed_eval(model: torch.nn.Module, data, chunk: int) -> tuple[float, tuple]:
    """Seconds for evaluating the validation and test splits with forward chunks of ``chunk``."""
    train.FORWARD_CHUNK = chunk
    start = time.perf_counter()
    result = (evaluate(model, data, "val"), evaluate(model, data, "test"))
    return time.perf_counter() - start, result


def whole_runs(name: str, dataset: str, data, repeats: int, chunked: int) -> dict:
    """Median wall seconds of 1-epoch Fastfood runs evaluated whole and chunked, alternating."""
    spec = RunSpec(model=name, dataset=dataset, seed=0, lr=0.05, projection="fastfood", d=290,
                   epochs=1)
    walls: dict[int, list[float]] = {train.EVAL_BATCH: [], chunked: []}
    results = {}
    for _ in range(repeats):
        for chunk in walls:
            train.FORWARD_CHUNK = chunk
            result = run(spec, data)
            walls[chunk].append(result.wall_s)
            results[chunk] = (result.val_score, result.val_loss, result.test_score, result.history)
    return {"run_whole_s": round(statistics.median(walls[train.EVAL_BATCH]), 2),
            "run_chunked_s": round(statistics.median(walls[chunked]), 2),
            "run_same_bits": results[train.EVAL_BATCH] == results[chunked]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lenet", "fc[depth=2,width=200]", "cnn"])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--runs", type=int, default=0, help="whole 1-epoch runs per setting")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    data = idbench.data.load(args.dataset)
    chunked = train.FORWARD_CHUNK
    for name in args.models:
        model = build_model(RunSpec(model=name, dataset=args.dataset, seed=0, lr=0.1, epochs=1), data)
        timed_eval(model, data, chunked)  # warm-up
        times: dict[int, list[float]] = {train.EVAL_BATCH: [], chunked: []}
        results = {}
        for _ in range(args.repeats):
            for chunk in times:
                seconds, results[chunk] = timed_eval(model, data, chunk)
                times[chunk].append(seconds)
        whole, part = (statistics.median(times[c]) for c in (train.EVAL_BATCH, chunked))
        row = {
            "model": name, "dataset": args.dataset, "whole_ms": round(whole * 1e3, 1),
            "chunked_ms": round(part * 1e3, 1), "ratio": round(part / whole, 3),
            "same_bits": results[train.EVAL_BATCH] == results[chunked],
            "threads": torch.get_num_threads(), "device": device_name("cpu"),
        }
        if args.runs:
            row.update(whole_runs(name, args.dataset, data, args.runs, chunked))
        print(json.dumps(row), flush=True)
    train.FORWARD_CHUNK = chunked
    return 0


if __name__ == "__main__":
    sys.exit(main())
