"""scikit-learn's bundled 8x8 handwritten digits: a tiny set that needs no download.

1797 images of 8x8 pixels with values 0..16, 10 classes, and no official test split. A fixed 20%
test split is drawn with seed ``TEST_SEED`` (the same for every ``split_seed``, so test results stay
comparable); the remaining 1438 images are split into train and validation like any other
dataset (``val_fraction`` of them, drawn with ``split_seed``). Defaults: 1294/144/359.

Augmentation (option ``augment=true``): random crops after padding by 1 pixel, no flips.
"""

from __future__ import annotations

import torch

from idbench.data.dataset import DATASETS
from idbench.data.dataset import Dataset, LoadContext, image_dataset, split_indices

TEST_FRACTION = 0.2
TEST_SEED = 0


@DATASETS.register("digits")
def digits(*, ctx: LoadContext, augment: bool = False) -> Dataset:
    """scikit-learn's 8x8 digits with a fixed 20% test split (see the module docstring)."""
    from sklearn.datasets import load_digits  # here, not at the top: its import takes a second

    bunch = load_digits()
    images = torch.from_numpy(bunch.images).to(torch.uint8).unsqueeze(1)
    labels = torch.from_numpy(bunch.target)
    rest, test = split_indices(len(labels), TEST_FRACTION, TEST_SEED)
    return image_dataset(
        ctx,
        train=(images[rest], labels[rest]),
        test=(images[test], labels[test]),
        num_classes=10,
        pixel_max=16,
        augment=augment,
        crop_padding=1,
        flip=False,
    )
