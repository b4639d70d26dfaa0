"""Does Lotfi et al.'s sum variant (kron_sparse: a Kronecker plus a sparse projection) help? Evidence.

On the toy-sums problems of the known-answer family (idbench.known_answers) the loss sees only the
group sums S theta, so at d = answer the subspace problem is the square system S P, and how hard
it is for an optimiser is the condition number of S P (LBFGS in 20 x 20 iterations missed
toy(60, 5) under kron on one basis at condition ~940; the known-answer protocol's 100 x 20 solve
it). This prints, per problem and projection,
the median, 90th and 99th percentile of cond(S P) over bases (seeds), for kron, its sum variant
kron_sparse = (kron + sparse) / sqrt(2), and dense / Fastfood for reference::

    python benchmarks/kron_conditioning.py            # JSON lines, 200 bases per cell
    python benchmarks/kron_conditioning.py --bases 50
"""

from __future__ import annotations

import argparse
import json

import torch

import idbench.projections as projections
from idbench.known_answers import FAMILY


def basis(name: str, D: int, d: int, seed: int) -> torch.Tensor:
    """The D x d matrix of one projection (P applied to I_d)."""
    eye = torch.eye(d, dtype=torch.float64)
    return projections.create(name, D=D, d=d, seed=seed, dtype=torch.float64)(eye).T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", type=int, default=200, help="seeds per problem and projection")
    args = parser.parse_args()
    for problem in FAMILY:
        if "toy-sums" not in problem.dataset:
            continue
        groups, size = problem.answer, problem.D // problem.answer
        sums = torch.kron(torch.eye(groups), torch.ones(1, size)).double()
        for name in ("kron", "kron_sparse", "dense", "fastfood"):
            conds = sorted(float(torch.linalg.cond(sums @ basis(name, problem.D, groups, seed)))
                           for seed in range(args.bases))
            at = lambda q: round(conds[min(len(conds) - 1, int(q * len(conds)))], 1)  # noqa: E731
            print(json.dumps({"problem": problem.name, "answer": groups, "projection": name,
                              "bases": len(conds), "median": at(0.5), "p90": at(0.9),
                              "p99": at(0.99), "above_500": sum(c > 500 for c in conds)}))


if __name__ == "__main__":
    main()
