"""The Kronecker projection: its structure, its column norms, and the toy known answer."""

import pytest
import torch

import idbench.data as data
import idbench.projections as projections
from idbench.train import RunSpec, run


def test_kron_is_the_kronecker_product_of_its_factors():
    """P[(i, j), (k, l)] = A[i, k] B[j, l] on the kept rows; padded coordinates are unused."""
    D, d = 85, 7  # factors (10 x 3) and (9 x 3): 5 of 90 rows cut, 2 of 9 coordinates unused
    p = projections.create("kron", D=D, d=d, seed=4, dtype=torch.float64)
    assert (p.D1, p.d1, p.D2, p.d2) == (10, 3, 9, 3)
    full = torch.kron(p.A, p.B)  # row i * D2 + j, column k * d2 + l
    assert torch.allclose(p(torch.eye(d, dtype=torch.float64)).T, full[p.rows][:, :d], atol=1e-12)
    kept = p.rows.tolist()
    assert len(set(kept)) == D and max(kept) < 90
    assert kept != sorted(kept)  # randomly permuted


def test_kron_columns_are_close_to_unit_norm():
    """Unit-norm factor columns make every column of P (not only their mean) close to unit norm."""
    p = projections.create("kron", D=20_000, d=300, seed=0, dtype=torch.float64)
    norms = p(torch.eye(300, dtype=torch.float64)).norm(dim=1)
    assert float((norms - 1).abs().max()) < 0.05


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kron_solves_the_toy_at_its_intrinsic_dimension(seed):
    """toy-sums with 10 groups: a kron subspace of d = 10 solves it (L-BFGS, which converges where
    the subspace is badly conditioned), one of d = 9 cannot."""
    toy = data.load("toy-sums[groups=10]")

    def score(d: int) -> float:
        spec = RunSpec(
            model="toy-sums[group_size=100]", dataset="toy-sums[groups=10]", seed=seed, lr=1.0,
            projection="kron", d=d, optimizer="lbfgs", steps=30, epochs=None, batch_size=16,
            schedule="constant", warmup=0.0,
        )
        return run(spec, toy).val_score

    assert score(10) == 1.0
    assert score(9) < 1.0
