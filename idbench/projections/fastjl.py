"""FastJL projection: the Ailon-Chazelle fast Johnson-Lindenstrauss transform used as a d -> D map.

Ailon and Chazelle (2009) embed with Phi = Q H D: random signs D, a normalised Hadamard transform H
that spreads every input over all coordinates, and a sparse Gaussian matrix Q. Here it maps the d
subspace coordinates (zero-padded to n = 2^ceil(log2 d)) to the D parameters:

    P z = Q (H / sqrt(n)) diag(signs) z_pad,     Q: D x n, sparse

Every row of Q holds ``nnz_per_row`` Gaussian entries at uniformly drawn columns (repeats summed),
so its density is q = nnz_per_row / n and its state is O(D * nnz_per_row) = O(D). The entries have
variance n / (nnz_per_row * D), which makes every column of P unit-norm in expectation and
E ||P z||^2 = ||z||^2 for every d: the scale follows n and D exactly, with no dataset-size
constants and no jumps as d crosses a power of two. The Hadamard mixing is what makes such a sparse
Q safe: after H every coordinate carries a share of every z_j.

Cost: one fast Hadamard transform of n and one sparse product over D * nnz_per_row entries.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from idbench.errors import IdbenchError
from idbench.projections.base import PROJECTIONS, Projection
from idbench.projections.hadamard import fwht, next_power_of_two
from idbench.projections.sparse import csr_matrix, csr_numel, spmm
from idbench.seeding import cpu_generator


@PROJECTIONS.register("fastjl")
class FastJLProjection(Projection):
    name = "fastjl"

    def __init__(
        self, *, D: int, d: int, seed: int, dtype: torch.dtype = torch.float32,
        nnz_per_row: int = 4,
    ) -> None:
        super().__init__(D=D, d=d, seed=seed, dtype=dtype)
        if isinstance(nnz_per_row, bool) or not isinstance(nnz_per_row, int) or nnz_per_row < 1:
            raise IdbenchError(f"fastjl nnz_per_row must be a positive integer, got {nnz_per_row!r}")
        self.nnz_per_row = nnz_per_row
        n = next_power_of_two(d)
        self.n = n
        gen = cpu_generator(seed, "fastjl", D, d, nnz_per_row)
        signs = torch.randint(0, 2, (n,), generator=gen).to(dtype) * 2 - 1
        rows = torch.arange(D).repeat_interleave(nnz_per_row)
        cols = torch.randint(0, n, (D * nnz_per_row,), generator=gen)
        std = math.sqrt(n / (nnz_per_row * D))
        values = torch.randn(D * nnz_per_row, generator=gen, dtype=torch.float64) * std
        # the stored values also carry the 1 / sqrt(n) of the normalised H (one operation less)
        values = (values / math.sqrt(n)).to(dtype)
        self.register_buffer("signs", signs)
        self.register_buffer("q", csr_matrix(rows, cols, values, (D, n)))
        self.register_buffer("q_t", csr_matrix(cols, rows, values, (n, D)))

    def _mixed(self, z: torch.Tensor) -> torch.Tensor:
        """H diag(signs) z_pad (unnormalised H: Q holds the 1 / sqrt(n))."""
        return fwht(torch.nn.functional.pad(z, (0, self.n - self.d)) * self.signs)

    def _matvec(self, z: torch.Tensor) -> torch.Tensor:
        return spmm(self.q, self._mixed(z))

    def _matvec_add(self, base: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        # base + Q x in one sparse call (used by SubspaceModel for theta0 + P z)
        if z.dim() == 1:
            return torch.addmv(base, self.q, self._mixed(z))
        return base + self._matvec(z)

    def _rmatvec(self, g: torch.Tensor) -> torch.Tensor:
        return (fwht(spmm(self.q_t, g)) * self.signs)[..., : self.d]

    def state_numel(self) -> int:
        return self.signs.numel() + csr_numel(self.q) + csr_numel(self.q_t)

    def options(self) -> dict[str, Any]:
        return {"nnz_per_row": self.nnz_per_row, "density": self.nnz_per_row / self.n}
