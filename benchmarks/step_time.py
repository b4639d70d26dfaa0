"""Time one training step of a network in full space and inside a d-dimensional random subspace.

One step is what the trainer does per batch: zero the gradients, forward, cross-entropy, backward,
one SGD (momentum 0.9) step on the trainable tensors (every parameter in full space, z alone in the
subspace). Inputs are random 28x28 images, batch 128. For every projection the full-space step and
the subspace step are timed in the same process, in alternating blocks, so that load from other
processes hits both alike; after a warm-up, the medians of the per-step times are reported.

Prints one JSON object per line (with ``--json``, nothing else)::

    {"model", "D", "d", "projection", "full_ms", "subspace_ms", "ratio", "state_bytes", ...}

``state_bytes`` is the projection's stored random state (the dense matrix: D * d * 4 bytes).

    python benchmarks/step_time.py            # FC 784-200-200-10 and LeNet, d = 1000, all kinds
    python benchmarks/step_time.py --quick    # FC only, fewer repeats
    python benchmarks/step_time.py --json --projections fastfood,sparse --repeats 400
    python benchmarks/step_time.py --device cuda  # on a GPU: steps are timed to a synchronize

With ``--ngd`` it times instead a natural-gradient subspace step (``optimizer: ngd``: the SGD step
plus the per-example gradients of ``--ngd-samples`` examples, their batched adjoint and the Woodbury
solve, with the sketch refreshed every ``--ngd-refresh`` steps) against the SGD subspace step, at
d = 1000 for FC and d = 290 for LeNet (Li et al.'s MNIST d_int90 of each) unless ``--d`` says::

    python benchmarks/step_time.py --ngd --projections fastfood     # {"sgd_ms", "ngd_ms", "ratio"}
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

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
NGD_D = {"fc": 1000, "lenet": 290}  # d of the ngd comparison (Li et al.'s MNIST d_int90)
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
    full_step, sub_step, *, repeats: int, block: int, warmup: int, device: torch.device
) -> tuple[float, float]:
    """Median ms per step of each, measured in alternating blocks (order flipped every repeat)."""
    for _ in range(warmup):
        full_step()
        sub_step()
    full, sub = [], []
    for r in range(repeats):
        pair = ((full, full_step), (sub, sub_step))
        for times, step in pair if r % 2 == 0 else pair[::-1]:
            times.append(time_block(step, block, device))
    return statistics.median(full), statistics.median(sub)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only JSON lines")
    parser.add_argument("--quick", action="store_true", help="FC only, fewer repeats")
    parser.add_argument("--models", default=None, help="comma-separated: fc,lenet")
    parser.add_argument("--projections", default=None, help="comma-separated (default: all)")
    parser.add_argument("--d", type=int, default=None,
                        help="default 1000 (--ngd: FC 1000, LeNet 290)")
    parser.add_argument("--ngd", action="store_true", help="time ngd against sgd subspace steps")
    parser.add_argument("--ngd-samples", type=int, default=TrainOptions().ngd_samples,
                        help="examples in the Fisher sketch (default: the option's default)")
    parser.add_argument("--ngd-refresh", type=int, default=TrainOptions().ngd_refresh,
                        help="steps between sketch refreshes (default: the option's default)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=None, help="timed blocks per measurement")
    parser.add_argument("--block", type=int, default=5, help="steps per timed block")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default: cpu)")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    default_models = ["fc"] if args.quick else list(MODELS)
    model_names = args.models.split(",") if args.models else default_models
    names = args.projections.split(",") if args.projections else projections.list()
    repeats = args.repeats or (20 if args.quick else 100)
    warmup = 5 if args.quick else 20

    gen = torch.Generator().manual_seed(0)
    device = torch.device(args.device)
    x = torch.randn(args.batch, *INPUT_SHAPE, generator=gen).to(device)
    y = torch.randint(0, NUM_CLASSES, (args.batch,), generator=gen).to(device)
    printed_header = False
    for model_name in model_names:
        d = args.d or (NGD_D[model_name] if args.ngd else 1000)
        for name in names:
            torch.manual_seed(0)
            net, other_net = (
                models.create(MODELS[model_name], input_shape=INPUT_SHAPE,
                              num_classes=NUM_CLASSES).to(device)
                for _ in range(2)
            )
            D = sum(p.numel() for p in net.parameters())
            sub = SubspaceModel(net, d=d, projection=name, seed=0)
            row = {"model": model_name, "D": D, "d": d, "projection": name}
            if args.ngd:
                ngd_sub = SubspaceModel(other_net, d=d, projection=name, seed=0)
                refresh = args.ngd_refresh  # whole refresh cycles per block: each pays its share
                sgd_ms, ngd_ms = compare(
                    make_step(sub, x, y),
                    make_ngd_step(ngd_sub, x, y, samples=args.ngd_samples, refresh=refresh),
                    repeats=repeats, block=-(-args.block // refresh) * refresh, warmup=warmup,
                    device=device,
                )
                row.update(sgd_ms=round(sgd_ms, 3), ngd_ms=round(ngd_ms, 3),
                           ratio=round(ngd_ms / sgd_ms, 3), ngd_samples=args.ngd_samples,
                           ngd_refresh=args.ngd_refresh)
                columns = (("sgd ms", sgd_ms), ("ngd ms", ngd_ms), ("ratio", ngd_ms / sgd_ms))
            else:
                full_ms, sub_ms = compare(
                    make_step(other_net, x, y), make_step(sub, x, y),
                    repeats=repeats, block=args.block, warmup=warmup, device=device,
                )
                row.update(full_ms=round(full_ms, 3), subspace_ms=round(sub_ms, 3),
                           ratio=round(sub_ms / full_ms, 3),
                           state_bytes=sum(state_bytes(p) for p in sub.projections))
                columns = (("full ms", full_ms), ("sub ms", sub_ms), ("ratio", sub_ms / full_ms),
                           ("state MB", row["state_bytes"] / 1e6))
            row.update(batch=args.batch, threads=torch.get_num_threads(),
                       device=device_name(device))
            if args.json:
                print(json.dumps(row), flush=True)
                continue
            if not printed_header:
                print(f"{'model':<7}{'D':>9}{'d':>6}  {'projection':<11}"
                      + "".join(f"{label:>10}" for label, _ in columns))
                printed_header = True
            print(f"{model_name:<7}{D:>9}{d:>6}  {name:<11}"
                  + "".join(f"{value:>10.3f}" for _, value in columns), flush=True)
            del sub, net, other_net
    return 0


if __name__ == "__main__":
    sys.exit(main())
