"""Seconds per training epoch on Fashion-MNIST (CPU, or a GPU with ``--device cuda``): FC
784-200-200-10 and LeNet, full space and in a d = 1000 Fastfood subspace, trained by the real
trainer (``idbench.train.run``).

For every (model, mode) one run of ``epochs=1`` (``--quick``: ``steps=`` a fraction of an epoch) is
timed. ``epoch_s`` is the training loop's time per epoch, without the evaluation passes that
``run`` makes at the end (their time, ``eval_s``, is measured on the same model and subtracted;
``wall_s`` is what ``run`` took in all). ``data_fraction`` is the share of the training time spent
in getting batches (indexing the training tensor and augmentation): the trainer's batch code is
replayed alone, for the same number of batches, right after the run. A small share shows that the
model's forward and backward pass, not data loading, is what an epoch costs.

Prints one JSON object per line (with ``--json``, nothing else)::

    {"model", "dataset", "mode", "d", "epoch_s", "steps", "data_fraction", ...}

    python benchmarks/epoch_time.py             # one full epoch each (a minute or so)
    python benchmarks/epoch_time.py --quick     # 60 steps each, extrapolated to an epoch
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time

import torch

import idbench.data
from idbench.provenance import device_name
from idbench.seeding import cpu_generator, derive_seed
from idbench.train import RunSpec, build_model, evaluate, run

MODELS = {"fc": "fc[depth=2,width=200]", "lenet": "lenet"}


def eval_seconds(spec: RunSpec, data, repeats: int = 3) -> float:
    """Median time of the evaluation passes (val, test) of a run that evaluates once."""
    model = build_model(spec, data)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        evaluate(model, data, "val")
        evaluate(model, data, "test")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def data_seconds(spec: RunSpec, data, steps: int, repeats: int = 3) -> float:
    """Median time to produce ``steps`` training batches exactly as the trainer does, alone."""
    n_train = len(data.x_train)
    steps_per_epoch = math.ceil(n_train / spec.batch_size)
    device = data.x_train.device
    times = []
    for _ in range(repeats):
        batch_gen = cpu_generator(spec.seed, "batches")
        aug_gen = torch.Generator(device=device).manual_seed(derive_seed(spec.seed, "augment"))
        order = torch.empty(0, dtype=torch.long)
        start = time.perf_counter()
        for step in range(steps):
            position = step % steps_per_epoch
            if position == 0:
                order = torch.randperm(n_train, generator=batch_gen).to(device)
            idx = order[position * spec.batch_size : (position + 1) * spec.batch_size]
            xb, yb = data.augment_batch(data.x_train[idx], aug_gen), data.y_train[idx]
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # the batches are queued, not yet made
        times.append(time.perf_counter() - start)
    del xb, yb
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only JSON lines")
    parser.add_argument("--quick", action="store_true", help="a fraction of an epoch (--steps)")
    parser.add_argument("--steps", type=int, default=60, help="steps per run with --quick")
    parser.add_argument("--models", default="fc,lenet", help="comma-separated: fc,lenet")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--projection", default="fastfood")
    parser.add_argument("--d", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default: cpu)")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    data = idbench.data.load(args.dataset, device=args.device)
    steps_per_epoch = math.ceil(len(data.x_train) / 128)
    printed_header = False
    for model_name in args.models.split(","):
        for mode in ("full", "subspace"):
            subspace = mode == "subspace"
            spec = RunSpec(
                model=MODELS.get(model_name, model_name), dataset=args.dataset, seed=0, lr=args.lr,
                projection=args.projection if subspace else None, d=args.d if subspace else None,
                epochs=None if args.quick else 1.0, steps=args.steps if args.quick else None,
            )
            eval_s = eval_seconds(spec, data)
            result = run(spec, data)
            data_s = data_seconds(spec, data, result.steps)
            train_s = max(result.wall_s - eval_s, 1e-9)
            row = {
                "model": model_name, "dataset": args.dataset, "mode": mode,
                "projection": args.projection if subspace else None,
                "d": args.d if subspace else None, "D": result.D,
                "epoch_s": round(train_s * steps_per_epoch / result.steps, 3),
                "steps": result.steps, "steps_per_epoch": steps_per_epoch,
                "data_fraction": round(data_s / train_s, 4),
                "step_ms": round(train_s / result.steps * 1e3, 3),
                "eval_s": round(eval_s, 3), "wall_s": round(result.wall_s, 3),
                "diverged": result.diverged, "threads": torch.get_num_threads(),
                "device": device_name(args.device),
            }
            if args.json:
                print(json.dumps(row), flush=True)
                continue
            if not printed_header:
                print(f"{'model':<7}{'mode':<10}{'d':>6}{'epoch s':>9}{'step ms':>9}{'steps':>7}"
                      f"{'data share':>12}{'eval s':>8}")
                printed_header = True
            print(f"{model_name:<7}{mode:<10}{row['d'] or '-':>6}{row['epoch_s']:>9.2f}"
                  f"{row['step_ms']:>9.2f}{row['steps']:>7}{row['data_fraction']:>12.1%}"
                  f"{row['eval_s']:>8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
