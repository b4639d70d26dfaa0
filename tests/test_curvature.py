"""lambda_max by Lanczos on Hessian-vector products: exact on quadratics with a known Hessian, in
the full space and inside a subspace (P^T A P), and NaN when the products are not finite."""

import math

import pytest
import torch
from torch import nn

import idbench.data
import idbench.projections as projections
from idbench.curvature import lambda_max, lambda_max_of_run, lanczos_max
from idbench.subspace import SubspaceModel
from idbench.train import RunSpec


class Quadratic(nn.Module):
    """loss = 0.5 w^T A w (the forward ignores its input): Hessian A everywhere."""

    def __init__(self, A: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("A", A)
        self.w = nn.Parameter(torch.randn(len(A), dtype=A.dtype,
                                          generator=torch.Generator().manual_seed(1)))

    def forward(self, x: torch.Tensor | None = None) -> torch.Tensor:
        return 0.5 * self.w @ self.A @ self.w


def spd(n: int, top: float, seed: int = 0) -> torch.Tensor:
    """A symmetric matrix with eigenvalues in [-1, 1] and one at ``top``."""
    q, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64,
                                       generator=torch.Generator().manual_seed(seed)))
    eig = torch.linspace(-1.0, 1.0, n, dtype=torch.float64)
    eig[-1] = top
    return q @ torch.diag(eig) @ q.T


def loss(m: nn.Module) -> torch.Tensor:
    return m(None)


def test_full_space_top_eigenvalue_of_a_known_hessian():
    A = spd(60, top=7.5)
    assert lambda_max(Quadratic(A), loss) == pytest.approx(7.5, rel=1e-10)


def test_lanczos_is_exact_once_it_spans_the_space():
    A = spd(12, top=0.5, seed=3)  # top eigenvalue 1.0 (the spread), no gap to help
    expected = float(torch.linalg.eigvalsh(A)[-1])
    assert lanczos_max(lambda v: A @ v, 12, dtype=torch.float64) == pytest.approx(expected,
                                                                                  rel=1e-12)


@pytest.mark.parametrize("projection", ["dense", "sparse", "fastfood", "fastjl"])
def test_subspace_top_eigenvalue_is_that_of_p_transpose_a_p(projection):
    D, d = 40, 7
    A = spd(D, top=5.0)
    sub = SubspaceModel(Quadratic(A), d=d, projection=projection, seed=2)
    basis = projections.create(projection, D=D, d=d, seed=sub.projections[0].seed,
                               dtype=torch.float64)
    P = basis(torch.eye(d, dtype=torch.float64)).T  # D x d, small sizes only
    expected = float(torch.linalg.eigvalsh(P.T @ A @ P)[-1])
    assert lambda_max(sub, loss) == pytest.approx(expected, rel=1e-10)


def test_nan_products_give_nan():
    A = spd(10, top=2.0)
    A[0, 0] = math.nan
    assert math.isnan(lambda_max(Quadratic(A), loss))


def test_toy_sums_curvature_is_twice_the_group_size_over_the_groups():
    """The toy's loss mean((S theta - t)^2) over k groups has Hessian (2/k) S^T S: top 2 * 100 / 10
    in the full space, and at most that in any unit-column subspace."""
    data = idbench.data.load("toy-sums")
    spec = RunSpec(model="toy-sums", dataset="toy-sums", seed=0, lr=1.0)
    assert lambda_max_of_run(spec, data) == pytest.approx(20.0, rel=1e-5)
    sub = lambda_max_of_run(RunSpec(model="toy-sums", dataset="toy-sums", seed=0, lr=1.0,
                                    projection="fastjl", d=10), data)
    assert 0 < sub <= 20.0 * (1 + 1e-5)
