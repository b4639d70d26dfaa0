"""optimizer ngd: the Sherman-Morrison-Woodbury solve, the per-example gradients, and learning."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import idbench.data as data
import idbench.projections as projections
from idbench.config import MeasureConfig
from idbench.errors import IdbenchError
from idbench.methods.base import BatchLoss
from idbench.methods.ngd import FisherSketch, NaturalGradient
from idbench.subspace import SubspaceModel
from idbench.train import RunSpec, run


@pytest.mark.parametrize("b,n", [(16, 50), (16, 5), (1, 7)])
def test_woodbury_solve_equals_the_direct_solve(b, n):
    gen = torch.Generator().manual_seed(b * n)
    U = torch.randn(b, n, generator=gen, dtype=torch.float64)
    g = torch.randn(n, generator=gen, dtype=torch.float64)
    damping = 0.3
    direct = torch.linalg.solve(U.T @ U / b + damping * torch.eye(n, dtype=torch.float64), g)
    assert torch.allclose(FisherSketch.of(U, damping).solve(g), direct, rtol=1e-10, atol=1e-12)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).double()


def _batch() -> BatchLoss:
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(12, 5, generator=gen, dtype=torch.float64)
    return BatchLoss(x, torch.arange(12) % 3, F.cross_entropy)


def _one_by_one(model: nn.Module, batch: BatchLoss, samples: int) -> torch.Tensor:
    """Per-example gradients in the trainable coordinates, one backward pass per example."""
    rows = []
    params = [p for p in model.parameters() if p.requires_grad]
    for i in range(samples):
        loss = batch.loss(model(batch.x[i : i + 1]), batch.y[i : i + 1])
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]))
    return torch.stack(rows)


@pytest.mark.parametrize("projection", projections.list())
@pytest.mark.parametrize("compartments", [None, "layer"])
def test_per_example_subspace_gradients_are_exact(projection, compartments):
    model = SubspaceModel(_net(), d=3, projection=projection, seed=1, compartments=compartments)
    with torch.no_grad():
        model.z.normal_(generator=torch.Generator().manual_seed(3))  # away from theta0
    batch = _batch()
    ngd = NaturalGradient(model, samples=5, damping=0.1, refresh=1)
    U = ngd.per_example_gradients(batch)
    assert U.shape == (5, model.d_total)
    assert torch.allclose(U, _one_by_one(model, batch, 5), rtol=1e-9, atol=1e-12)


def test_full_space_step_is_the_damped_natural_gradient():
    """Without a subspace, U is the per-example parameter gradients and .grad becomes F^{-1} g."""
    net = _net()
    batch = _batch()
    ngd = NaturalGradient(net, samples=4, damping=0.5, refresh=1)
    batch(net).backward()
    g = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
    ngd.precondition(batch)
    U = _one_by_one(net, batch, 4)
    F_damped = U.T @ U / 4 + 0.5 * torch.eye(len(g), dtype=torch.float64)
    expected = torch.linalg.solve(F_damped, g)
    assert torch.allclose(torch.cat([p.grad.reshape(-1) for p in net.parameters()]), expected,
                          rtol=1e-8, atol=1e-12)


def test_the_sketch_is_refreshed_every_refresh_steps():
    model = SubspaceModel(_net(), d=4, projection="fastfood", seed=0)
    ngd = NaturalGradient(model, samples=3, damping=0.1, refresh=3)
    sketches = []
    for _ in range(7):
        model.z.grad = torch.ones_like(model.z)
        ngd.precondition(_batch())
        sketches.append(ngd.sketch)
    assert [s is sketches[0] for s in sketches] == [True] * 3 + [False] * 4
    assert sketches[3] is sketches[5] and sketches[6] is not sketches[3]


@pytest.mark.parametrize("option,value", [("ngd_samples", 0), ("ngd_damping", 0.0),
                                          ("ngd_refresh", 0), ("ngd_refresh", 2.5)])
def test_bad_ngd_options_raise_one_idbench_error(option, value):
    with pytest.raises(IdbenchError, match=option):
        RunSpec(model="fc", dataset="digits", seed=0, lr=0.1, projection="fastfood", d=10,
                optimizer="ngd", **{option: value})


@pytest.mark.parametrize("method", ["rbd", "nes[sigma=0.1]"])
def test_ngd_with_a_method_that_takes_its_own_steps_is_one_clear_error(method):
    with pytest.raises(IdbenchError, match="ngd.*takes its own steps.*use method fpd"):
        MeasureConfig.build(model="fc", dataset="digits", method=method, optimizer="ngd")


def test_an_ngd_run_learns_digits():
    """FC on digits in a 200-dimensional fastfood subspace: ngd (refreshing the sketch every step)
    ends well above chance, and records its options in the spec."""
    spec = RunSpec(model="fc[depth=1,width=32]", dataset="digits", seed=0, lr=0.1,
                   projection="fastfood", d=200, optimizer="ngd", epochs=4, batch_size=64,
                   ngd_refresh=1)
    result = run(spec, data.load("digits"))
    assert not result.diverged and result.retries == 0
    assert result.val_score > 0.8
