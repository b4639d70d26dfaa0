"""FastJL: P = Q (H / sqrt(n)) diag(signs), Q stored once as the columns and values of its
nnz_per_row entries in every row, a column drawn twice in one row adding both entries."""

import pytest
import torch

import idbench.projections as projections
from idbench.projections.hadamard import hadamard_matrix


def dense_p(p) -> torch.Tensor:
    """P as a dense D x d matrix, built from the stored entries with torch's accumulating
    index_put_ (repeated columns of a row summed)."""
    rows = torch.arange(p.D).repeat(p.nnz_per_row)
    q = torch.zeros(p.D, p.n, dtype=p.values.dtype)
    q.index_put_((rows, p.cols.flatten().long()), p.values.flatten(), accumulate=True)
    return q @ (hadamard_matrix(p.n, dtype=q.dtype) * p.signs)[:, : p.d]


@pytest.mark.parametrize("D,d,nnz", [(50, 2, 4), (300, 3, 1), (1000, 37, 4), (9000, 130, 7)])
def test_the_products_are_those_of_the_stored_matrix(D, d, nnz):
    p = projections.create(f"fastjl[nnz_per_row={nnz}]", D=D, d=d, seed=2, dtype=torch.float64)
    assert p.cols.shape == p.values.shape == (nnz, D)  # every row holds nnz entries
    if d == 2:  # n = 2 columns for 4 entries: every row repeats a column
        assert all(len(set(p.cols[:, i].tolist())) < nnz for i in range(D))
    matrix = dense_p(p)
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(3, d, generator=gen, dtype=torch.float64)
    g = torch.randn(3, D, generator=gen, dtype=torch.float64)
    assert torch.allclose(p(z), z @ matrix.T, rtol=0, atol=1e-12)
    assert torch.allclose(p.adjoint(g), g @ matrix, rtol=0, atol=1e-12)


def test_columns_have_unit_norm_in_expectation():
    p = projections.create("fastjl", D=20_000, d=100, seed=0, dtype=torch.float64)
    norms = dense_p(p).square().sum(0)
    assert abs(float(norms.mean()) - 1) < 0.02  # 100 columns of 80,000 entries each
