"""FastJL projection: the Ailon-Chazelle fast Johnson-Lindenstrauss transform used as a d -> D map.

Ailon and Chazelle (2009) embed with Phi = Q H D: random signs D, a normalised Hadamard transform H
that spreads every input over all coordinates, and a sparse Gaussian matrix Q. Here it maps the d
subspace coordinates (zero-padded to n = 2^ceil(log2 d)) to the D parameters:

    P z = Q (H / sqrt(n)) diag(signs) z_pad,     Q: D x n, sparse

Every row of Q holds ``nnz_per_row`` Gaussian entries at uniformly drawn columns (a column drawn
twice in a row adds both entries), so its density is q = nnz_per_row / n and its state is
O(D * nnz_per_row) = O(D). The entries have
variance n / (nnz_per_row * D), which makes every column of P unit-norm in expectation and
E ||P z||^2 = ||z||^2 for every d: the scale follows n and D exactly, with no dataset-size
constants and no jumps as d crosses a power of two. The Hadamard mixing is what makes such a sparse
Q safe: after H every coordinate carries a share of every z_j.

Cost: one fast Hadamard transform of n and one sparse product over D * nnz_per_row entries. Q is
stored once, as two (nnz_per_row, D) arrays of columns and values (ELLPACK: every row has the
same number of entries), which both products stream in order: Q x gathers from the short x, and
Q^T g scatters into the short output, in fixed chunks of rows summed as a pairwise tree. On the
CPU the compiled kernels (``ellpack.cpp``) run them; elsewhere a pure-torch twin adds in the same
order (on a GPU its ``index_add_`` adds atomically, so there it agrees to float rounding).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from idbench import kernels
from idbench.errors import IdbenchError
from idbench.projections.base import PROJECTIONS, Projection, batch_base
from idbench.projections.hadamard import fwht, next_power_of_two, tree_sum
from idbench.seeding import cpu_generator

CHUNK = 8192  # rows per partial sum of Q^T g (ellpack.cpp's kChunk)


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
        cols = torch.randint(0, n, (D * nnz_per_row,), generator=gen)
        std = math.sqrt(n / (nnz_per_row * D))
        values = torch.randn(D * nnz_per_row, generator=gen, dtype=torch.float64) * std
        # the stored values also carry the 1 / sqrt(n) of the normalised H (one operation less);
        # entry s of row i was drawn at i * nnz_per_row + s, stored at [s, i]
        values = (values / math.sqrt(n)).to(dtype)
        index = torch.int16 if n <= 2**15 else torch.int32  # fewer bytes read per product
        self.register_buffer("signs", signs)
        self.register_buffer("cols", cols.view(D, nnz_per_row).T.contiguous().to(index))
        self.register_buffer("values", values.view(D, nnz_per_row).T.contiguous())

    def _mixed(self, z: torch.Tensor) -> torch.Tensor:
        """H diag(signs) z_pad (unnormalised H: Q holds the 1 / sqrt(n))."""
        return fwht(torch.nn.functional.pad(z, (0, self.n - self.d)) * self.signs)

    def _matvec(self, z: torch.Tensor) -> torch.Tensor:
        return self._q_product(self._mixed(z), None)

    def _matvec_add(self, base: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        # base + Q x in the product's last step (used by SubspaceModel for theta0 + P z)
        return self._q_product(self._mixed(z), base)

    def _rmatvec(self, g: torch.Tensor) -> torch.Tensor:
        return (fwht(self._q_adjoint(g)) * self.signs)[..., : self.d]

    def _q_product(self, x: torch.Tensor, base: torch.Tensor | None) -> torch.Tensor:
        """[base +] Q x for x of shape (..., n): the compiled kernel on the CPU, else its twin."""
        batch = x.shape[:-1]
        x = x.reshape(-1, self.n).contiguous()
        base = None if base is None else batch_base(base, batch, self.D)
        compiled = kernels.for_tensor(x)
        if compiled is None:
            cols = self.cols.long()
            out = self.values[0] * x[:, cols[0]]
            for s in range(1, self.nnz_per_row):
                out = out + self.values[s] * x[:, cols[s]]
            out = out if base is None else base + out
        else:
            out = x.new_empty(x.shape[0], self.D)
            compiled.ell_matvec(self.cols, self.values, x, base, out)
        return out.view(*batch, self.D)

    def _q_adjoint(self, g: torch.Tensor) -> torch.Tensor:
        """Q^T g for g of shape (..., D): every chunk of rows scattered into its own partial sum
        (entry by entry, in the order s, then i), the partial sums added as a pairwise tree; by
        the kernel or, in the same order, by its twin."""
        batch = g.shape[:-1]
        g = g.reshape(-1, self.D).contiguous()
        compiled = kernels.for_tensor(g)
        if compiled is not None:
            out = g.new_empty(g.shape[0], self.n)
            compiled.ell_transposed_matvec(self.cols, self.values, g, out)
            return out.view(*batch, self.n)
        # one index_add_ (which adds in index order) into a partial sum per (row of g, chunk):
        # each partial sum receives its terms in the order s, then i, as in the kernel
        m, chunks = g.shape[0], -(-self.D // CHUNK)
        rows = torch.arange(self.D, device=g.device)
        target = self.cols.long() + (rows // CHUNK) * self.n  # (s, i) -> its chunk's slot
        target = target + (torch.arange(m, device=g.device) * chunks * self.n)[:, None, None]
        terms = self.values * g[:, None, :]  # (m, s, D)
        partial = g.new_zeros(m * chunks * self.n).index_add_(0, target.flatten(), terms.flatten())
        return tree_sum(partial.view(m, chunks, self.n)).view(*batch, self.n)

    def state_numel(self) -> int:
        return self.signs.numel() + self.cols.numel() + self.values.numel()

    def options(self) -> dict[str, Any]:
        return {"nnz_per_row": self.nnz_per_row, "density": self.nnz_per_row / self.n}
