"""Splits, digits, the Dataset API (loss, score, to) and where data lives."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import idbench.data
from idbench.data import digits
from idbench.data.dataset import split_indices
from idbench.data.files import data_root, download_allowed, read_idx
from idbench.errors import IdbenchError


def test_digits_sizes_add_up_to_1797() -> None:
    ds = idbench.data.load("digits")
    sizes = (len(ds.y_train), len(ds.y_val), len(ds.y_test))
    assert sum(sizes) == 1797 and sizes == (1294, 144, 359)
    assert ds.x_train.shape == (1294, 1, 8, 8) and ds.input_shape == (1, 8, 8)
    assert ds.num_classes == 10 and set(ds.y_train.tolist()) == set(range(10))
    assert ds.y_test.min() >= 0 and ds.y_test.max() <= 9
    assert abs(ds.x_train.mean().item()) < 1e-5 and abs(ds.x_train.std().item() - 1) < 1e-3
    assert ds.name == "digits" and ds.metric == "accuracy"


def test_splits_are_deterministic_in_the_seed() -> None:
    a = idbench.data.load("digits", split_seed=3)
    b = idbench.data.load("digits", split_seed=3)
    c = idbench.data.load("digits", split_seed=4)
    assert torch.equal(a.x_val, b.x_val) and torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.x_val, c.x_val)
    # The test split holds the same images whatever the split seed (normalised by other stats).
    assert a.mean != c.mean and torch.equal(a.y_test, c.y_test)
    pixels_a = a.x_test * a.std[0] + a.mean[0]
    assert torch.allclose(pixels_a, c.x_test * c.std[0] + c.mean[0], atol=1e-5)


def test_split_indices_are_disjoint_and_cover_everything() -> None:
    keep, held = split_indices(1000, 0.1, seed=7)
    assert len(held) == 100 and len(keep) == 900
    assert torch.equal(torch.cat([keep, held]).sort().values, torch.arange(1000))
    assert torch.equal(held, split_indices(1000, 0.1, seed=7)[1])
    assert not torch.equal(held, split_indices(1000, 0.1, seed=8)[1])


def test_digits_test_split_is_fixed_and_apart_from_train() -> None:
    rest, test = split_indices(1797, digits.TEST_FRACTION, digits.TEST_SEED)
    assert len(test) == 359 and not set(rest.tolist()) & set(test.tolist())


def test_val_fraction_is_honoured_and_checked() -> None:
    ds = idbench.data.load("digits", val_fraction=0.2)
    assert (len(ds.y_train), len(ds.y_val)) == (1150, 288)
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(IdbenchError, match="val_fraction"):
            idbench.data.load("digits", val_fraction=bad)
    with pytest.raises(IdbenchError, match="empty split"):
        idbench.data.load("digits", val_fraction=1e-6)


def test_loss_and_score_of_classification() -> None:
    ds = idbench.data.load("digits")
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 3.0], [5.0, 0.0, 0.0]])
    targets = torch.tensor([0, 1, 0])
    assert torch.equal(ds.score(logits, targets), torch.tensor([1.0, 0.0, 1.0]))
    assert torch.allclose(ds.loss(logits, targets), F.cross_entropy(logits, targets))
    assert ds.loss(logits, targets).shape == ()


def test_to_moves_every_split_and_keeps_the_rest() -> None:
    ds = idbench.data.load("digits[augment=true]")
    moved = ds.to("cpu")
    assert type(moved) is type(ds) and moved.name == "digits[augment=True]" and moved.augment
    assert all(t.device.type == "cpu" for t in (moved.x_train, moved.y_val, moved.x_test))


def test_list_and_registry() -> None:
    assert idbench.data.list("*mnist*") == ["fashion-mnist", "fashion-mnist-split", "mnist"]
    assert set(idbench.data.list()) == {
        "cifar10", "cifar100", "digits", "fashion-mnist", "fashion-mnist-split", "mnist",
        "planted-lstsq", "svhn", "toy-sums"
    }
    assert "svhn" in idbench.data.DATASETS


def test_data_root_and_download_policy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert data_root(tmp_path) == tmp_path
    monkeypatch.setenv("IDBENCH_DATA", str(tmp_path / "env"))
    assert data_root(None) == tmp_path / "env"
    monkeypatch.delenv("IDBENCH_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_root(None) == tmp_path / "xdg" / "idbench" / "data"
    assert download_allowed(None) is False  # the conftest sets IDBENCH_OFFLINE=1
    assert download_allowed(True) is True
    monkeypatch.delenv("IDBENCH_OFFLINE")
    assert download_allowed(None) is True and download_allowed(False) is False


def test_read_idx_checks_the_size(tmp_path: Path) -> None:
    path = tmp_path / "x-idx2-ubyte"
    path.write_bytes(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]))
    assert torch.equal(read_idx(path), torch.tensor([[1, 2, 3], [4, 5, 6]], dtype=torch.uint8))
    path.write_bytes(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2]))
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)
