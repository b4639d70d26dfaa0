"""scikit-learn's bundled 8x8 handwritten digits: a tiny set that needs no download.

1797 images of 8x8 pixels with values 0..16, 10 classes, and no official test split. A fixed 20%
test split is drawn with seed ``TEST_SEED`` (the same for every ``split_seed``, so test results stay
comparable); the remaining 1438 images are split into train and validation like any other
dataset (``val_fraction`` of them, drawn with ``split_seed``). Defaults: 1294/144/359.

Augmentation (option ``augment=true``): random crops after padding by 1 pixel, no flips.

Option ``size``: the images resized (bilinear) to ``size`` x ``size`` pixels, e.g. 28 for a model
made for (or pretrained on) MNIST-sized images: ``digits[size=28]`` is the fine-tuning task of the
offline Fashion-MNIST -> digits transfer (:mod:`idbench.data.transfer`). Crops then pad by
``size // 8`` pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from idbench.data.dataset import DATASETS
from idbench.data.dataset import Dataset, LoadContext, image_dataset, split_indices
from idbench.errors import IdbenchError

TEST_FRACTION = 0.2
TEST_SEED = 0


@DATASETS.register("digits")
def digits(*, ctx: LoadContext, augment: bool = False, size: int = 8) -> Dataset:
    """scikit-learn's 8x8 digits with a fixed 20% test split, optionally resized to
    ``size`` x ``size`` (see the module docstring)."""
    if size < 1:
        raise IdbenchError(f"digits size must be a positive number of pixels, got {size}")
    from sklearn.datasets import load_digits  # here, not at the top: its import takes a second

    bunch = load_digits()
    images = torch.from_numpy(bunch.images).to(torch.uint8).unsqueeze(1)
    if size != 8:  # pixel values stay in [0, 16] (bilinear interpolation of them)
        images = F.interpolate(images.float(), size=(size, size), mode="bilinear",
                               align_corners=False)
    labels = torch.from_numpy(bunch.target)
    rest, test = split_indices(len(labels), TEST_FRACTION, TEST_SEED)
    return image_dataset(
        ctx,
        train=(images[rest], labels[rest]),
        test=(images[test], labels[test]),
        num_classes=10,
        pixel_max=16,
        augment=augment,
        crop_padding=max(1, size // 8),
        flip=False,
    )
