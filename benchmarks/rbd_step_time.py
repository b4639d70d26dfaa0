"""Step time of random bases descent against fixed projection descent and full-space SGD.

FC-128 (``fc[depth=1,width=128]``, D = 101,770) on Fashion-MNIST at d = 250, batch 128, on the CPU.
Every configuration is built once and stepped side by side in one process, round-robin over the
same batches, so background load hits them alike; warm-up steps are excluded and the median over
the timed steps is reported. rbd draws every step's basis afresh: a dense (Gaussian, uniform or
Bernoulli) basis row by row from its seed, once per step where its rows fit in
``dense.KEEP_BYTES`` (else twice, in O(d) memory; see ``idbench.projections.dense``), a structured
one (fastfood, fastjl) built afresh in O(D).

    python benchmarks/rbd_step_time.py [--quick] [--threads 1] [--d 250]

prints one JSON object per line: {"method", "basis", "D", "d", "step_ms", "ratio_to_sgd"}.

With ``--basis-costs`` it times instead what the shortcuts in building a step's basis save, each
against the step without it, alternating steps of one rule in one process: on FC-128 at d = 250,
a dense basis drawn and multiplied row by row by the compiled kernel against chunks drawn and
multiplied by torch (the path of CUDA and of machines without a compiler), and on both paths a
basis kept from the adjoint for the update against one drawn twice (``dense.KEEP_BYTES = 0``);
on FC 784-200-200-10 at d = 300, Fastfood's permutations by the compiled radix sort against
torch's argsort, and its chi-distributed entries by the compiled rejection against numpy's::

    python benchmarks/rbd_step_time.py --basis-costs --threads 1
    # {"saving", "model", "basis", "with_ms", "without_ms"}
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import idbench.data
import idbench.methods as methods
import idbench.projections.dense as dense
import idbench.projections.fastfood as fastfood
import idbench.projections.random_matrix as random_matrix
from idbench.train import RunSpec, build_model

MODEL = "fc[depth=1,width=128]"
QUICK = [("fpd", "dense"), ("fpd", "fastfood"), ("rbd", "dense"), ("rbd", "fastfood"),
         ("rbd", "fastjl")]
FULL = QUICK + [("rbd", "dense[regenerate=false]"), ("rbd[distribution=uniform]", "dense"),
                ("rbd[distribution=bernoulli]", "dense"), ("rbd", "sparse")]


def basis_costs(data, steps: int) -> None:
    """Each shortcut on and off on alternate steps of one rbd rule; medians after a warm-up."""
    radix, argsort = fastfood.random_permutations, lambda u: torch.argsort(u, dim=1, stable=True)
    keep, fused = dense.KEEP_BYTES, dense.DenseProjection._compiled
    chi_kernel = random_matrix._gamma_compiled

    def chunked(on: bool) -> None:
        setattr(dense.DenseProjection, "_compiled", fused if on else lambda self, x: None)

    def kept(on: bool) -> None:
        chunked(False)
        setattr(dense, "KEEP_BYTES", keep if on else 0)

    def kept_by_kernel(on: bool) -> None:
        setattr(dense, "KEEP_BYTES", keep if on else 0)

    savings = [
        ("dense basis drawn row by row in the kernel's products", MODEL, "dense", 250, chunked),
        ("kept dense basis (kernel)", MODEL, "dense", 250, kept_by_kernel),
        ("kept dense basis (chunked path)", MODEL, "dense", 250, kept),
        ("radix-sorted permutations", "fc[depth=2,width=200]", "fastfood", 300,
         lambda on: setattr(fastfood, "random_permutations", radix if on else argsort)),
        ("chi entries by the kernel", "fc[depth=2,width=200]", "fastfood", 300,
         lambda on: setattr(random_matrix, "_gamma_compiled",
                            chi_kernel if on else lambda *args: None)),
    ]
    gen = torch.Generator().manual_seed(0)
    for saving, model, basis, d, switch in savings:
        spec = RunSpec(model=model, dataset="fashion-mnist", seed=0, lr=0.01, momentum=0.0,
                       method="rbd", projection=basis, d=d, schedule="constant")
        rule = methods.create("rbd", model=build_model(spec, data), run_spec=spec)
        times: dict[bool, list[float]] = {True: [], False: []}
        for step in range(2 * steps + 4):
            idx = torch.randint(len(data.x_train), (128,), generator=gen)
            xb, yb = data.x_train[idx], data.y_train[idx]
            on = step % 2 == 0
            switch(on)
            start = time.perf_counter()
            rule.step(lambda m: data.loss(m(xb), yb), 0.01)
            if step >= 4:
                times[on].append(time.perf_counter() - start)
        switch(True)
        chunked(True)
        kept_by_kernel(True)
        print(json.dumps({
            "saving": saving, "model": model, "basis": basis,
            "with_ms": round(statistics.median(times[True]) * 1e3, 1),
            "without_ms": round(statistics.median(times[False]) * 1e3, 1),
        }), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer configurations and steps")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--d", type=int, default=250)
    parser.add_argument("--basis-costs", action="store_true",
                        help="time what the basis-building shortcuts save (see above)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warmup, timed = (1, 5) if args.quick else (2, 15)

    data = idbench.data.load("fashion-mnist", download=False)
    if args.basis_costs:
        basis_costs(data, steps=10 if args.quick else 30)
        return
    configs = [("sgd", None)] + (QUICK if args.quick else FULL)
    rules, models = [], []
    for method, basis in configs:
        spec = RunSpec(model=MODEL, dataset="fashion-mnist", seed=0, lr=0.01, momentum=0.0,
                       method="fpd" if method == "sgd" else method, projection=basis,
                       d=None if basis is None else args.d, schedule="constant")
        model = build_model(spec, data)
        models.append(model)
        rules.append(methods.create(spec.method, model=model, run_spec=spec))

    gen = torch.Generator().manual_seed(0)
    times: list[list[float]] = [[] for _ in configs]
    for step in range(warmup + timed):
        idx = torch.randint(len(data.x_train), (128,), generator=gen)
        xb, yb = data.x_train[idx], data.y_train[idx]
        for i, rule in enumerate(rules):
            start = time.perf_counter()
            rule.step(lambda m: data.loss(m(xb), yb), 0.01)
            if step >= warmup:
                times[i].append(time.perf_counter() - start)

    D = sum(p.numel() for p in models[0].parameters())
    sgd_ms = statistics.median(times[0]) * 1e3
    for (method, basis), samples in zip(configs, times):
        step_ms = statistics.median(samples) * 1e3
        print(json.dumps({
            "method": method, "basis": basis or "full", "D": D,
            "d": None if basis is None else args.d, "step_ms": round(step_ms, 2),
            "ratio_to_sgd": round(step_ms / sgd_ms, 1),
        }), flush=True)


if __name__ == "__main__":
    main()
