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
        # The permutation is stored as one flat index into all blocks (block k, position i ->
        # k * n + perm[k, i]): one index_select over the flattened blocks is cheaper than a batched
        # gather, and int32 (where it fits) is read faster than int64.
        index_dtype = torch.int32 if blocks * n < 2**31 else torch.int64
        offsets = torch.arange(blocks).unsqueeze(1) * n
        self.register_buffer("signs", signs)
        self.register_buffer("perm", (perm + offsets).flatten().to(index_dtype))
        inv_perm = torch.argsort(perm, dim=1) + offsets
        self.register_buffer("inv_perm", inv_perm.flatten().to(index_dtype))
        self.register_buffer("gauss", gauss.flatten().to(dtype))
        # S and the 1 / sqrt(n D) factor together, cut to the D rows that are kept
        self.register_buffer("scale", scale.flatten()[:D].to(dtype))

    def _unscaled(self, z: torch.Tensor) -> torch.Tensor:
        """H G Pi H B z_pad of every block, flattened: P z before S (all blocks * n rows)."""
        x = torch.nn.functional.pad(z, (0, self.n - self.d))
        x = fwht(torch.mul(self.signs, x.unsqueeze(-2)))  # H B z_pad, all blocks at once
        # Pi, then G in place: x is a fresh tensor, so no second (blocks, n) buffer is allocated
        x = x.flatten(-2).index_select(-1, self.perm).mul_(self.gauss)
        return fwht(x.unflatten(-1, (self.blocks, self.n))).flatten(-2)

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
        y = fwht(y.unflatten(-1, (self.blocks, self.n))).flatten(-2).mul_(self.gauss)
        y = fwht(y.index_select(-1, self.inv_perm).unflatten(-1, (self.blocks, self.n)))
        return y.mul_(self.signs).sum(-2)[..., : self.d]
