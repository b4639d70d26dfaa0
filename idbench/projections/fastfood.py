"""Fastfood projection (Le, Sarlos and Smola 2013), as used for intrinsic dimension by Li et al.

One block is the n x n matrix (n = 2^ceil(log2 d))

    V = S H G Pi H B

with B random signs, H the Walsh-Hadamard transform, Pi a random permutation, G a Gaussian diagonal
and S a diagonal that gives the rows chi-distributed norms, so V behaves like an n x n Gaussian
matrix. ceil(D / n) independent blocks are stacked to cover D rows (the last one cut off), z is
zero-padded from d to n, and the whole map is scaled by 1 / sqrt(n * D) so each column has unit
norm in expectation (E ||P e_j||^2 = 1, E ||P z||^2 = ||z||^2).

B, Pi, G and the chi-distributed norms of S come from counter-based streams
(:mod:`idbench.projections.random_matrix`, keyed by the seed, D and d): B by Bernoulli signs, Pi
as the stable argsort of uniform keys per block, G Gaussian, S by Marsaglia-Tsang's rejection.
Drawing them is cheap (random bases descent builds a new projection every step) and gives the
same bits with and without the compiled kernels.

State: 4 vectors of n per block plus the permutation's inverse, i.e. O(D); the product costs two
fast Hadamard transforms of all blocks, O(D log d). On the CPU, P z and P^T g each run as one
compiled pass per block (``kernels``: signs, butterfly, permutation, G, butterfly and S on a
block held in L1, written straight into the output), the blocks spread over torch's threads;
elsewhere a pure-torch twin does the same float operations in the same order. The adjoint sums
the blocks' shares as a pairwise tree (``tree_sum``), an order both paths can follow exactly.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from idbench import kernels
from idbench.projections.base import PROJECTIONS, Projection, batch_base
from idbench.projections.hadamard import butterfly, next_power_of_two, tree_sum
from idbench.projections.random_matrix import draw_chi, draw_rows, matrix_key


def random_permutations(uniform: torch.Tensor) -> torch.Tensor:
    """The stable argsort of every row of ``uniform`` (floats in [0, 1) on the 2^-24 grid, as
    torch.rand draws them): a random permutation per row, equal values kept in their order. The
    compiled radix sort computes it; torch (``stable=True``, the same order) sorts rows with a
    value off the grid, and everything where the kernels are not built."""
    compiled = kernels.for_tensor(uniform)
    if compiled is None:
        return torch.argsort(uniform, dim=1, stable=True)
    perm, off_grid = compiled.argsort_uniform_rows(uniform.contiguous())
    if off_grid.any():
        perm[off_grid] = torch.argsort(uniform[off_grid], dim=1, stable=True)
    return perm


@PROJECTIONS.register("fastfood")
class FastfoodProjection(Projection):
    name = "fastfood"

    def __init__(self, *, D: int, d: int, seed: int, dtype: torch.dtype = torch.float32) -> None:
        super().__init__(D=D, d=d, seed=seed, dtype=dtype)
        n = next_power_of_two(d)
        blocks = -(-D // n)
        key = matrix_key(seed, "fastfood", D, d)  # counter-based streams, one per part
        signs = draw_rows(matrix_key(*key, "signs"), 0, blocks, n, "bernoulli")
        # uniform keys (2k + 1) 2^-23 - 1, mapped exactly onto torch.rand's 2^-24 grid
        order = (draw_rows(matrix_key(*key, "order"), 0, blocks, n, "uniform") + 1) * 0.5
        perm = random_permutations(order)
        gauss = draw_rows(matrix_key(*key, "gauss"), 0, blocks, n, "gaussian")
        # chi(n)-distributed row norms, divided by ||G|| of the block (Le et al., eq. 7)
        gauss64 = gauss.numpy().astype(np.float64)
        norms = np.sqrt(np.sum(gauss64 * gauss64, axis=1, keepdims=True))
        scale = torch.from_numpy(draw_chi(key, blocks, n, n) / norms / math.sqrt(n * D))
        self.n, self.blocks = n, blocks
        # int8: exact for +-1 and a quarter of the memory traffic of float signs
        self.register_buffer("signs", signs.to(torch.int8))
        # permutations in the smallest integer type that holds n - 1: fewer bytes read per product
        index = torch.int16 if n <= 2**15 else torch.int32
        self.register_buffer("perm", perm.to(index))
        inv_perm = torch.empty_like(perm).scatter_(1, perm, torch.arange(n).expand(blocks, n))
        self.register_buffer("inv_perm", inv_perm.to(index))  # a scatter: O(D), not a sort
        self.register_buffer("gauss", gauss.to(dtype))
        # S and the 1 / sqrt(n D) factor together, cut to the D rows that are kept
        self.register_buffer("scale", scale.flatten()[:D].to(dtype))

    def _matvec(self, z: torch.Tensor) -> torch.Tensor:
        return self._product(z, None)

    def _matvec_add(self, base: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        # base + P z in the product's last pass (used by SubspaceModel for theta0 + P z)
        return self._product(z, base)

    def _product(self, z: torch.Tensor, base: torch.Tensor | None) -> torch.Tensor:
        """[base +] P z for z of shape (..., d): the compiled kernel on the CPU, else its twin."""
        batch = z.shape[:-1]
        z = z.reshape(-1, self.d).contiguous()
        base = None if base is None else batch_base(base, batch, self.D)
        compiled = kernels.for_tensor(z)
        if compiled is None:
            out = self._product_torch(z, base)
        else:
            out = z.new_empty(z.shape[0], self.D)
            compiled.fastfood_forward(z, self.signs, self.perm, self.gauss, self.scale, base, out)
        return out.view(*batch, self.D)

    def _product_torch(self, z: torch.Tensor, base: torch.Tensor | None) -> torch.Tensor:
        """The kernel's twin: S H G Pi H B z_pad per block, then base + that (z: (m, d))."""
        x = z.new_zeros(z.shape[0], self.blocks, self.n)
        x[..., : self.d] = z.unsqueeze(-2) * self.signs[:, : self.d]
        x = butterfly(x)
        x = butterfly(torch.gather(x, -1, self.perm.long().expand_as(x)) * self.gauss)
        x = x.flatten(-2)[:, : self.D] * self.scale
        return x if base is None else base + x

    def _rmatvec(self, g: torch.Tensor) -> torch.Tensor:
        """P^T g for g of shape (..., D): the blocks' shares summed as a pairwise tree, by the
        kernel or by the twin (``tree_sum``), in the same order."""
        batch = g.shape[:-1]
        g = g.reshape(-1, self.D).contiguous()
        compiled = kernels.for_tensor(g)
        if compiled is None:
            out = tree_sum(self._adjoint_parts_torch(g))
        else:
            out = g.new_empty(g.shape[0], self.d)
            compiled.fastfood_adjoint(g, self.signs, self.inv_perm, self.gauss, self.scale, out)
        return out.view(*batch, self.d)

    def _adjoint_parts_torch(self, g: torch.Tensor) -> torch.Tensor:
        """The kernel's twin: B H Pi^T G H S g_pad of every block, cut to d (g: (m, D))."""
        y = g.new_zeros(g.shape[0], self.blocks * self.n)
        y[:, : self.D] = g * self.scale
        y = butterfly(y.view(g.shape[0], self.blocks, self.n)) * self.gauss
        y = butterfly(torch.gather(y, -1, self.inv_perm.long().expand_as(y)))
        return y[..., : self.d] * self.signs[:, : self.d]
