"""Step and evaluation time of LeNet and the CNN with idbench's compiled 2 x 2 max-pooling against
torch's ``F.max_pool2d`` (the two give the same bits), in one process, alternating blocks.

    python benchmarks/pool_time.py [--repeats 15] [--threads 1]

prints one JSON object per line: {"model", "batch", "mode", "torch_ms", "kernel_ms", "ratio"}
(mode: full-space SGD step, Fastfood subspace step at d = 290, or no-grad evaluation).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

import idbench.models as models
import idbench.models.lenet as lenet
import idbench.models.pooling as pooling
from idbench.subspace import SubspaceModel

KERNEL = pooling.max_pool2x2


def use_kernel(on: bool) -> None:
    """LeNet calls max_pool2x2 by name, the CNN through MaxPool2x2: swap both."""
    swap = KERNEL if on else (lambda x: F.max_pool2d(x, 2))
    lenet.max_pool2x2 = pooling.max_pool2x2 = swap


def time_mode(model_name: str, batch: int, mode: str, repeats: int) -> dict:
    net = models.create(model_name, input_shape=(1, 28, 28), num_classes=10)
    model = SubspaceModel(net, d=290, projection="fastfood", seed=0) if mode == "subspace" else net
    params = [model.z] if mode == "subspace" else list(net.parameters())
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))

    def step() -> None:
        if mode == "eval":
            with torch.no_grad():
                model(x)
            return
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    for on in (False, True, False, True):  # warm-up
        use_kernel(on)
        step()
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeats):
        for on in (False, True):
            use_kernel(on)
            start = time.perf_counter()
            for _ in range(3):
                step()
            times[on].append((time.perf_counter() - start) / 3 * 1e3)
    use_kernel(True)
    torch_ms, kernel_ms = (sorted(v)[len(v) // 2] for v in (times[False], times[True]))
    return {"model": model_name, "batch": batch, "mode": mode, "torch_ms": round(torch_ms, 2),
            "kernel_ms": round(kernel_ms, 2), "ratio": round(kernel_ms / torch_ms, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for model_name, batch, mode in (("lenet", 128, "full"), ("lenet", 128, "subspace"),
                                    ("cnn", 32, "full"), ("lenet", 1000, "eval"),
                                    ("cnn", 1000, "eval")):
        print(json.dumps(time_mode(model_name, batch, mode, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
