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

from idbench.projections.base import PROJECTIONS, Projection
from idbench.projections.hadamard import fwht, next_power_of_two
from idbench.seeding import cpu_generator, derive_seed


@PROJECTIONS.register("fastfood")
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
        # int8: exact for +-1 and a quarter of the memory traffic of float signs
        self.register_buffer("signs", signs.to(torch.int8))
        self.register_buffer("perm", perm)
        self.register_buffer("inv_perm", torch.argsort(perm, dim=1))
        self.register_buffer("gauss", gauss.to(dtype))
        # S and the 1 / sqrt(n D) factor together, cut to the D rows that are kept
        self.register_buffer("scale", scale.flatten()[:D].to(dtype))

    def _unscaled(self, z: torch.Tensor) -> torch.Tensor:
        """H G Pi H B z_pad of every block, flattened: P z before S (all blocks * n rows)."""
        x = z.new_zeros(*z.shape[:-1], self.n)  # z_pad (cheaper than F.pad)
        x[..., : self.d] = z
        x = fwht(torch.mul(self.signs, x.unsqueeze(-2)))  # H B z_pad, all blocks at once
        # Pi, then G in place (x is a fresh tensor). A batched gather, not one flat index_select:
        # gather runs on all threads, index_select on one.
        x = torch.gather(x, -1, self.perm.expand_as(x)).mul_(self.gauss)
        return fwht(x).flatten(-2)

    def _matvec(self, z: torch.Tensor) -> torch.Tensor:
        return self._unscaled(z)[..., : self.D].mul_(self.scale)

    def _matvec_add(self, base: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        # base + S x in one pass (used by SubspaceModel for theta0 + P z)
        return torch.addcmul(base, self._unscaled(z)[..., : self.D], self.scale)

    def _rmatvec(self, g: torch.Tensor) -> torch.Tensor:
        # S g written straight into a zero-tailed buffer of all blocks (no separate pad copy)
        y = g.new_empty(*g.shape[:-1], self.blocks * self.n)
        y[..., self.D :] = 0
        torch.mul(g, self.scale, out=y[..., : self.D])
        y = fwht(y.unflatten(-1, (self.blocks, self.n))).mul_(self.gauss)
        y = fwht(torch.gather(y, -1, self.inv_perm.expand_as(y)))
        return y.mul_(self.signs).sum(-2)[..., : self.d]
