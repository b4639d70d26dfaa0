"""Time one training step of a network in full space and inside a d-dimensional random subspace.

One step is what the trainer does per batch: zero the gradients, forward, cross-entropy, backward,
one SGD (momentum 0.9) step on the trainable tensors (every parameter in full space, z alone in the
subspace). Inputs are random 28x28 images, batch 128. For every projection the full-space step and
the subspace step are timed in the same process, in alternating blocks, so that load from other
processes hits both alike; after a warm-up, the medians of the per-step times are reported.

Prints one JSON object per line (with ``--json``, nothing else)::

    {"model", "D", "d", "projection", "full_ms", "subspace_ms", "ratio", "state_bytes", ...}

``state_bytes`` is the projection's stored random state (the dense matrix: D * d * 4 bytes).

    python benchmarks/step_time.py            # FC 784-200-200-10 and LeNet, d = 1000, every projection
    python benchmarks/step_time.py --quick    # FC only, fewer repeats
    python benchmarks/step_time.py --json --projections fastfood,sparse --repeats 400
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
from idbench.subspace import SubspaceModel

MODELS = {"fc": "fc[depth=2,width=200]", "lenet": "lenet"}
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


def time_block(step, steps: int) -> float:
    """Milliseconds per step over ``steps`` consecutive steps."""
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) * 1e3 / steps


def compare(full_step, sub_step, *, repeats: int, block: int, warmup: int) -> tuple[float, float]:
    """Median ms per step of each, measured in alternating blocks (order flipped every repeat)."""
    for _ in range(warmup):
        full_step()
        sub_step()
    full, sub = [], []
    for r in range(repeats):
        pair = ((full, full_step), (sub, sub_step))
        for times, step in pair if r % 2 == 0 else pair[::-1]:
            times.append(time_block(step, block))
    return statistics.median(full), statistics.median(sub)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only JSON lines")
    parser.add_argument("--quick", action="store_true", help="FC only, fewer repeats")
    parser.add_argument("--models", default=None, help="comma-separated: fc,lenet")
    parser.add_argument("--projections", default=None, help="comma-separated (default: all)")
    parser.add_argument("--d", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=None, help="timed blocks per measurement")
    parser.add_argument("--block", type=int, default=5, help="steps per timed block")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    default_models = ["fc"] if args.quick else list(MODELS)
    model_names = args.models.split(",") if args.models else default_models
    names = args.projections.split(",") if args.projections else projections.list()
    repeats = args.repeats or (20 if args.quick else 100)
    warmup = 5 if args.quick else 20

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, *INPUT_SHAPE, generator=gen)
    y = torch.randint(0, NUM_CLASSES, (args.batch,), generator=gen)
    printed_header = False
    for model_name in model_names:
        for name in names:
            torch.manual_seed(0)
            net, full_net = (
                models.create(MODELS[model_name], input_shape=INPUT_SHAPE, num_classes=NUM_CLASSES)
                for _ in range(2)
            )
            D = sum(p.numel() for p in net.parameters())
            sub = SubspaceModel(net, d=args.d, projection=name, seed=0)
            full_ms, sub_ms = compare(
                make_step(full_net, x, y), make_step(sub, x, y),
                repeats=repeats, block=args.block, warmup=warmup,
            )
            row = {
                "model": model_name, "D": D, "d": args.d, "projection": name,
                "full_ms": round(full_ms, 3), "subspace_ms": round(sub_ms, 3),
                "ratio": round(sub_ms / full_ms, 3),
                "state_bytes": sum(state_bytes(p) for p in sub.projections),
                "batch": args.batch, "threads": torch.get_num_threads(),
            }
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                if not printed_header:
                    print(f"{'model':<7}{'D':>9}{'d':>6}  {'projection':<11}{'full ms':>9}"
                          f"{'sub ms':>9}{'ratio':>7}{'state MB':>10}")
                    printed_header = True
                print(f"{model_name:<7}{D:>9}{args.d:>6}  {name:<11}{full_ms:>9.3f}{sub_ms:>9.3f}"
                      f"{sub_ms / full_ms:>7.2f}{row['state_bytes'] / 1e6:>10.2f}", flush=True)
            del sub, net, full_net
    return 0


if __name__ == "__main__":
    sys.exit(main())
