"""Validation score of one training run per learning rate, for subspace methods at a fixed d.

Where a tuning window should lie depends on the protocol (batch size, schedule, the basis), and a
window far from the stable rates makes every trial diverge. This trains one run per (method,
projection, rate) with the real trainer at the protocol of ``suites/gressmann2020-fmnist.yaml``
(FC-128, Fashion-MNIST augmented as the paper did, batch 32, plain SGD, constant rate, 10,000
images held out), with no retries, and prints where each ended::

    {"dataset", "init", "inputs", "method", "projection", "lr", "val_score", "val_loss",
     "diverged", "steps"}

    python benchmarks/subspace_rate_scan.py [--steps 1563] [--rates 0.25,1,4,16,64]

``--init keras`` re-initialises every linear and convolutional layer as Keras does (Glorot-uniform
weights, zero biases), the initialisation of the random-bases study's TensorFlow code, so that a
difference from its published numbers can be traced to theta0 or ruled out. ``--pixels`` trains
on pixels in [0, 1] as that code does, instead of idbench's images standardised with the training
split's mean and standard deviation (the same images: padding stays black and a brightness offset
stays in pixel units).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import torch
from torch import nn

import idbench.data
import idbench.train
from idbench.train import RunSpec, run

DATASET = "fashion-mnist[augment=true,padding=3,brightness=0.5]"


def keras_init(net: nn.Module) -> nn.Module:
    """Glorot-uniform weights and zero biases, in place (tf.keras's Dense and Conv2D defaults)."""
    for module in net.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    return net


def in_pixels(data: idbench.data.Dataset) -> idbench.data.Dataset:
    """``data`` with its images back in pixel units ([0, 1]): normalisation undone, mean 0, sd 1."""
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    pixels = {k: getattr(data, k) * std + mean for k in ("x_train", "x_val", "x_test")}
    ones = tuple(1.0 for _ in data.std)
    return dataclasses.replace(data, **pixels, mean=tuple(0.0 for _ in data.mean), std=ones)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="fc[depth=1,width=128]")
    parser.add_argument("--dataset", default=DATASET)
    parser.add_argument("--combos", default="rbd:fastfood,fpd:fastfood",
                        help="method:projection, or sgd:none for full-space training")
    parser.add_argument("--rates", default="0.25,1,4,16,64")
    parser.add_argument("--d", type=int, default=250)
    parser.add_argument("--steps", type=int, default=1563, help="default: one epoch")
    parser.add_argument("--seed", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--init", choices=["torch", "keras"], default="torch")
    parser.add_argument("--pixels", action="store_true", help="train on pixels in [0, 1]")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.init == "keras":
        create = idbench.train.models.create
        idbench.train.models.create = lambda *a, **k: keras_init(create(*a, **k))
    data = idbench.data.load(args.dataset, download=False, val_fraction=0.16667)
    if args.pixels:
        data = in_pixels(data)
    inputs = "pixels" if args.pixels else "standardised"
    for combo in args.combos.split(","):
        method, projection = combo.split(":")
        full = projection == "none"
        for lr in map(float, args.rates.split(",")):
            spec = RunSpec(model=args.model, dataset=args.dataset, seed=args.seed, lr=lr,
                           momentum=0.0, method="fpd" if full else method,
                           projection=None if full else projection, d=None if full else args.d,
                           batch_size=32, schedule="constant", warmup=0.0, steps=args.steps,
                           val_fraction=0.16667)
            result = run(spec, data, max_retries=0)
            print(json.dumps({"dataset": args.dataset, "init": args.init, "inputs": inputs,
                              "method": method, "projection": projection, "lr": lr,
                              "val_score": round(result.val_score, 4),
                              "val_loss": round(result.val_loss, 4), "diverged": result.diverged,
                              "steps": result.steps}), flush=True)


if __name__ == "__main__":
    main()
