"""Time one training step of a network in full space and inside a d-dimensional random subspace.

One step is what the trainer does per batch: zero the gradients, forward, cross-entropy, backward,
one SGD (momentum 0.9) step on the trainable tensors (every parameter in full space, z alone in the
subspace). Inputs are random 28x28 images, batch 128. For every projection the full-space step and
the subspace step are timed in the same process, in alternating blocks, so that load from other
processes hits both alike; after a warm-up, the medians of the per-step times are reported.

Prints one JSON object per line (with ``--json``, nothing else)::

    {"model", "D", "d", "projection", "full_ms", "subspace_ms", "ratio", "state_bytes", ...}

``state_bytes`` is the projection's stored random state (the dense matrix: D * d * 4 bytes).

    python benchmarks/step_time.py            # FC 784-200-200-10 (d = 1000), LeNet (d = 290)
    python benchmarks/step_time.py --quick    # FC only, fewer repeats
    python benchmarks/step_time.py --json --projections fastfood,sparse --repeats 400
    python benchmarks/step_time.py --device cuda  # on a GPU: steps are timed to a synchronize

With ``--ngd`` it times instead a natural-gradient subspace step (``optimizer: ngd``: the SGD step
plus the per-example gradients of ``--ngd-samples`` examples, their batched adjoint and the Woodbury
solve, with the sketch refreshed every ``--ngd-refresh`` steps) against the SGD subspace step::

    python benchmarks/step_time.py --ngd --projections fastfood     # {"sgd_ms", "ngd_ms", "ratio"}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import idbench.models as models
import idbench.projections as projections
from idbench.methods.base import BatchLoss
from idbench.methods.ngd import NaturalGradient
from idbench.options import TrainOptions
from idbench.provenance import device_name
from idbench.subspace import SubspaceModel

MODELS = {"fc": "fc[depth=2,width=200]", "lenet": "lenet"}
DIMS = {"fc": 1000, "lenet": 290}  # default d of each model: Li et al.'s MNIST d_int90
INPUT_SHAPE = (1, 28, 28)
NUM_CLASSES = 10


def state_bytes(projection: torch.nn.Module) -> int:
    """Bytes of a projection's buffers (CSR matrices: values and both index arrays)."""
    total = 0
    for buffer in projection.buffers():
        if buffer.layout == torch.sparse_csr:
            parts = (buffer.values(), buffer.col_indices(), buffer.crow_indices())
        else:
            parts = (buffer,)
        total += sum(p.numel() * p.element_size() for p in parts)
    return total


def make_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    """One training step of ``model`` (SGD with momentum on its trainable tensors), as a closure."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def make_ngd_step(
    model: SubspaceModel, x: torch.Tensor, y: torch.Tensor, *, samples: int, refresh: int
):
    """One ngd training step of ``model`` (what fpd does with ``optimizer: ngd``), as a closure."""
    opt = torch.optim.SGD([model.z], lr=0.01, momentum=0.9)
    ngd = NaturalGradient(model, samples=samples, damping=0.1, refresh=refresh)
    batch = BatchLoss(x, y, F.cross_entropy)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        batch(model).backward()
        ngd.precondition(batch)
        opt.step()

    return step


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that a wall-clock interval covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_block(step, steps: int, device: torch.device) -> float:
    """Milliseconds per step over ``steps`` consecutive steps."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return (time.perf_counter() - start) * 1e3 / steps


def compare(
    steps: dict[str, object], *, repeats: int, block: int, warmup: int, device: torch.device
) -> dict[str, float]:
    """Median ms per step of every step, measured in alternating blocks (order reversed every
    repeat)."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {key: [] for key in steps}
    for r in range(repeats):
        for key in list(steps) if r % 2 == 0 else list(steps)[::-1]:
            times[key].append(time_block(steps[key], block, device))
    return {key: statistics.median(values) for key, values in times.items()}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only JSON lines")
    parser.add_argument("--quick", action="store_true", help="FC only, fewer repeats")
    parser.add_argument("--models", default=None, help="comma-separated: fc,lenet")
    parser.add_argument("--projections", default=None, help="comma-separated (default: all)")
    parser.add_argument("--d", type=int, default=None,
                        help="default: FC 1000, LeNet 290")
    parser.add_argument("--ngd", action="store_true", help="time ngd against sgd subspace steps")
    parser.add_argument("--ngd-samples", type=int, default=TrainOptions().ngd_samples,
                        help="examples in the Fisher sketch (default: the option's default)")
    parser.add_argument("--ngd-refresh", type=int, default=TrainOptions().ngd_refresh,
                        help="steps between sketch refreshes (default: the option's default)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=None, help="timed blocks per measurement")
    parser.add_argument("--block", type=int, default=5, help="steps per timed block")
    parser.add_argument("--threads", default="1,2",
                        help="comma-separated torch thread counts, timed side by side "
                        "(default: 1,2)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default: cpu)")
    parser.add_argument("--whole-run", action="store_true",
                        help="time whole 1-epoch FC runs, this checkout against --before")
    parser.add_argument("--before", default=None,
                        help="--whole-run: root of the checkout to compare with")
    parser.add_argument("--run-projections", default="fastfood,none",
                        help="--whole-run: projections of the runs ('none': full space)")
    args = parser.parse_args(argv)
    args.threads = [int(t) for t in args.threads.split(",")]
    if args.whole_run and not args.before:
        parser.error("--whole-run needs --before (the root of the checkout to compare with)")
    return args


def time_model(args: argparse.Namespace, model_name: str, name: str, device: torch.device,
               x: torch.Tensor, y: torch.Tensor) -> list[dict]:
    """One model and projection: a row per thread count (full/sub, or ngd's sgd/ngd)."""
    d = args.d or DIMS[model_name]
    torch.manual_seed(0)
    net, other_net = (
        models.create(MODELS[model_name], input_shape=INPUT_SHAPE, num_classes=NUM_CLASSES).to(device)
        for _ in range(2)
    )
    D = sum(p.numel() for p in net.parameters())
    sub = SubspaceModel(net, d=d, projection=name, seed=0)
    repeats = args.repeats or (20 if args.quick else 100)
    warmup, block = (5 if args.quick else 20), args.block
    if args.ngd:
        ngd_sub = SubspaceModel(other_net, d=d, projection=name, seed=0)
        labels = ("sgd_ms", "ngd_ms")
        makers = (lambda: make_step(sub, x, y),
                  lambda: make_ngd_step(ngd_sub, x, y, samples=args.ngd_samples,
                                        refresh=args.ngd_refresh))
        block = -(-block // args.ngd_refresh) * args.ngd_refresh  # whole refresh cycles per block
    else:
        labels = ("full_ms", "subspace_ms")
        makers = (lambda: make_step(other_net, x, y), lambda: make_step(sub, x, y))
    rows = []
    for t in args.threads:
        # one thread count at a time, its blocks alternating only with each other: changing
        # torch's thread count between blocks made the 2-thread blocks erratic on a loaded CPU
        torch.set_num_threads(t)
        ms = compare({label: make() for label, make in zip(labels, makers)},
                     repeats=repeats, block=block, warmup=warmup, device=device)
        first, second = ms[labels[0]], ms[labels[1]]
        row = {"model": model_name, "D": D, "d": d, "projection": name,
               labels[0]: round(first, 3), labels[1]: round(second, 3),
               "ratio": round(second / first, 3)}
        if args.ngd:
            row.update(ngd_samples=args.ngd_samples, ngd_refresh=args.ngd_refresh)
        else:
            row.update(state_bytes=sum(state_bytes(p) for p in sub.projections))
        row.update(batch=args.batch, threads=t, device=device_name(device))
        rows.append(row)
    return rows


def print_rows(rows: list[dict], header: bool) -> None:
    """One text line for a model and projection, the thread counts side by side."""
    first, second = [k for k in rows[0] if k.endswith("_ms")]
    if header:
        print(f"{'model':<7}{'D':>9}{'d':>6}  {'projection':<11}" + "".join(
            f"{first[:-3] + '@' + str(r['threads']):>14}{second[:-3] + '@' + str(r['threads']):>16}"
            f"{'ratio@' + str(r['threads']):>10}" for r in rows))
    r0 = rows[0]
    print(f"{r0['model']:<7}{r0['D']:>9}{r0['d']:>6}  {r0['projection']:<11}" + "".join(
        f"{r[first]:>14.3f}{r[second]:>16.3f}{r['ratio']:>10.3f}" for r in rows), flush=True)


WHOLE_RUN = """
import json, sys, torch
torch.set_num_threads({threads})
import idbench.data
from idbench.train import RunSpec, run
data = idbench.data.load("fashion-mnist")
projection = {projection!r}
spec = RunSpec(model="{model}", dataset="fashion-mnist", seed=0, lr=0.05, epochs=1,
               projection=projection, d=1000 if projection else None)
first = run(spec, data, max_retries=0)  # pays the process's one-time costs: not timed
result = run(spec, data, max_retries=0)
print(json.dumps({{"file": __import__("idbench").__file__, "wall_s": result.wall_s,
                  "val_score": result.val_score}}))
"""


def whole_runs(args: argparse.Namespace) -> list[dict]:
    """Whole 1-epoch runs of this checkout and of ``--before``, alternating, in subprocesses."""
    here = str(Path(__file__).resolve().parents[1])
    repeats = args.repeats or 3
    rows = []
    for projection in args.run_projections.split(","):
        projection = None if projection == "none" else projection
        for threads in args.threads:
            code = WHOLE_RUN.format(threads=threads, projection=projection, model=MODELS["fc"])
            results: dict[str, list[dict]] = {"before": [], "after": []}
            for r in range(repeats):
                order = (("before", args.before), ("after", here))
                for label, root in order if r % 2 == 0 else order[::-1]:
                    # cwd=root as well: ``python -c`` puts the working directory before PYTHONPATH
                    env = {**os.environ, "PYTHONPATH": root}
                    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root,
                                         check=True, capture_output=True, text=True).stdout
                    result = json.loads(out.splitlines()[-1])
                    if not Path(result["file"]).resolve().is_relative_to(Path(root).resolve()):
                        raise SystemExit(f"{label}: imported {result['file']}, not {root}")
                    results[label].append(result)
            before, after = (statistics.median(x["wall_s"] for x in results[k])
                             for k in ("before", "after"))
            rows.append({"whole_run": f"fc {projection or 'full space'}", "threads": threads,
                         "before_s": round(before, 2), "after_s": round(after, 2),
                         "ratio": round(after / before, 3),
                         "same_val_score": len({x["val_score"] for k in results
                                                for x in results[k]}) == 1})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.whole_run:
        whole_runs(args)
        return 0
    default_models = ["fc"] if args.quick else list(MODELS)
    model_names = args.models.split(",") if args.models else default_models
    names = args.projections.split(",") if args.projections else projections.list()
    gen = torch.Generator().manual_seed(0)
    device = torch.device(args.device)
    x = torch.randn(args.batch, *INPUT_SHAPE, generator=gen).to(device)
    y = torch.randint(0, NUM_CLASSES, (args.batch,), generator=gen).to(device)
    header = True
    for model_name in model_names:
        for name in names:
            rows = time_model(args, model_name, name, device, x, y)
            if args.json:
                for row in rows:
                    print(json.dumps(row), flush=True)
            else:
                print_rows(rows, header)
                header = False
    return 0


if __name__ == "__main__":
    sys.exit(main())
