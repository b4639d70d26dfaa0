"""Kronecker projection (Lotfi et al. 2022, "PAC-Bayes compression bounds so tight that they can
explain generalization"): a d -> D map whose matrix is a Kronecker product of two small Gaussians.

The d coordinates are zero-padded to d1 * d2 (d1 = ceil(sqrt(d)), d2 = ceil(d / d1), so at most
d1 - 1 padded coordinates, never used) and reshaped row-major to a d1 x d2 matrix Z. With
A (D1 x d1) and B (D2 x d2) (D1 = ceil(sqrt(D)), D2 = ceil(D / D1), so D1 * D2 >= D):

    P z = c * R vec(A Z B^T),        P[(i, j), (k, l)] = c * A[i, k] * B[j, l]

vec is row-major (row (i, j) of the D1 * D2 rows is i * D2 + j) and R keeps D of those rows in a
random order (a random permutation of the D1 * D2 rows, cut to its first D): without it, runs of
D2 neighbouring parameters (one layer's weights) would all share one row of A.

Scaling: A and B have i.i.d. Gaussian entries with every column then normalised to unit norm (as
for ``dense``), so every column A[:, k] (x) B[:, l] of the full Kronecker matrix has norm exactly 1.
Each of its D1 * D2 rows is kept with probability D / (D1 * D2), and c = sqrt(D1 * D2 / D) makes
E ||P e_j||^2 = 1 (and E ||P z||^2 = ||z||^2 for every z, the expectation over the row selection
and the Gaussians). As D1 * D2 - D < D1 + D2, c is within about 1 / sqrt(D) of 1 and every column
norm is close to 1, not just in expectation. The columns are correlated in a structured way: two
columns that share k (or l) share a factor; that is the price of the compression.

State: A, B (D1 d1 + D2 d2 = O(sqrt(D d)) numbers) and the D kept row indices; never a D x d
matrix. A product costs two small matrix products, O(D sqrt(d)) flops, plus a gather (P z) or a
scatter (P^T g) of D values.

``kron_sparse`` is Lotfi et al.'s sum variant, (kron + sparse) / sqrt(2): see its class.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from idbench.projections.base import PROJECTIONS, Projection
from idbench.projections.sparse import SparseProjection
from idbench.seeding import cpu_generator, derive_seed


def _factor_sizes(n: int) -> tuple[int, int]:
    """(n1, n2) with n1 = ceil(sqrt(n)) and n1 * n2 >= n, the least n2 that covers n."""
    n1 = math.isqrt(n - 1) + 1 if n > 1 else 1
    return n1, -(-n // n1)


def _unit_columns(shape: tuple[int, int], gen: torch.Generator) -> torch.Tensor:
    """A float64 Gaussian matrix with every column scaled to unit norm."""
    m = torch.randn(*shape, generator=gen, dtype=torch.float64)
    return m / m.norm(dim=0, keepdim=True)


@PROJECTIONS.register("kron")
class KronProjection(Projection):
    name = "kron"

    def __init__(self, *, D: int, d: int, seed: int, dtype: torch.dtype = torch.float32) -> None:
        super().__init__(D=D, d=d, seed=seed, dtype=dtype)
        self.d1, self.d2 = _factor_sizes(d)
        self.D1, self.D2 = _factor_sizes(D)
        gen = cpu_generator(seed, "kron", D, d)
        scale = math.sqrt(self.D1 * self.D2 / D)
        self.register_buffer("A", (_unit_columns((self.D1, self.d1), gen) * scale).to(dtype))
        self.register_buffer("B", _unit_columns((self.D2, self.d2), gen).to(dtype))
        self.register_buffer("rows", torch.randperm(self.D1 * self.D2, generator=gen)[:D])

    def _matvec(self, z: torch.Tensor) -> torch.Tensor:
        Z = z.new_zeros(*z.shape[:-1], self.d1 * self.d2)
        Z[..., : self.d] = z
        full = self.A @ Z.unflatten(-1, (self.d1, self.d2)) @ self.B.T  # (..., D1, D2)
        return full.flatten(-2).index_select(-1, self.rows)

    def _rmatvec(self, g: torch.Tensor) -> torch.Tensor:
        full = g.new_zeros(*g.shape[:-1], self.D1 * self.D2).index_copy_(-1, self.rows, g)
        Z = self.A.T @ full.unflatten(-1, (self.D1, self.D2)) @ self.B  # (..., d1, d2)
        return Z.flatten(-2)[..., : self.d]

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, factors=({self.D1}x{self.d1}) (x) ({self.D2}x{self.d2})"


_HALF_SQRT = 1 / math.sqrt(2)


@PROJECTIONS.register("kron_sparse")
class KronSparseProjection(Projection):
    """Lotfi et al.'s sum variant: P = (K + S) / sqrt(2), a ``kron`` K plus a ``sparse`` S.

    Why: a Kronecker basis's columns share factors, so some of its d-column subsets are badly
    conditioned (at d = the answer of the toy-sums problems its median condition number is
    Fastfood's, about twice dense's); an independent sparse part breaks that structure and
    brings it to dense's level (``benchmarks/kron_conditioning.py``). K and S are independent
    with zero-mean entries and unit columns (S exactly, K in expectation), so E ||P e_j||^2 = 1.
    Both parts are drawn from streams of their own (not the ``kron`` or ``sparse`` basis of the
    same seed, which would tie this cell's bases to theirs). State and cost: the sum of the two.

        P = idbench.projections.create("kron_sparse", D=199_210, d=300, seed=0)
        P = idbench.projections.create("kron_sparse[density=0.01]", D=199_210, d=300, seed=0)
    """

    name = "kron_sparse"

    def __init__(
        self, *, D: int, d: int, seed: int, dtype: torch.dtype = torch.float32,
        density: float | None = None,
    ) -> None:
        super().__init__(D=D, d=d, seed=seed, dtype=dtype)
        # child modules: their buffers move with .to(device)
        self.kron = KronProjection(D=D, d=d, seed=derive_seed(seed, "kron_sparse", "kron"),
                                   dtype=dtype)
        self.sparse = SparseProjection(D=D, d=d, seed=derive_seed(seed, "kron_sparse", "sparse"),
                                       dtype=dtype, density=density)

    def _matvec(self, z: torch.Tensor) -> torch.Tensor:
        return (self.kron._matvec(z) + self.sparse._matvec(z)) * _HALF_SQRT

    def _rmatvec(self, g: torch.Tensor) -> torch.Tensor:
        return (self.kron._rmatvec(g) + self.sparse._rmatvec(g)) * _HALF_SQRT

    def state_numel(self) -> int:
        return self.kron.state_numel() + self.sparse.state_numel()

    def options(self) -> dict[str, Any]:
        return self.sparse.options()
