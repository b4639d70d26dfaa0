"""toy-sums: D parameters, of which exactly `groups` directions matter."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

import idbench.data
import idbench.models.toy  # noqa: F401 - registers the model
from idbench.errors import IdbenchError
from idbench.models import MODELS


def build(dataset: str = "toy-sums", model: str = "toy-sums"):
    ds = idbench.data.load(dataset)
    net = MODELS.create(model, input_shape=ds.input_shape, num_classes=ds.num_classes)
    return ds, net


def test_parameter_counts() -> None:
    ds, net = build()
    assert sum(p.numel() for p in net.parameters()) == 1000
    assert ds.num_classes == 10 and ds.input_shape == (1,)
    ds, net = build("toy-sums[groups=5]", "toy-sums[group_size=20]")
    assert sum(p.numel() for p in net.parameters()) == 100


def test_dataset_shapes_and_targets() -> None:
    ds = idbench.data.load("toy-sums[groups=4,seed=3]")
    assert ds.x_train.shape == (16, 1) and ds.y_train.shape == (16, 4)
    assert torch.equal(ds.y_train, ds.y_train[:1].expand(16, 4))  # one target row
    assert torch.equal(ds.y_val, ds.y_train) and torch.equal(ds.y_test, ds.y_train)
    other = idbench.data.load("toy-sums[groups=4,seed=4]")
    assert not torch.equal(other.y_train, ds.y_train)
    assert type(ds.to("cpu")) is type(ds)


def test_exact_solution_scores_one_and_a_random_point_less() -> None:
    ds, net = build()
    with torch.no_grad():
        net.weight.view(10, 100)[:, 0] = ds.y_train[0]
        net.weight.view(10, 100)[:, 1:] = 0
    out = net(ds.x_train)
    assert out.shape == (16, 10)
    assert ds.loss(out, ds.y_train).item() < 1e-12
    assert torch.equal(ds.score(out, ds.y_train), torch.ones(16))
    with torch.no_grad():
        net.weight.copy_(torch.randn(1000, generator=torch.Generator().manual_seed(0)))
    scores = ds.score(net(ds.x_train), ds.y_train)
    assert scores.shape == (16,) and (scores < 1).all()
    assert ds.loss(net(ds.x_train), ds.y_train).item() > 0.1


def test_initial_point_is_zero() -> None:
    _, net = build()
    assert torch.equal(net.weight, torch.zeros(1000))


def test_tolerance_is_absolute_then_relative() -> None:
    ds = idbench.data.load("toy-sums[groups=2,tol=0.1]")
    targets = torch.tensor([[0.5, 10.0]])
    assert torch.equal(ds.score(torch.tensor([[0.59, 10.9]]), targets), torch.tensor([1.0]))
    assert torch.equal(ds.score(torch.tensor([[0.61, 10.9]]), targets), torch.tensor([0.5]))
    assert torch.equal(ds.score(torch.tensor([[0.61, 11.1]]), targets), torch.tensor([0.0]))


@pytest.mark.parametrize("d, solvable", [(10, True), (20, True), (9, False), (5, False)])
def test_a_random_subspace_solves_it_when_d_is_at_least_groups(d: int, solvable: bool) -> None:
    ds, net = build()
    basis = torch.randn(1000, d, generator=torch.Generator().manual_seed(d), dtype=torch.float64)
    sums = basis.view(10, 100, d).sum(dim=1)  # how z moves the 10 group sums, theta0 = 0
    z = torch.linalg.lstsq(sums, ds.y_train[0].double()[:, None]).solution[:, 0]
    theta = (basis @ z).float()
    out = functional_call(net, {"weight": theta}, (ds.x_train,))
    assert (ds.score(out, ds.y_train) == 1).all() == solvable


def test_bad_options() -> None:
    with pytest.raises(IdbenchError):
        idbench.data.load("toy-sums[groups=0]")
    with pytest.raises(IdbenchError):
        MODELS.create("toy-sums[group_size=0]", input_shape=(1,), num_classes=10)
