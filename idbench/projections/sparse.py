"""Very sparse random projection (Li, Hastie and Church 2006), columns scaled to unit norm.

Each entry of P is nonzero with probability ``density`` (default 1/sqrt(D)), with a random sign.
The matrix is drawn directly in sparse form, never as a dense D x d array: per column a Binomial
count of nonzeros (at least one), their row indices drawn uniformly, duplicate (row, column) pairs
removed, and every nonzero of column j set to +-1/sqrt(nnz_j) so each column has exactly unit norm.
Only P^T is stored, in CSR form (d rows of ~sqrt(D) entries each): the adjoint is one sparse
product over its nnz ~ d * sqrt(D) entries, and P z scatters the same entries
(:func:`transposed_matvec`: a compiled loop on the CPU, ``index_add_`` elsewhere), which beats a
CSR product over P's own rows (very short, of random length) and halves the state.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from idbench import kernels
from idbench.errors import IdbenchError
from idbench.projections.base import PROJECTIONS, Projection, batch_base
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


def transposed_matvec(
    matrix: torch.Tensor, x: torch.Tensor, base: torch.Tensor | None = None
) -> torch.Tensor:
    """``[base +] matrix^T x`` along the last axis of x (any leading batch shape), for a CSR
    ``matrix``: every stored entry's term added to its output in storage order. The compiled
    kernel does that on the CPU; elsewhere ``index_add_`` does (bit-identical on the CPU, where it
    adds in index order; on a GPU its atomic adds agree to float rounding)."""
    flat = x.reshape(-1, x.shape[-1]).contiguous()
    width = matrix.shape[1]
    base = None if base is None else batch_base(base, x.shape[:-1], width)
    compiled = kernels.for_tensor(flat)
    if compiled is not None:
        out = flat.new_empty(flat.shape[0], width)
        compiled.csr_transposed_matvec(matrix.crow_indices(), matrix.col_indices(),
                                       matrix.values(), flat, base, out)
        return out.view(*x.shape[:-1], width)
    crow = matrix.crow_indices()
    rows = torch.repeat_interleave(torch.arange(matrix.shape[0], device=x.device), crow.diff())
    terms = flat[:, rows] * matrix.values()
    out = flat.new_zeros(flat.shape[0], width) if base is None else (
        base.expand(flat.shape[0], width).clone())
    for r in range(flat.shape[0]):  # row by row: index_add_ on a vector adds in index order
        out[r].index_add_(0, matrix.col_indices().long(), terms[r])
    return out.view(*x.shape[:-1], width)


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
        self.register_buffer("matrix_t", csr_matrix(cols, rows, values, (d, D)))  # P^T

    def _matvec(self, z: torch.Tensor) -> torch.Tensor:
        return transposed_matvec(self.matrix_t, z)

    def _matvec_add(self, base: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        # base + P z in the same pass (used by SubspaceModel for theta0 + P z)
        return transposed_matvec(self.matrix_t, z, base)

    def _rmatvec(self, g: torch.Tensor) -> torch.Tensor:
        return spmm(self.matrix_t, g)

    def state_numel(self) -> int:
        return csr_numel(self.matrix_t)

    def options(self) -> dict[str, Any]:
        return {"density": self.density}
