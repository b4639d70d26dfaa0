"""Seconds per training run of each kind that suites/fashion-mnist-transfer.yaml trains, for its
compute plan: FC 784-200-200-10 and LeNet, on the fine-tuning tasks (fashion-mnist-split[part=b],
1 epoch; digits[size=28], 20 epochs), full space (baselines, tuning trials at the baseline's
rate, burn-ins) and in a d = 300 Fastfood subspace without and with SAID (probes and their
tuning trials), each one run of the real trainer (``idbench.train.run``) at one torch thread (as
a suite's workers train). A pretraining (5 epochs full space on the source task) costs 5x the
1-epoch full-space run of its model on data of the same size (part a: as part b; fashion-mnist:
twice as many examples).

Prints one JSON object per line: {"model", "dataset", "mode", "steps", "wall_s", "threads"}.
``--models`` times other models (any model spec, e.g. a small timm one) in their place, and
``--datasets`` picks the tasks.

    python benchmarks/transfer_run_time.py
    python benchmarks/transfer_run_time.py --models timm:test_resnet --datasets 'fashion-mnist-split[part=b]'
"""

from __future__ import annotations

import argparse
import json

import torch

import idbench.data
from idbench.train import RunSpec, run

MODELS = {"fc": "fc[depth=2,width=200]", "lenet": "lenet"}
TASKS = {"fashion-mnist-split[part=b]": 1.0, "digits[size=28]": 20.0}  # dataset: epochs per run
MODES = {"full": {}, "fastfood d=300": {"projection": "fastfood", "d": 300},
         "fastfood d=300 said": {"projection": "fastfood", "d": 300, "said": True}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(MODELS.values()))
    parser.add_argument("--datasets", nargs="*", default=list(TASKS), choices=list(TASKS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = {model: name for name, model in MODELS.items()}
    for dataset in args.datasets:
        data, epochs = idbench.data.load(dataset), TASKS[dataset]
        for model in args.models:
            name = names.get(model, model)
            for mode, subspace in MODES.items():
                spec = RunSpec(model=model, dataset=dataset, seed=0, epochs=epochs,
                               lr=0.05 if not subspace else 0.5, **subspace)
                result = run(spec, data, max_retries=0)
                print(json.dumps({"model": name, "dataset": dataset, "mode": mode,
                                  "steps": result.steps, "wall_s": round(result.wall_s, 2),
                                  "threads": torch.get_num_threads()}), flush=True)


if __name__ == "__main__":
    main()
