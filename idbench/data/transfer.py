"""Offline transfer tasks: two halves of Fashion-MNIST, for pretraining on one and fine-tuning on
the other (:mod:`idbench.theta0`), with no download.

``fashion-mnist-split[part=a]`` holds the classes 0-4 of Fashion-MNIST (T-shirt, trouser,
pullover, dress, coat), ``part=b`` the classes 5-9 (sandal, shirt, sneaker, bag, ankle boot), each
relabelled 0-4: two 5-class tasks of the same images' kind with no class in common. Both come from
the official splits (train and test filtered by class), so a model pretrained on one never saw an
image of the other. The other offline transfer, Fashion-MNIST to digits, uses scikit-learn's digits
resized to Fashion-MNIST's 28x28 (``digits[size=28]``, :mod:`idbench.data.digits`).
"""

from __future__ import annotations

import torch

from idbench.data.dataset import DATASETS, Dataset, LoadContext, image_dataset
from idbench.data.vision import FASHION_MNIST, official_splits
from idbench.errors import IdbenchError

PARTS = {"a": (0, 1, 2, 3, 4), "b": (5, 6, 7, 8, 9)}


def class_subset(images: torch.Tensor, labels: torch.Tensor,
                 classes: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """The examples of ``classes``, in their order, relabelled 0..len(classes) - 1 in the order
    ``classes`` lists them."""
    relabel = torch.full((int(labels.max()) + 1,), -1, dtype=torch.long)
    relabel[list(classes)] = torch.arange(len(classes))
    keep = relabel[labels] >= 0
    return images[keep], relabel[labels[keep]]


@DATASETS.register("fashion-mnist-split")
def fashion_mnist_split(*, ctx: LoadContext, part: str = "a", augment: bool = False) -> Dataset:
    """Half of Fashion-MNIST's classes as a 5-class task: part a (0-4) or b (5-9), relabelled."""
    if part not in PARTS:
        raise IdbenchError(f"fashion-mnist-split part must be 'a' (classes 0-4) or 'b' (classes "
                           f"5-9), got {part!r}")
    train, test = official_splits(FASHION_MNIST, ctx.root, ctx.download)
    return image_dataset(
        ctx,
        train=class_subset(*train, PARTS[part]),
        test=class_subset(*test, PARTS[part]),
        num_classes=len(PARTS[part]),
        pixel_max=255,
        augment=augment,
        crop_padding=FASHION_MNIST.crop_padding,
        flip=FASHION_MNIST.flip,
    )
