"""SAID (idbench.subspace): one trainable scalar per layer scales that layer's offset, counted in d."""

import pytest
import torch
from torch import nn

import idbench.data
import idbench.projections as projections
from idbench.errors import IdbenchError
from idbench.methods.fpd import FixedProjectionDescent
from idbench.subspace import SubspaceModel
from idbench.train import RunSpec, build_model, run, train

pytestmark = pytest.mark.usefixtures("one_thread")


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 4))  # 2 layers, D = 484


def trainable(model: nn.Module) -> dict[str, int]:
    return {name: p.numel() for name, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("name", projections.list())
def test_said_with_its_scalars_at_one_is_the_plain_subspace_of_d_minus_the_layers(name):
    said = SubspaceModel(mlp(), d=12, projection=name, seed=5, said=True)
    plain = SubspaceModel(mlp(), d=10, projection=name, seed=5)
    z = torch.randn(10)
    with torch.no_grad():
        said.z.copy_(z)
        plain.z.copy_(z)
    assert torch.allclose(said.theta(), plain.theta(), rtol=0, atol=1e-6)
    assert trainable(said) == {"scales": 2, "z": 10} and said.d_total == 12
    with torch.no_grad():
        said.scales.copy_(torch.tensor([2.0, 0.0]))  # the first layer's offset doubles, the second's
    offset = said.theta() - said.theta0  # vanishes
    first = 10 * 32 + 32
    assert torch.allclose(offset[:first], 2 * (plain.theta() - plain.theta0)[:first], atol=1e-6)
    assert torch.count_nonzero(offset[first:]) == 0


def test_said_at_d_equal_to_the_layers_trains_only_the_scalars():
    data = idbench.data.load("digits")
    spec = RunSpec(model="fc[depth=1,width=16]", dataset="digits", seed=0, lr=0.1, steps=5,
                   projection="dense", d=2, said=True)
    model = build_model(spec, data)
    assert trainable(model) == {"scales": 2, "z": 0}
    method = FixedProjectionDescent(model, spec)
    assert [p for group in method.optimizer.param_groups for p in group["params"]
            if p.numel()] == [model.scales]
    result = run(spec, data)
    assert (result.d_total, result.info.subspace.said_scales) == (2, 2)
    assert result.info.subspace.directions == ()


def test_said_scalars_and_directions_both_learn_and_d_counts_them():
    data = idbench.data.load("digits")
    spec = RunSpec(model="fc[depth=1,width=16]", dataset="digits", seed=0, lr=0.1, steps=20,
                   projection="fastfood", d=30, said=True)
    model = build_model(spec, data)
    result = train(model, data, spec)
    assert result.d_total == 30 and model.z.numel() == 28
    assert not torch.equal(model.scales.detach(), torch.ones(2))
    assert torch.count_nonzero(model.z.detach()) > 0


def test_said_per_layer_compartments_split_what_the_scalars_leave():
    model = SubspaceModel(mlp(), d=12, projection="dense", compartments="layer", said=True)
    assert model.directions == (5, 5) and model.d_total == 12


def test_said_needs_d_of_at_least_its_scalars_and_no_other_method():
    with pytest.raises(IdbenchError, match="d = 1 is fewer than the 2 per-layer scalars"):
        SubspaceModel(mlp(), d=1, said=True)
    base = dict(model="fc", dataset="digits", seed=0, lr=0.1, projection="dense", d=10, said=True)
    for method in ("rbd", "nes"):
        with pytest.raises(IdbenchError, match=f"method {method} takes its own steps"):
            RunSpec(**{**base, "method": method})
    with pytest.raises(IdbenchError, match="a baseline run takes no said"):
        RunSpec(model="fc", dataset="digits", seed=0, lr=0.1, said=True)
