"""The offline transfer tasks: Fashion-MNIST's two halves and digits resized to 28x28."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import idbench.data
from idbench.data.transfer import class_subset
from idbench.errors import IdbenchError

FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_a_class_subset_keeps_those_classes_relabelled_in_the_order_given():
    labels = torch.tensor([3, 0, 7, 5, 3, 9, 5])
    images = torch.arange(7).view(7, 1, 1, 1)
    x, y = class_subset(images, labels, (5, 3))
    assert x.flatten().tolist() == [0, 3, 4, 6] and y.tolist() == [1, 0, 1, 0]


@pytest.mark.skipif(not FASHION.is_dir(),
                    reason=f"{FASHION} absent: apt-get install dataset-fashion-mnist")
def test_the_two_halves_of_fashion_mnist_are_disjoint_5_class_tasks():
    a, b = (idbench.data.load(f"fashion-mnist-split[part={p}]", download=False) for p in "ab")
    for half in (a, b):
        assert half.num_classes == 5 and half.input_shape == (1, 28, 28)
        assert half.y_test.unique().tolist() == [0, 1, 2, 3, 4]
        assert len(half.x_test) == 5000  # 1,000 test images per class
        assert len(half.x_train) + len(half.x_val) == 30000
    full = idbench.data.load("fashion-mnist", download=False)
    assert torch.equal(b.y_test, full.y_test[full.y_test >= 5] - 5)


def test_digits_resized_to_28_are_the_same_examples_and_labels():
    small, large = idbench.data.load("digits"), idbench.data.load("digits[size=28]")
    assert large.input_shape == (1, 28, 28) and small.input_shape == (1, 8, 8)
    assert torch.equal(small.y_train, large.y_train) and torch.equal(small.y_test, large.y_test)
    back = F.interpolate(large.x_test, size=(8, 8), mode="area").flatten(1)
    same = torch.nn.functional.cosine_similarity(back, small.x_test.flatten(1)).mean()
    assert same > 0.9  # each resized image is its 8x8 original, not another one


@pytest.mark.parametrize("spec, phrase", [("fashion-mnist-split[part=c]", "part must be 'a'"),
                                          ("digits[size=0]", "digits size must be a positive")])
def test_a_bad_option_of_a_transfer_task_is_one_error(spec, phrase):
    with pytest.raises(IdbenchError, match=phrase):
        idbench.data.load(spec)
