"""planted-lstsq: inputs of planted rank k, exact linear targets, a zero-initialised linear model."""

import pytest
import torch

import idbench.data
import idbench.models
from idbench.errors import IdbenchError


def test_inputs_have_the_planted_rank_and_targets_are_exactly_linear():
    data = idbench.data.load("planted-lstsq[rank=7,features=201]")
    assert data.x_train.shape == (2 * 7 + 16, 201) and data.y_train.shape == (30, 1)
    x = torch.cat([data.x_train, data.x_val, data.x_test]).double()
    y = torch.cat([data.y_train, data.y_val, data.y_test]).double()
    assert torch.linalg.matrix_rank(x, rtol=1e-5).item() == 7  # float32 rounding aside
    w = torch.linalg.lstsq(data.x_train.double(), data.y_train.double()).solution
    assert torch.allclose(x @ w, y, atol=1e-4)  # the training set determines every prediction


def test_the_model_has_one_weight_per_feature_and_starts_at_zero():
    net = idbench.models.create("planted-lstsq", input_shape=(201,), num_classes=1)
    assert sum(p.numel() for p in net.parameters()) == 201
    assert net(torch.randn(3, 201)).abs().max() == 0


def test_bad_rank_is_one_clear_error():
    with pytest.raises(IdbenchError, match="rank <= features"):
        idbench.data.load("planted-lstsq[rank=50,features=20]")
