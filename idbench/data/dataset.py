"""The Dataset every loader returns: whole splits as tensors on the device, plus loss and score.

Datasets are small enough (MNIST to SVHN) to live on the device as a few tensors, so training
draws batches by indexing instead of running DataLoader workers. Images are normalised once, per
channel, with the mean and standard deviation of the *train* split (validation and test are
normalised with the same statistics, as if they were unseen data).

Splits: the dataset's official training split is divided at random into train and validation
(``val_fraction`` of it, drawn with ``split_seed``); the official test split is kept apart and is
never used to decide anything.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from idbench.errors import IdbenchError
from idbench.registry import Registry

# each loader module registers its datasets; callers supply the LoadContext
DATASETS: "Registry[Dataset]" = Registry("dataset", context=("ctx",))

_TENSORS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


@dataclass(frozen=True)
class LoadContext:
    """What :func:`idbench.data.load` hands every dataset factory besides the spec's options."""

    name: str  # the canonical spec, recorded as Dataset.name
    root: Path  # data root (see idbench.data.files.data_root)
    download: bool  # whether a missing dataset may be downloaded
    device: torch.device
    val_fraction: float
    split_seed: int


@dataclass(eq=False)
class Dataset:
    """A classification task as tensors; subclasses override :meth:`loss` and :meth:`score`.

    The trainer uses only ``loss`` (scalar, minimised) and ``score`` (per-sample performance in
    [0, 1], averaged into the run's performance), so any task plugs in through them.

    Augmentation (``augment=True``) is the one of the published CIFAR studies: pad by
    ``crop_padding`` black pixels and crop back at a random offset, then flip horizontally with
    probability 1/2 when ``flip``; with ``brightness`` b > 0, each image is then shifted by one
    offset drawn uniformly from [-b, b] in pixel units (TensorFlow's ``random_brightness``, as the
    random-bases study augmented its 28x28 images). ``mean`` and ``std`` are the per-channel
    normalisation statistics in pixel units ([0, 1]); they give the padding its black value and
    turn a brightness offset into normalised units.
    """

    name: str
    x_train: torch.Tensor = field(repr=False)
    y_train: torch.Tensor = field(repr=False)
    x_val: torch.Tensor = field(repr=False)
    y_val: torch.Tensor = field(repr=False)
    x_test: torch.Tensor = field(repr=False)
    y_test: torch.Tensor = field(repr=False)
    input_shape: tuple[int, ...]
    num_classes: int
    metric: str = "accuracy"
    augment: bool = False
    crop_padding: int = 0
    flip: bool = False
    brightness: float = 0.0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of logits ``outputs`` (batch, classes) against class indices."""
        return F.cross_entropy(outputs, targets)

    def score(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-sample accuracy, shape (batch,): 1.0 where the arg-max class is the target."""
        return (outputs.argmax(dim=-1) == targets).float()

    def at_chance(self, val_score: float, val_loss: float) -> bool:
        """Whether a trained model is no better than chance: a validation loss no lower than the
        uniform prediction's (ln C, less 0.01) and an accuracy of at most 1.5 / C. A network that
        collapsed to constant outputs under too large a rate ends so without any NaN; a network
        that learned anything, however little, does not."""
        C = self.num_classes
        return C > 1 and val_loss >= math.log(C) - 0.01 and val_score <= 1.5 / C

    def augment_batch(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A randomly cropped (flipped, brightened) copy of the image batch ``x``; ``x`` itself
        when off.

        Random offsets are drawn on ``generator``'s device, so a seeded generator gives the same
        batch on any device; the augmentation itself runs as tensor ops on ``x``'s device.
        """
        if not self.augment:
            return x
        n, channels, height, width = x.shape
        if self.crop_padding:
            p = self.crop_padding
            black = torch.tensor(
                [-m / s for m, s in zip(self.mean, self.std)], dtype=x.dtype, device=x.device
            )
            padded = black.view(1, channels, 1, 1).expand(n, -1, height + 2 * p, width + 2 * p)
            padded = padded.clone()
            padded[:, :, p : p + height, p : p + width] = x
            # every window of the padded images, as a view: (n, c, 2p + 1, 2p + 1, height, width)
            windows = padded.unfold(2, height, 1).unfold(3, width, 1)
            top, left = torch.randint(
                0, 2 * p + 1, (2, n), generator=generator, device=generator.device
            ).to(x.device)
            x = windows[torch.arange(n, device=x.device), :, top, left]
        if self.flip:
            flips = torch.rand(n, generator=generator, device=generator.device).to(x.device) < 0.5
            x = torch.where(flips.view(n, 1, 1, 1), x.flip(-1), x)
        if self.brightness:
            u = torch.rand(n, generator=generator, device=generator.device).to(x.device)
            scale = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, channels, 1, 1)
            x = x + ((2 * u - 1) * self.brightness).to(x.dtype).view(n, 1, 1, 1) / scale
        return x

    def to(self, device: str | torch.device) -> Dataset:
        """A copy with every split on ``device`` (tensors already there are shared, not copied)."""
        return dataclasses.replace(self, **{k: getattr(self, k).to(device) for k in _TENSORS})


def split_indices(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint random (kept, held-out) indices of ``range(n)``; round(n * fraction) held out.

    Deterministic in ``seed`` on every machine (CPU generator).
    """
    held = round(n * fraction)
    if not 0 < held < n:
        raise IdbenchError(
            f"a fraction of {fraction} of {n} samples leaves an empty split; "
            "choose val_fraction so that both parts keep at least one sample"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[held:], order[:held]


def image_dataset(
    ctx: LoadContext,
    *,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    num_classes: int,
    pixel_max: float,
    augment: bool,
    crop_padding: int,
    flip: bool,
    brightness: float = 0.0,
) -> Dataset:
    """Split, normalise and move an image classification set given as its official splits.

    ``train`` and ``test`` are (images, labels) with integer pixels in [0, pixel_max] of shape
    (n, channels, height, width). Pixels go to the device as they are (uint8 is 4x smaller to move)
    and are converted there. ``brightness``: the largest random brightness offset of augmented
    batches, in pixel units (0: none).
    """
    keep, held = split_indices(len(train[1]), ctx.val_fraction, ctx.split_seed)
    x_all, y_all = (t.to(ctx.device) for t in train)
    keep, held = keep.to(ctx.device), held.to(ctx.device)
    x_train = x_all[keep].float().div_(pixel_max)
    mean = x_train.mean(dim=(0, 2, 3))
    std = x_train.std(dim=(0, 2, 3), correction=0)
    shift, scale = mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1)

    def normalised(x: torch.Tensor) -> torch.Tensor:
        return x.float().div_(pixel_max).sub_(shift).div_(scale)

    return Dataset(
        name=ctx.name,
        x_train=x_train.sub_(shift).div_(scale),
        y_train=y_all[keep].long(),
        x_val=normalised(x_all[held]),
        y_val=y_all[held].long(),
        x_test=normalised(test[0].to(ctx.device)),
        y_test=test[1].to(ctx.device).long(),
        input_shape=tuple(x_train.shape[1:]),
        num_classes=num_classes,
        augment=augment,
        crop_padding=crop_padding,
        flip=flip,
        brightness=brightness,
        mean=tuple(mean.tolist()),
        std=tuple(std.tolist()),
    )
