"""Seconds per epoch of every cell-method combination of a fixed-d study, on this machine.

Each (model, method, basis) trains a few hundred steps with the real trainer
(``idbench.train.train``) at the study's protocol (batch size, plain SGD, constant rate, the
dataset's augmentation), timed after a warm-up; an epoch is the measured step time times the
steps of one epoch, plus one evaluation pass over the validation split (the trainer evaluates once
per epoch); a run adds one pass over the test split at its end (``eval_s`` again). Defaults: the Fashion-MNIST cells of Gressmann et al. 2020 (FC-128 and the 3-conv
``cnn`` at d = 250, batch 32, augmented as the study did, 10,000 images held out), one thread,
for the compute plan of ``suites/gressmann2020-fmnist.yaml``.

Prints one JSON object per line::

    {"model", "method", "basis", "step_ms", "eval_s", "epoch_s", "steps_per_epoch", "threads"}

    python benchmarks/gressmann_epoch_time.py [--steps 200] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

import idbench.data
from idbench.train import RunSpec, build_model, evaluate, train

MODELS = ("fc[depth=1,width=128]", "cnn")
DATASET = "fashion-mnist[augment=true,padding=3,brightness=0.5]"
# (method, basis): basis None is the full-space SGD baseline
COMBOS = (("fpd", None), ("fpd", "dense"), ("rbd", "dense"), ("fpd", "fastfood"),
          ("rbd", "fastfood"))


def seconds_per_step(spec: RunSpec, data: idbench.data.Dataset, warmup: int) -> float:
    """Seconds per training step of ``spec``: the wall time of a run of ``2 * spec.steps`` steps
    less that of a run of ``spec.steps`` (same seed, one evaluation each at its end), divided by
    ``spec.steps``, after ``warmup`` untimed steps. The difference cancels everything a run pays
    once (building the model, the validation pass at the end and the test pass of its result),
    which would otherwise be counted as ``(fixed cost) / steps`` in every step."""
    train(build_model(spec, data), data, spec.replace(steps=warmup, eval_every=warmup))
    walls = []
    for steps in (spec.steps, 2 * spec.steps):
        start = time.perf_counter()
        train(build_model(spec, data), data, spec.replace(steps=steps, eval_every=steps))
        walls.append(time.perf_counter() - start)
    return (walls[1] - walls[0]) / spec.steps


def eval_seconds(model: torch.nn.Module, data: idbench.data.Dataset) -> float:
    """Seconds of one evaluation pass over the validation split."""
    start = time.perf_counter()
    evaluate(model, data, "val")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="timed steps per combination")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--d", type=int, default=250)
    parser.add_argument("--val-fraction", type=float, default=1 / 6)
    parser.add_argument("--dataset", default=DATASET)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--only", default="", help="comma-separated method:basis to keep")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = idbench.data.load(args.dataset, download=False, val_fraction=args.val_fraction)
    steps_per_epoch = math.ceil(len(data.x_train) / args.batch_size)
    keep = set(filter(None, args.only.split(",")))
    for model in args.models:
        for method, basis in COMBOS:
            name = f"{method}:{basis or 'full'}"
            if keep and name not in keep:
                continue
            spec = RunSpec(model=model, dataset=args.dataset, seed=0, lr=0.01, momentum=0.0,
                           method=method, projection=basis, d=basis and args.d,
                           batch_size=args.batch_size, schedule="constant", warmup=0.0,
                           steps=args.steps, eval_every=args.steps,
                           val_fraction=args.val_fraction)
            step_s = seconds_per_step(spec, data, args.warmup)
            eval_s = eval_seconds(build_model(spec, data), data)
            print(json.dumps({
                "model": model, "method": "sgd" if basis is None else method,
                "basis": basis or "full", "step_ms": round(step_s * 1e3, 2),
                "eval_s": round(eval_s, 2), "epoch_s": round(step_s * steps_per_epoch + eval_s, 1),
                "steps_per_epoch": steps_per_epoch, "threads": torch.get_num_threads(),
            }), flush=True)


if __name__ == "__main__":
    main()
