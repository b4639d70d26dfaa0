"""MNIST, Fashion-MNIST, CIFAR-10, CIFAR-100 and SVHN through torchvision's dataset classes.

torchvision reads (and, where allowed, downloads) the files in its own layout under the data root:
``MNIST/raw``, ``FashionMNIST/raw``, ``cifar-10-batches-py``, ``cifar-100-python``, and SVHN's
``train_32x32.mat``/``test_32x32.mat`` directly in the root. The order of looking is:

1. the files in the data root;
2. a system-wide copy, where a package installs one (Debian's ``dataset-fashion-mnist`` puts the
   real Fashion-MNIST idx files in /usr/share/datasets/fashion-mnist); it is read in place, so no
   network and no writing outside the root is needed;
3. torchvision's download into the root, when downloading is allowed.

Anything else is an :class:`~idbench.errors.IdbenchError` that says how to get the data.

Augmentation (option ``augment=true``): random crops after padding by 4 pixels (32x32 images) or
2 pixels (28x28), plus horizontal flips for CIFAR only (flipped digits are other digits). Two
options change it where a published protocol differs: ``padding=P`` pads P pixels instead, and
``brightness=B`` shifts each augmented image by a random offset in [-B, B] (pixel units, images in
[0, 1]), e.g. ``fashion-mnist[augment=true,padding=3,brightness=0.5]``, the augmentation of the
random-bases study's 28x28 images (TensorFlow: pad to 34x34, random crop, random_brightness 0.5).
Both are options of the spec, so a run that sets them has its own key, and one that does not keeps
the key it always had.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from idbench.data.dataset import DATASETS
from idbench.data.dataset import Dataset, LoadContext, image_dataset
from idbench.data.files import read_idx
from idbench.errors import IdbenchError

Splits = tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


SYSTEM_DATASETS = Path("/usr/share/datasets")  # where Debian's dataset-* packages install


@dataclass(frozen=True)
class SystemCopy:
    """A copy of a dataset's idx files that a system package installs, and that package's name."""

    folder: str  # relative to SYSTEM_DATASETS
    package: str


@dataclass(frozen=True)
class Source:
    """One torchvision dataset: its class, where its files go under the root, how to augment it."""

    name: str
    torchvision_class: str  # name in torchvision.datasets
    folder: str  # where torchvision keeps the files, relative to the data root
    num_classes: int
    crop_padding: int
    flip: bool
    system_copy: SystemCopy | None = None


MNIST = Source("mnist", "MNIST", "MNIST/raw", 10, crop_padding=2, flip=False)
FASHION_MNIST = Source(
    "fashion-mnist",
    "FashionMNIST",
    "FashionMNIST/raw",
    10,
    crop_padding=2,
    flip=False,
    system_copy=SystemCopy("fashion-mnist", "dataset-fashion-mnist"),
)
CIFAR10 = Source("cifar10", "CIFAR10", "cifar-10-batches-py", 10, crop_padding=4, flip=True)
CIFAR100 = Source("cifar100", "CIFAR100", "cifar-100-python", 100, crop_padding=4, flip=True)
SVHN = Source("svhn", "SVHN", ".", 10, crop_padding=4, flip=False)
SOURCES = (MNIST, FASHION_MNIST, CIFAR10, CIFAR100, SVHN)  # where each one's files are looked for


def _read_split(
    source: Source, root: Path, train: bool, download: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images (n, c, h, w), labels) of one official split, read by torchvision."""
    from torchvision import datasets as tv  # here, not at the top: its import takes over a second

    cls = getattr(tv, source.torchvision_class)
    if cls is tv.SVHN:
        svhn = cls(str(root), split="train" if train else "test", download=download)
        return torch.from_numpy(svhn.data).contiguous(), torch.from_numpy(svhn.labels)
    ds = cls(str(root), train=train, download=download)
    if isinstance(ds, tv.MNIST):
        return ds.data.unsqueeze(1), ds.targets
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # CIFAR keeps NHWC
    return images, torch.tensor(ds.targets)


def _read_torchvision(source: Source, root: Path, download: bool) -> Splits:
    return _read_split(source, root, True, download), _read_split(source, root, False, download)


def _read_idx_folder(folder: Path) -> Splits:
    def split(prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
        images = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz").unsqueeze(1)
        return images, read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz").long()

    return split("train"), split("t10k")


def _unreadable(source: Source, where: Path, exc: Exception) -> IdbenchError:
    return IdbenchError(
        f"cannot read dataset {source.name!r} from {where}: {type(exc).__name__}: {exc}. "
        "Check that the folder is readable, or delete the damaged files and download again"
    )


def official_splits(source: Source, root: Path, download: bool) -> Splits:
    """The official (train, test) splits, from the root, a system copy, or a download."""
    folder = root / source.folder
    not_found = "no such folder"  # checked first: importing torchvision takes over a second
    if folder.is_dir():
        try:
            return _read_torchvision(source, root, download=False)
        except RuntimeError as exc:  # torchvision's "Dataset not found or corrupted"
            not_found = f"torchvision: {exc}"
        except Exception as exc:  # any failure of the readers on files that are there
            raise _unreadable(source, folder, exc) from exc

    copy = source.system_copy
    if copy is not None and (SYSTEM_DATASETS / copy.folder).is_dir():
        try:
            return _read_idx_folder(SYSTEM_DATASETS / copy.folder)
        except Exception as exc:
            raise _unreadable(source, SYSTEM_DATASETS / copy.folder, exc) from exc

    how = f"put torchvision's files for it in {folder}"
    if copy is not None:
        how += f", or install the system package: apt-get install {copy.package}"
    if not download:
        raise IdbenchError(
            f"dataset {source.name!r} is not in {folder} ({not_found}) and downloading is off "
            f"(download=False or IDBENCH_OFFLINE=1): run once with downloading allowed, or {how}"
        )
    try:
        return _read_torchvision(source, root, download=True)
    except Exception as exc:
        raise IdbenchError(
            f"downloading dataset {source.name!r} into {folder} failed: "
            f"{type(exc).__name__}: {exc}. Check the network, or {how}"
        ) from exc


def check_augmentation(name: str, augment: bool, padding: int | None, brightness: float) -> None:
    """``padding`` and ``brightness`` are augmentation settings: a non-negative number each,
    and only with ``augment=true`` (without it they would change nothing): an IdbenchError
    otherwise."""
    if padding is not None and padding < 0:
        raise IdbenchError(f"dataset {name!r}: padding must be >= 0 pixels, got {padding}")
    if brightness < 0:
        raise IdbenchError(f"dataset {name!r}: brightness must be >= 0, got {brightness}")
    if not augment and (padding is not None or brightness):
        raise IdbenchError(f"dataset {name!r}: padding and brightness set how training batches "
                           "are augmented: add augment=true, or drop them")


def _load(source: Source, ctx: LoadContext, augment: bool, padding: int | None = None,
          brightness: float = 0.0) -> Dataset:
    """``source``'s official splits as a :class:`Dataset`, augmented as ``source`` says, or with
    the ``padding`` and ``brightness`` given."""
    check_augmentation(source.name, augment, padding, brightness)
    train, test = official_splits(source, ctx.root, ctx.download)
    return image_dataset(
        ctx,
        train=train,
        test=test,
        num_classes=source.num_classes,
        pixel_max=255,
        augment=augment,
        crop_padding=source.crop_padding if padding is None else padding,
        flip=source.flip,
        brightness=brightness,
    )


@DATASETS.register(MNIST.name)
def mnist(*, ctx: LoadContext, augment: bool = False, padding: int | None = None,
          brightness: float = 0.0) -> Dataset:
    """MNIST: torchvision's MNIST (28x28 handwritten digits, 10 classes)."""
    return _load(MNIST, ctx, augment, padding, brightness)


@DATASETS.register(FASHION_MNIST.name)
def fashion_mnist(*, ctx: LoadContext, augment: bool = False, padding: int | None = None,
                  brightness: float = 0.0) -> Dataset:
    """fashion-mnist: torchvision's FashionMNIST (28x28 clothing images, 10 classes)."""
    return _load(FASHION_MNIST, ctx, augment, padding, brightness)


@DATASETS.register(CIFAR10.name)
def cifar10(*, ctx: LoadContext, augment: bool = False, padding: int | None = None,
            brightness: float = 0.0) -> Dataset:
    """cifar10: torchvision's CIFAR10 (32x32 colour images, 10 classes)."""
    return _load(CIFAR10, ctx, augment, padding, brightness)


@DATASETS.register(CIFAR100.name)
def cifar100(*, ctx: LoadContext, augment: bool = False, padding: int | None = None,
             brightness: float = 0.0) -> Dataset:
    """cifar100: torchvision's CIFAR100 (32x32 colour images, 100 classes)."""
    return _load(CIFAR100, ctx, augment, padding, brightness)


@DATASETS.register(SVHN.name)
def svhn(*, ctx: LoadContext, augment: bool = False, padding: int | None = None,
         brightness: float = 0.0) -> Dataset:
    """svhn: torchvision's SVHN (32x32 house-number digits, 10 classes)."""
    return _load(SVHN, ctx, augment, padding, brightness)
