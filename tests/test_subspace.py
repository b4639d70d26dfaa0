import pytest
import torch
import torch.nn.functional as F
from torch import nn

import idbench.projections as projections
from idbench.errors import IdbenchError
from idbench.subspace import FlatLayout, SubspaceModel


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 4))  # D = 484


def separable_task(n: int = 600):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 10, generator=gen)
    teacher = torch.randn(10, 4, generator=gen)
    return x, (x @ teacher).argmax(1)


def train_subspace(d: int, projection: str, steps: int = 300) -> float:
    x, y = separable_task()
    model = SubspaceModel(mlp(), d=d, projection=projection, seed=0)
    opt = torch.optim.Adam([model.z], lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return float((model(x).argmax(1) == y).float().mean())


@pytest.mark.parametrize("name", projections.list())
def test_subspace_training_learns_with_d_well_below_D(name):
    assert train_subspace(d=100, projection=name) > 0.95


@pytest.mark.parametrize("name", projections.list())
def test_one_direction_is_not_enough(name):
    assert train_subspace(d=1, projection=name, steps=150) < 0.75


def test_starts_at_the_modules_own_initialisation_and_only_z_trains():
    net = mlp()
    x = torch.randn(5, 10)
    expected = net(x)
    model = SubspaceModel(net, d=8, projection="fastfood", seed=1)
    assert torch.equal(model(x), expected)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(trainable) == 1 and trainable[0] is model.z and model.z.numel() == 8
    assert torch.count_nonzero(model.z) == 0


def test_gradient_reaches_z_through_the_adjoint():
    net = mlp()
    model = SubspaceModel(net, d=6, projection="dense", seed=2)
    x, y = separable_task(20)
    F.cross_entropy(model(x), y).backward()
    # d loss / d z = P^T (d loss / d theta) at theta0
    theta = FlatLayout.of(net).flatten(net).requires_grad_(True)
    params = FlatLayout.of(net).unflatten(theta)
    loss = F.cross_entropy(torch.func.functional_call(net, params, (x,)), y)
    (g,) = torch.autograd.grad(loss, theta)
    assert torch.allclose(model.z.grad, model.projections[0].adjoint(g), atol=1e-6)


def test_batchnorm_buffers_keep_updating():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    model = SubspaceModel(net, d=4, projection="sparse", seed=0)
    before = net[1].running_mean.clone()
    model(torch.randn(32, 10) + 3.0)
    assert not torch.allclose(net[1].running_mean, before)
    assert int(net[1].num_batches_tracked) == 1


def test_equal_compartments_each_have_their_own_basis():
    model = SubspaceModel(mlp(), d=5, projection="dense", seed=0, compartments=3)
    assert [e - s for s, e in model.bounds] == [162, 161, 161]
    assert model.d_total == 15 and len(model.projections) == 3
    m0, m1 = (p.matrix for p in model.projections[:2])
    assert not torch.allclose(m0[:161], m1)
    info = model.info()
    assert (info.directions, info.d_total, info.n_compartments, info.D) == ((5,) * 3, 15, 3, 484)


def test_layer_compartments_hold_a_layers_weight_and_bias_and_share_d():
    model = SubspaceModel(mlp(), d=4, projection="fastjl", seed=0, compartments="layer")
    assert [e - s for s, e in model.bounds] == [320 + 32, 128 + 4]
    assert model.directions == (2, 2) and model.d_total == 4  # d is the total
    model.z.data.normal_()
    moved = (model.theta() - model.theta0).abs()
    for start, end in model.bounds:  # every compartment moves under its own coordinates
        assert moved[start:end].sum() > 0


def test_compartment_errors():
    with pytest.raises(IdbenchError, match="across 2 layer compartments.*at least one direction"):
        SubspaceModel(mlp(), d=1, projection="dense", compartments="layer")
    with pytest.raises(IdbenchError, match="more than the 484 parameters"):
        SubspaceModel(mlp(), d=1, projection="dense", compartments=485)
    with pytest.raises(IdbenchError, match="positive integer or 'layer'"):
        SubspaceModel(mlp(), d=1, projection="dense", compartments="block")
    with pytest.raises(IdbenchError, match="d = 485 is larger than compartment 0 .484"):
        SubspaceModel(mlp(), d=485, projection="dense")
