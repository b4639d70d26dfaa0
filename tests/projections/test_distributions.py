"""Dense bases of each distribution follow the unit-column convention and keep their shape."""

import math

import pytest
import torch

import idbench.projections as projections
from idbench.errors import IdbenchError
from idbench.projections.dense import DISTRIBUTIONS

D, d = 4000, 200
KURTOSIS = {"gaussian": 3.0, "uniform": 1.8, "bernoulli": 1.0}  # E x^4 / (E x^2)^2


def basis(distribution: str, seed: int = 0, **options) -> torch.Tensor:
    """The D x d matrix of a float64 dense projection (column j = P e_j)."""
    opts = ",".join([f"distribution={distribution}", *(f"{k}={v}" for k, v in options.items())])
    p = projections.create(f"dense[{opts}]", D=D, d=d, seed=seed, dtype=torch.float64)
    return p(torch.eye(d, dtype=torch.float64)).T


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_mean_variance_and_unit_columns(distribution):
    m = basis(distribution)
    assert torch.allclose(m.norm(dim=0), torch.ones(d, dtype=torch.float64), atol=1e-12)
    n = m.numel()
    # mean 0: within 4 standard errors of the mean of n entries of variance 1/D
    assert abs(float(m.mean())) < 4 * math.sqrt(1 / D / n)
    # variance 1/D (mean square is exactly 1/D by the normalisation; the mean is ~0)
    assert float(m.var()) == pytest.approx(1 / D, rel=1e-3)
    # the distribution keeps its shape after normalisation
    kurtosis = float((m**4).mean() / (m**2).mean() ** 2)
    assert kurtosis == pytest.approx(KURTOSIS[distribution], abs=0.05)


def test_bernoulli_entries_are_exactly_plus_minus_one_over_sqrt_D():
    m = basis("bernoulli")
    assert torch.allclose(m.abs(), torch.full_like(m, 1 / math.sqrt(D)), atol=1e-15)
    assert 0.49 < float((m > 0).double().mean()) < 0.51


def test_uniform_entries_are_bounded():
    # U[-1, 1] has mean square 1/3: normalised entries stay within sqrt(3 / D) up to the column
    # norm's fluctuation (std 0.7% at D = 4000)
    m = basis("uniform")
    assert float(m.abs().max()) < 1.05 * math.sqrt(3 / D)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_regenerated_basis_is_the_same_and_recorded(distribution):
    stored = projections.create(f"dense[distribution={distribution}]", D=3000, d=50, seed=7)
    regen = projections.create(
        f"dense[distribution={distribution},regenerate=true]", D=3000, d=50, seed=7
    )
    g, z = torch.randn(3000), torch.randn(50)
    assert torch.allclose(stored.adjoint(g), regen.adjoint(g), atol=1e-5)
    assert torch.allclose(stored(z), regen(z), atol=1e-6)
    assert regen.describe()["projection_options"] == {
        "regenerate": True, "distribution": distribution,
    }


def test_distributions_give_different_bases_and_gaussian_is_the_default():
    bases = {name: basis(name) for name in DISTRIBUTIONS}
    for a in DISTRIBUTIONS:
        for b in DISTRIBUTIONS:
            if a != b:
                assert not torch.allclose(bases[a], bases[b], atol=1e-3)
    default = projections.create("dense", D=D, d=d, seed=0, dtype=torch.float64)
    assert torch.equal(default(torch.eye(d, dtype=torch.float64)).T, bases["gaussian"])


def test_unknown_distribution_lists_the_valid_ones():
    match = "unknown dense distribution 'cauchy'.*gaussian, uniform, bernoulli"
    with pytest.raises(IdbenchError, match=match):
        projections.create("dense[distribution=cauchy]", D=100, d=10, seed=0)
