"""Fastfood projection (Le, Sarlos and Smola 2013), as used for intrinsic dimension by Li et al.

One block is the n x n matrix (n = 2^ceil(log2 d))

    V = S H G Pi H B

with B random signs, H the Walsh-Hadamard transform, Pi a random permutation, G a Gaussian diagonal
and S a diagonal that gives the rows chi-distributed norms, so V behaves like an n x n Gaussian
matrix. ceil(D / n) independent blocks are stacked to cover D rows (the last one cut off), z is
zero-padded from d to n, and the whole map is scaled by 1 / sqrt(n * D) so each column has unit
norm in expectation (E ||P e_j||^2 = 1, E ||P z||^2 = ||z||^2).

State: 4 vectors of n per block plus the permutation's inverse, i.e. O(D); the product costs two
fast Hadamard transforms of all blocks, O(D log d).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from idbench.projections.base import Projection
from idbench.projections.hadamard import fwht, next_power_of_two
from idbench.seeding import cpu_generator, derive_seed


class FastfoodProjection(Projection):
    name = "fastfood"

    def __init__(self, *, D: int, d: int, seed: int, dtype: torch.dtype = torch.float32) -> None:
        super().__init__(D=D, d=d, seed=seed, dtype=dtype)
        n = next_power_of_two(d)
        blocks = -(-D // n)
        gen = cpu_generator(seed, "fastfood", D, d)
        signs = torch.randint(0, 2, (blocks, n), generator=gen).to(dtype) * 2 - 1
        perm = torch.argsort(torch.rand(blocks, n, generator=gen), dim=1)
        gauss = torch.randn(blocks, n, generator=gen, dtype=torch.float64)
        # chi(n)-distributed row norms, divided by ||G|| of the block (Le et al., eq. 7)
        rng = np.random.default_rng(derive_seed(seed, "fastfood-chi", D, d))
        chi = torch.from_numpy(rng.chisquare(n, size=(blocks, n))).sqrt()
        scale = chi / gauss.norm(dim=1, keepdim=True) / math.sqrt(n * D)
        self.n, self.blocks = n, blocks
        self.register_buffer("signs", signs)
        self.register_buffer("perm", perm)
        self.register_buffer("inv_perm", torch.argsort(perm, dim=1))
        self.register_buffer("gauss", gauss.to(dtype))
        self.register_buffer("scale", scale.to(dtype))

    def _matvec(self, z: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.pad(z, (0, self.n - self.d)).unsqueeze(-2) * self.signs
        x = fwht(x)
        x = torch.gather(x, -1, self.perm.expand_as(x)) * self.gauss
        x = fwht(x) * self.scale
        return x.flatten(-2)[..., : self.D]

    def _rmatvec(self, g: torch.Tensor) -> torch.Tensor:
        y = torch.nn.functional.pad(g, (0, self.blocks * self.n - self.D))
        y = fwht(y.unflatten(-1, (self.blocks, self.n)) * self.scale) * self.gauss
        y = fwht(torch.gather(y, -1, self.inv_perm.expand_as(y))) * self.signs
        return y.sum(-2)[..., : self.d]
