"""Very sparse random projection (Li, Hastie and Church 2006), columns scaled to unit norm.

Each entry of P is nonzero with probability ``density`` (default 1/sqrt(D)), with a random sign.
The matrix is drawn directly in sparse form, never as a dense D x d array: per column a Binomial
count of nonzeros (at least one), their row indices drawn uniformly, duplicate (row, column) pairs
removed, and every nonzero of column j set to +-1/sqrt(nnz_j) so each column has exactly unit norm.
P and P^T are both kept in CSR form, so the product and the adjoint are each one sparse
product over nnz ~ d * sqrt(D) entries. P is stored with 8 of its rows packed into each CSR row
(:func:`pack_rows`): its own rows are very short and of random length, which the CPU kernels
handle poorly.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from idbench.errors import IdbenchError
from idbench.projections.base import PROJECTIONS, Projection
from idbench.seeding import cpu_generator


def csr_matrix(
    rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]
) -> torch.Tensor:
    """A CSR tensor from COO triplets (duplicates are summed), with int32 indices when they fit,
    which is what the MKL / cuSPARSE kernels take without a conversion on every product."""
    with torch.sparse.check_sparse_tensor_invariants(False), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        coo = torch.sparse_coo_tensor(torch.stack([rows, cols]), values, size=shape).coalesce()
        index_dtype = torch.int32 if coo._nnz() < 2**31 - 1 else torch.int64
        rows, cols = coo.indices()
        crow = torch.zeros(shape[0] + 1, dtype=torch.int64)
        crow[1:] = torch.cumsum(torch.bincount(rows, minlength=shape[0]), 0)
        return torch.sparse_csr_tensor(
            crow.to(index_dtype), cols.to(index_dtype), coo.values(), size=shape
        )


def csr_numel(matrix: torch.Tensor) -> int:
    """Stored elements of a CSR tensor: values and both index arrays."""
    return matrix.values().numel() + matrix.col_indices().numel() + matrix.crow_indices().numel()


def spmm(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``matrix @ x`` along the last axis of x (any leading batch shape), for a CSR ``matrix``.

    The dense operand must be contiguous column-major for the fast sparse kernels, hence the copy.
    """
    if x.dim() == 1:
        return torch.mv(matrix, x)
    flat = x.reshape(-1, x.shape[-1]).T.contiguous()
    return (matrix @ flat).T.reshape(*x.shape[:-1], matrix.shape[0])


PACK = 8  # rows of P per row of its packed CSR form


def pack_rows(
    rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, shape: tuple[int, int], pack: int
) -> torch.Tensor:
    """The D x d matrix of COO triplets as a ceil(D / pack) x (pack * d) CSR matrix: row r goes to
    row r // pack, its columns shifted by (r % pack) * d. See :func:`packed_matvec`."""
    D, d = shape
    return csr_matrix(rows // pack, cols + (rows % pack) * d, values, (-(-D // pack), pack * d))


def packed_matvec(packed: torch.Tensor, x: torch.Tensor, D: int, pack: int) -> torch.Tensor:
    """P x along the last axis of x (any leading batch shape) for P in :func:`pack_rows` form.

    The packed matrix times the block-diagonal (pack * d) x (pack * n) matrix with x's n vectors in
    each diagonal block gives, in row i and block k, P x of row i * pack + k. Why bother: with ~2
    nonzeros per row of random length, a CSR product over P's own rows is dominated by per-row
    overhead and mispredicted loop exits; packed rows are 8 times longer and each nonzero updates
    ``pack`` outputs in one vector operation (~2.5x faster on the CPU).
    """
    d = x.shape[-1]
    flat = x.reshape(-1, d)
    n = flat.shape[0]
    rhs = x.new_zeros(pack, d, pack, n)
    rhs.diagonal(dim1=0, dim2=2).copy_(flat.T.unsqueeze(-1).expand(d, n, pack))
    out = packed @ rhs.view(pack * d, pack * n)  # (rows, pack * n): [i, k * n + j] = row i*pack+k
    if n == 1:
        return out.view(-1)[:D].reshape(*x.shape[:-1], D)
    out = out.view(-1, pack, n).permute(2, 0, 1).reshape(n, -1)[:, :D]
    return out.reshape(*x.shape[:-1], D)


@PROJECTIONS.register("sparse")
class SparseProjection(Projection):
    name = "sparse"

    def __init__(
        self, *, D: int, d: int, seed: int, dtype: torch.dtype = torch.float32,
        density: float | None = None,
    ) -> None:
        super().__init__(D=D, d=d, seed=seed, dtype=dtype)
        if density is None:
            density = 1.0 / math.sqrt(D)
        if not isinstance(density, (int, float)) or not 0.0 < density <= 1.0:
            raise IdbenchError(f"sparse density must be in (0, 1], got {density!r}")
        self.density = float(density)
        gen = cpu_generator(seed, "sparse", D, d, self.density)
        counts = torch.binomial(
            torch.full((d,), float(D), dtype=torch.float64),
            torch.full((d,), self.density, dtype=torch.float64),
            generator=gen,
        ).long().clamp_(min=1)
        cols = torch.repeat_interleave(torch.arange(d), counts)
        rows = torch.randint(0, D, (int(counts.sum()),), generator=gen)
        linear = torch.unique(cols * D + rows)  # drops duplicates, sorted by column
        cols, rows = linear // D, linear % D
        nnz = torch.bincount(cols, minlength=d)
        signs = torch.randint(0, 2, (linear.numel(),), generator=gen).to(torch.float64) * 2 - 1
        values = (signs / nnz[cols].double().sqrt()).to(dtype)
        self.register_buffer("matrix", pack_rows(rows, cols, values, (D, d), PACK))  # P, packed
        self.register_buffer("matrix_t", csr_matrix(cols, rows, values, (d, D)))

    def _matvec(self, z: torch.Tensor) -> torch.Tensor:
        return packed_matvec(self.matrix, z, self.D, PACK)

    def _rmatvec(self, g: torch.Tensor) -> torch.Tensor:
        return spmm(self.matrix_t, g)

    def state_numel(self) -> int:
        return csr_numel(self.matrix) + csr_numel(self.matrix_t)

    def options(self) -> dict[str, Any]:
        return {"density": self.density}
