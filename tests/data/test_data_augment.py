"""augment_batch: random pad-and-crop with black padding, horizontal flips and brightness; the
vision datasets' augmentation options."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import idbench.data
from idbench.data import vision
from idbench.data.dataset import Dataset
from idbench.errors import IdbenchError

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def images_dataset(*, augment: bool, crop_padding: int, flip: bool) -> Dataset:
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    y = torch.zeros(8, dtype=torch.long)
    return Dataset(
        "test", x, y, x, y, x, y, input_shape=(3, 32, 32), num_classes=10, augment=augment,
        crop_padding=crop_padding, flip=flip, mean=MEAN, std=STD,
    )


def test_off_returns_the_batch_itself() -> None:
    ds = images_dataset(augment=False, crop_padding=4, flip=True)
    assert ds.augment_batch(ds.x_train, torch.Generator().manual_seed(0)) is ds.x_train
    assert not idbench.data.load("digits").augment  # off by default


def test_deterministic_and_changes_the_batch() -> None:
    ds = images_dataset(augment=True, crop_padding=4, flip=True)
    a = ds.augment_batch(ds.x_train, torch.Generator().manual_seed(1))
    b = ds.augment_batch(ds.x_train, torch.Generator().manual_seed(1))
    c = ds.augment_batch(ds.x_train, torch.Generator().manual_seed(2))
    assert a.shape == ds.x_train.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, ds.x_train)


def test_crops_are_windows_of_the_black_padded_image() -> None:
    ds = images_dataset(augment=True, crop_padding=4, flip=False)
    x = ds.x_train
    out = ds.augment_batch(x, torch.Generator().manual_seed(3))
    padded = torch.stack([torch.full((8, 40, 40), -m / s) for m, s in zip(MEAN, STD)], dim=1)
    padded[:, :, 4:36, 4:36] = x
    shifted = 0
    for i in range(len(x)):
        windows = [
            (dy, dx) for dy in range(9) for dx in range(9)
            if torch.equal(out[i], padded[i, :, dy : dy + 32, dx : dx + 32])
        ]
        assert len(windows) == 1
        shifted += windows[0] != (4, 4)
    assert shifted > 0


def test_flips_only_mirror_whole_images() -> None:
    ds = images_dataset(augment=True, crop_padding=0, flip=True)
    x = ds.x_train
    out = ds.augment_batch(x, torch.Generator().manual_seed(0))
    flipped = [torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x)]
    kept = [torch.equal(o, xi) for o, xi in zip(out, x)]
    assert all(f != k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)


def test_loaded_datasets_choose_crop_and_flip() -> None:
    ds = idbench.data.load("digits[augment=true]")
    assert ds.augment and ds.crop_padding == 1 and not ds.flip
    out = ds.augment_batch(ds.x_train[:64], torch.Generator().manual_seed(0))
    assert out.shape == (64, 1, 8, 8) and not torch.equal(out, ds.x_train[:64])


def test_brightness_shifts_each_image_by_one_offset_within_its_bound() -> None:
    ds = dataclasses.replace(images_dataset(augment=True, crop_padding=0, flip=False),
                             brightness=0.5)
    out = ds.augment_batch(ds.x_train, torch.Generator().manual_seed(4))
    std = torch.tensor(STD).view(1, 3, 1, 1)
    offset = (out - ds.x_train) * std  # pixel units: one value per image, on every channel
    per_image = offset.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-5)
    values = per_image[:, 0]
    assert values.abs().max() <= 0.5 and len(set(values.tolist())) == len(values)
    plain = dataclasses.replace(ds, brightness=0.0)
    assert torch.equal(plain.augment_batch(ds.x_train, torch.Generator().manual_seed(4)),
                       ds.x_train)


def fake_splits(*args: object) -> tuple:
    images = torch.randint(0, 256, (60, 1, 28, 28), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    labels = torch.arange(60) % 10
    return (images, labels), (images[:10], labels[:10])


def test_padding_and_brightness_are_options_of_the_vision_datasets(monkeypatch) -> None:
    monkeypatch.setattr(vision, "official_splits", fake_splits)
    ds = idbench.data.load("fashion-mnist[augment=true,padding=3,brightness=0.5]")
    assert (ds.crop_padding, ds.brightness, ds.flip) == (3, 0.5, False)
    default = idbench.data.load("fashion-mnist[augment=true]")
    assert (default.crop_padding, default.brightness) == (2, 0.0)  # as before the options


@pytest.mark.parametrize("spec, phrase", [
    ("fashion-mnist[brightness=0.5]", "add augment=true"),
    ("mnist[padding=3]", "add augment=true"),
    ("cifar10[augment=true,brightness=-0.1]", "brightness must be >= 0"),
    ("svhn[augment=true,padding=-1]", "padding must be >= 0"),
])
def test_bad_augmentation_options_are_refused_before_loading(monkeypatch, spec: str,
                                                             phrase: str) -> None:
    monkeypatch.setattr(vision, "official_splits", lambda *a: pytest.fail("loaded the data"))
    with pytest.raises(IdbenchError, match=phrase):
        idbench.data.load(spec)
