"""Per-layer compartments (the random-bases paper's): one compartment per layer, weight and bias
together, each with its own basis; d is the total number of directions, split across the layers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import idbench.data
import idbench.models
from idbench.errors import IdbenchError
from idbench.subspace import FlatLayout, SubspaceModel, split_directions
from idbench.train import RunSpec, run

MODEL = "fc[depth=1,width=32]"  # on digits: Linear(64, 32) 2,080 and Linear(32, 10) 330 parameters


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits():
    return idbench.data.load("digits")


def net(name: str = MODEL, input_shape: tuple[int, ...] = (1, 8, 8)) -> torch.nn.Module:
    return idbench.models.create(name, input_shape=input_shape, num_classes=10)


@pytest.mark.parametrize("name", [MODEL, "fc[depth=3,width=16]", "lenet"])
def test_a_layers_weight_and_bias_share_one_compartment(name):
    model = net(name, (1, 28, 28))
    layout = FlatLayout.of(model)
    bounds, directions = layout.compartments("layer", 50)
    owners = {n.rpartition(".")[0] for n, _ in model.named_parameters()}
    assert len(bounds) == len(owners) < len(layout.names)  # fewer compartments than tensors

    def compartment(offset: int) -> int:
        return next(k for k, (start, end) in enumerate(bounds) if start <= offset < end)

    by_owner: dict[str, set[int]] = {}
    for name_, offset, shape in zip(layout.names, layout.offsets, layout.shapes):
        assert compartment(offset) == compartment(offset + shape.numel() - 1)
        by_owner.setdefault(name_.rpartition(".")[0], set()).add(compartment(offset))
    assert all(len(ks) == 1 for ks in by_owner.values())  # weight and bias: the same compartment
    assert bounds[0][0] == 0 and bounds[-1][1] == layout.D
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))  # contiguous, in order
    assert sum(directions) == 50


def test_the_split_is_equal_shares_capped_at_each_compartment_with_the_rest_redistributed():
    assert split_directions(155, [2080, 330]) == (78, 77)  # equal; the extra one to the larger
    assert split_directions(1000, [2080, 330]) == (670, 330)  # 330 < 500: all of its directions
    assert split_directions(2410, [2080, 330]) == (2080, 330)  # d = D: every direction
    # caps cascade: 2 and 10 are below their shares, the rest is shared by the two large layers
    assert split_directions(100, [2, 10, 500, 1000]) == (2, 10, 44, 44)
    assert split_directions(3, [5, 1, 7]) == (1, 1, 1)


def test_property_split_sums_to_d_never_exceeds_a_compartment_and_gives_each_one():
    rng = np.random.default_rng(13)
    for _ in range(2000):
        sizes = [int(s) for s in rng.integers(1, 3000, rng.integers(1, 9))]
        d = int(rng.integers(len(sizes), sum(sizes) + 1))
        shares = split_directions(d, sizes)
        assert sum(shares) == d
        assert all(1 <= a <= n for a, n in zip(shares, sizes))
        uncapped = [a for a, n in zip(shares, sizes) if a < n]
        assert not uncapped or max(uncapped) - min(uncapped) <= 1  # equal shares otherwise
        # a compartment trains all of its directions only when it is no larger than the shares
        assert all(a < n or not uncapped or n <= min(uncapped) + 1 for a, n in zip(shares, sizes))


def test_split_refuses_fewer_directions_than_layers_and_more_than_parameters():
    with pytest.raises(IdbenchError, match="at least one direction.*--d-min 3"):
        split_directions(2, [10, 20, 30])
    with pytest.raises(IdbenchError, match="at most its own size"):
        split_directions(61, [10, 20, 30])


def test_subspace_model_with_layer_compartments_has_one_basis_per_layer():
    sub = SubspaceModel(net(), d=500, projection="fastfood", seed=0, compartments="layer")
    assert sub.directions == (250, 250) and sub.d_total == 500 == sub.z.numel()
    assert [p.D for p in sub.projections] == [2080, 330] and [p.d for p in sub.projections] == [250, 250]
    with torch.no_grad():
        sub.z.copy_(torch.randn(500))
        moved = sub.theta() - sub.theta0
    # each layer's displacement is its own basis times its own part of z
    z1, z2 = sub.z.detach().split([250, 250])
    assert torch.allclose(moved[:2080], sub.projections[0](z1), atol=1e-5)
    assert torch.allclose(moved[2080:], sub.projections[1](z2), atol=1e-5)
    info = sub.info()
    assert (info.compartments, info.directions, info.d_total) == ("layer", (250, 250), 500)
    equal = SubspaceModel(net(), d=100, projection="fastfood", seed=0, compartments=2)
    assert equal.directions == (100, 100) and equal.d_total == 200  # K equal: d each, unchanged


@pytest.mark.parametrize("method", ["rbd", "fpd"])
def test_layer_compartments_train_at_a_d_larger_than_the_smallest_layer(method, digits):
    spec = RunSpec(model=MODEL, dataset="digits", seed=0, lr=0.5 if method == "rbd" else 0.2,
                   steps=150, projection="fastfood", d=600, compartments="layer", method=method,
                   schedule="constant", momentum=0.0)
    result = run(spec, digits)
    assert not result.diverged and result.val_score > 0.5  # chance is 0.1
    info = result.info.subspace
    assert (info.directions, info.d_total, info.compartments) == ((300, 300), 600, "layer")


def test_run_rows_record_the_directions_of_each_compartment(tmp_path):
    from idbench.config import MeasureConfig
    from idbench.measurement import measure
    from idbench.store import RunStore

    config = MeasureConfig(draws=1, model=MODEL, dataset="digits", projection="fastfood", method="rbd",
                           compartments="layer", seeds=1, steps=60, epochs=None, grid=(400,), d_max=2410,
                           baseline="global:0.5", tune_trials=0, lr=0.5, lr_subspace=0.5,
                           schedule="constant")
    row = measure(config, out=tmp_path, device="cpu")
    assert row.compartments == "layer"
    [probe] = RunStore(tmp_path).table().filter(role="probe").to_dicts()
    assert (probe["d"], probe["d_total"], probe["n_compartments"]) == (400, 400, 2)
    assert json.loads(probe["directions"]) == [200, 200]


def test_a_search_starting_below_one_direction_per_layer_is_refused_before_training(tmp_path):
    from idbench.config import MeasureConfig
    from idbench.measurement import measure

    config = MeasureConfig(draws=1, model="fc[depth=2,width=16]", dataset="digits", projection="fastfood",
                           method="rbd", compartments="layer", seeds=1, steps=10, epochs=None,
                           d_min=2, d_max=100, tune_trials=0)
    with pytest.raises(IdbenchError, match="d = 2 is fewer than the 3 layer compartments.*--d-min 3"):
        measure(config, out=tmp_path, device="cpu")
    assert not list(tmp_path.rglob("*.parquet"))  # nothing trained, nothing stored
