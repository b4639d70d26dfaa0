"""The torchvision loaders on small files written here in torchvision's formats, and Fashion-MNIST
from the Debian package's real files."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from torchvision import datasets as tv

import idbench.data
from idbench.data import vision
from idbench.data.dataset import Dataset, split_indices
from idbench.errors import IdbenchError

FASHION = Path("/usr/share/datasets/fashion-mnist")
RNG = np.random.default_rng(0)


def raw_pixels(ds: Dataset, x: torch.Tensor) -> torch.Tensor:
    """Undo the normalisation: the uint8 pixels that ``x`` was made from."""
    mean = torch.tensor(ds.mean).view(1, -1, 1, 1)
    std = torch.tensor(ds.std).view(1, -1, 1, 1)
    return ((x * std + mean) * 255).round().to(torch.uint8)


def assert_matches(
    ds: Dataset, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]
) -> None:
    """``ds`` holds exactly the written images (n, c, h, w) and labels, split with seed 0."""
    keep, held = split_indices(len(train[1]), 0.1, 0)
    x, y = torch.from_numpy(train[0]), torch.from_numpy(train[1]).long()
    assert torch.equal(raw_pixels(ds, ds.x_train), x[keep])
    assert torch.equal(raw_pixels(ds, ds.x_val), x[held])
    assert torch.equal(raw_pixels(ds, ds.x_test), torch.from_numpy(test[0]))
    assert torch.equal(ds.y_train, y[keep]) and torch.equal(ds.y_val, y[held])
    assert torch.equal(ds.y_test, torch.from_numpy(test[1]).long())
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.input_shape == tuple(train[0].shape[1:])
    channel_dims = (0, 2, 3)
    assert torch.allclose(ds.x_train.mean(channel_dims), torch.zeros(1), atol=1e-4)
    assert torch.allclose(ds.x_train.std(channel_dims, correction=0), torch.ones(1), atol=1e-4)


def images(n: int, channels: int, size: int) -> np.ndarray:
    return RNG.integers(0, 256, (n, channels, size, size), dtype=np.uint8)


@pytest.fixture
def no_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let torchvision accept the files written here: its checksums are those of the real files."""
    for cls in (tv.CIFAR10, tv.CIFAR100):
        monkeypatch.setattr(cls, "train_list", [[name, None] for name, _ in cls.train_list])
        monkeypatch.setattr(cls, "test_list", [[name, None] for name, _ in cls.test_list])
        monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": None})
    split_list = {k: [url, name, None] for k, (url, name, _) in tv.SVHN.split_list.items()}
    monkeypatch.setattr(tv.SVHN, "split_list", split_list)


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.mark.skipif(
    not FASHION.is_dir(), reason=f"{FASHION} absent: apt-get install dataset-fashion-mnist"
)
def test_fashion_mnist_loads_from_the_debian_files(tmp_path: Path) -> None:
    ds = idbench.data.load("fashion-mnist", root=tmp_path, download=False)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (54_000, 6_000, 10_000)
    assert ds.x_train.shape == (54_000, 1, 28, 28) and ds.x_test.shape == (10_000, 1, 28, 28)
    assert ds.input_shape == (1, 28, 28) and ds.num_classes == 10 and ds.metric == "accuracy"
    # Fashion-MNIST is balanced: 6000 images of each class in training, 1000 in test.
    train_labels = torch.cat([ds.y_train, ds.y_val])
    assert torch.equal(torch.bincount(train_labels, minlength=10), torch.full((10,), 6000))
    assert torch.equal(torch.bincount(ds.y_test, minlength=10), torch.full((10,), 1000))
    assert abs(ds.x_train.mean().item()) < 1e-4 and abs(ds.x_train.std().item() - 1) < 1e-4
    assert abs(ds.x_test.mean().item()) < 0.05  # same statistics, different images
    assert ds.x_train.min() < -0.5 and ds.x_train.max() > 2  # really normalised pixels
    assert list(tmp_path.iterdir()) == []  # nothing written to the root


def test_mnist_reads_torchvision_idx_files(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    train = (images(50, 1, 28), RNG.integers(0, 10, 50, dtype=np.uint8))
    test = (images(20, 1, 28), RNG.integers(0, 10, 20, dtype=np.uint8))
    for prefix, (x, y) in (("train", train), ("t10k", test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", x[:, 0])
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", y)
    ds = idbench.data.load("mnist", root=tmp_path, download=False)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (45, 5, 20)
    assert ds.input_shape == (1, 28, 28) and ds.num_classes == 10
    assert_matches(ds, train, test)


def write_pickle(path: Path, obj: object) -> None:
    path.write_bytes(pickle.dumps(obj))


def test_cifar10_reads_torchvision_batches(tmp_path: Path, no_md5: None) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = [(images(8, 3, 32), RNG.integers(0, 10, 8)) for _ in range(5)]
    for i, (x, y) in enumerate(batches, start=1):
        write_pickle(folder / f"data_batch_{i}", {"data": x.reshape(8, -1), "labels": y.tolist()})
    test = (images(6, 3, 32), RNG.integers(0, 10, 6))
    test_batch = {"data": test[0].reshape(6, -1), "labels": test[1].tolist()}
    write_pickle(folder / "test_batch", test_batch)
    write_pickle(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    ds = idbench.data.load("cifar10", root=tmp_path, download=False)
    train = (np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches]))
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (36, 4, 6)
    assert ds.input_shape == (3, 32, 32) and ds.num_classes == 10 and ds.flip
    assert len(ds.mean) == 3 and len(ds.std) == 3
    assert_matches(ds, train, test)


def test_cifar100_reads_fine_labels(tmp_path: Path, no_md5: None) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    train = (images(30, 3, 32), RNG.integers(0, 100, 30))
    test = (images(7, 3, 32), RNG.integers(0, 100, 7))
    for name, (x, y) in (("train", train), ("test", test)):
        write_pickle(folder / name, {"data": x.reshape(len(y), -1), "fine_labels": y.tolist()})
    write_pickle(folder / "meta", {"fine_label_names": [f"c{i}" for i in range(100)]})
    ds = idbench.data.load("cifar100", root=tmp_path, download=False)
    assert ds.num_classes == 100 and ds.input_shape == (3, 32, 32)
    assert_matches(ds, train, test)


def test_svhn_reads_mat_files_and_maps_label_10_to_0(tmp_path: Path, no_md5: None) -> None:
    splits = {}
    for name, n in (("train", 20), ("test", 9)):
        x = images(n, 3, 32)
        y = RNG.integers(1, 11, n)  # SVHN's labels: 1..10, where 10 is the digit 0
        y[0] = 10
        mat = {"X": x.transpose(2, 3, 1, 0), "y": y[:, None]}  # (h, w, c, n) and (n, 1)
        scipy.io.savemat(tmp_path / f"{name}_32x32.mat", mat)
        splits[name] = (x, np.where(y == 10, 0, y))
    ds = idbench.data.load("svhn", root=tmp_path, download=False)
    assert ds.num_classes == 10 and not ds.flip and ds.crop_padding == 4
    assert_matches(ds, splits["train"], splits["test"])


def test_missing_dataset_offline_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(IdbenchError) as err:
        idbench.data.load("cifar10", root=tmp_path, download=False)
    message = str(err.value)
    assert "downloading is off" in message and "download" in message
    assert str(tmp_path / "cifar-10-batches-py") in message


def test_idbench_offline_forbids_downloading_by_default(tmp_path: Path) -> None:
    with pytest.raises(IdbenchError, match="IDBENCH_OFFLINE"):
        idbench.data.load("cifar100", root=tmp_path)  # download=None: the env says offline


def test_missing_fashion_mnist_names_the_debian_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vision, "SYSTEM_DATASETS", tmp_path / "no-system-copies")
    with pytest.raises(IdbenchError, match="apt-get install dataset-fashion-mnist"):
        idbench.data.load("fashion-mnist", root=tmp_path, download=False)


def test_corrupt_files_are_an_idbench_error(tmp_path: Path, no_md5: None) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [n for n, _ in tv.CIFAR10.train_list + tv.CIFAR10.test_list] + ["batches.meta"]:
        (folder / name).write_bytes(b"not a pickle")
    with pytest.raises(IdbenchError, match="cannot read dataset 'cifar10'"):
        idbench.data.load("cifar10", root=tmp_path, download=False)


def test_corrupt_system_copy_is_an_idbench_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "fashion-mnist"
    copy.mkdir()
    for prefix in ("train", "t10k"):
        for kind in ("images-idx3", "labels-idx1"):
            (copy / f"{prefix}-{kind}-ubyte.gz").write_bytes(b"truncated")
    monkeypatch.setattr(vision, "SYSTEM_DATASETS", tmp_path)
    with pytest.raises(IdbenchError, match="cannot read dataset 'fashion-mnist'"):
        idbench.data.load("fashion-mnist", root=tmp_path / "root", download=False)


def test_unknown_dataset_and_option_are_idbench_errors() -> None:
    with pytest.raises(IdbenchError, match="Did you mean 'fashion-mnist'"):
        idbench.data.load("fashion-mnst")
    with pytest.raises(IdbenchError, match="augment"):
        idbench.data.load("cifar10[agument=true]")
