"""The model registry's models: exact parameter counts, one training step each, and bad input."""

from __future__ import annotations

import copy
import functools
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import idbench.models as models
from idbench.errors import IdbenchError
from idbench.subspace import SubspaceModel
from idbench.models.lenet import LocallyConnected2d

MNIST = (1, 28, 28)
CIFAR = (3, 32, 32)
PAPER_MODELS = [
    "fc", "lenet", "untied-lenet", "fc-lenet", "fc-tied-lenet", "cnn", "resnet20", "resnet8"
]
TINY_TIMM = ["timm:test_resnet", "timm:test_vit[patch_size=4]"]


@functools.cache
def build(spec: str, shape: tuple[int, ...]) -> nn.Module:
    """Each (spec, shape) is built once per session: fc-lenet on CIFAR-10 has 16M parameters."""
    return models.create(spec, input_shape=shape, num_classes=10)


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "spec, shape, expected",
    [
        # Li et al. 2018
        ("fc", MNIST, 199_210),
        ("fc[depth=1,width=128]", MNIST, 101_770),
        ("fc[depth=1,width=128]", CIFAR, 394_634),
        ("fc", CIFAR, 656_810),
        ("fc[depth=0]", MNIST, 7_850),
        ("lenet", MNIST, 44_426),
        ("lenet", CIFAR, 62_006),
        ("untied-lenet", MNIST, 286_334),
        ("untied-lenet", CIFAR, 658_238),
        ("fc-lenet", MNIST, 3_640_574),
        ("fc-lenet", CIFAR, 16_397_726),
        ("fc-tied-lenet", MNIST, 193_370),
        ("fc-tied-lenet", CIFAR, 297_734),
        # Gressmann et al. 2020
        ("cnn", MNIST, 93_322),
        ("cnn", CIFAR, 122_570),
        # He et al. 2016: option A (zero-padding shortcuts) and option B (1x1 projections)
        ("resnet20", CIFAR, 269_722),
        ("resnet20[shortcut=B]", CIFAR, 272_474),
        ("resnet8", CIFAR, 75_290),
        ("resnet8[shortcut=B]", CIFAR, 78_042),
        ("resnet20", MNIST, 269_434),
        ("resnet8", MNIST, 75_002),
    ],
)
def test_parameter_count(spec: str, shape: tuple[int, ...], expected: int) -> None:
    assert count(build(spec, shape)) == expected


def test_every_paper_model_and_timm_is_registered() -> None:
    assert set(PAPER_MODELS) | {"timm:"} <= set(models.list())
    assert models.list("*lenet") == ["fc-lenet", "fc-tied-lenet", "lenet", "untied-lenet"]


def _specs() -> list[str]:
    # the known-answer models fit only their own data (idbench.known_answers)
    return [n for n in models.list() if n not in ("toy-sums", "planted-lstsq", "timm:")] + TINY_TIMM


def build_or_skip(spec: str, shape: tuple[int, ...]) -> nn.Module:
    try:
        return build(spec, shape)
    except IdbenchError as exc:
        # The paper models and the tiny timm models fit both; a model added elsewhere may not.
        if spec in PAPER_MODELS or spec in TINY_TIMM or "does not fit" not in str(exc):
            raise
        pytest.skip(f"{spec} does not fit {shape}")


@pytest.mark.parametrize("shape", [MNIST, CIFAR], ids=["mnist", "cifar"])
@pytest.mark.parametrize("spec", _specs())
def test_forward_backward(spec: str, shape: tuple[int, ...]) -> None:
    model = build_or_skip(spec, shape)
    model.train()
    model.zero_grad(set_to_none=True)
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    logits = model(x)
    assert logits.shape == (2, 10)
    F.cross_entropy(logits, torch.tensor([3, 7])).backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None]
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert any(g.abs().sum() > 0 for g in grads.values())


@pytest.mark.parametrize("shape", [MNIST, CIFAR], ids=["mnist", "cifar"])
@pytest.mark.parametrize("spec", _specs())
def test_forward_backward_inside_a_subspace(spec: str, shape: tuple[int, ...]) -> None:
    net = copy.deepcopy(build_or_skip(spec, shape))  # build() is cached: keep its model intact
    net.zero_grad(set_to_none=True)
    model = SubspaceModel(net, d=16, projection="sparse", seed=0)
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    F.cross_entropy(model(x), torch.tensor([3, 7])).backward()
    assert model.z.grad.shape == (16,)
    assert torch.isfinite(model.z.grad).all() and model.z.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())  # only z trains


def test_create_restores_train_mode_and_checks_output_shape() -> None:
    model = models.create("resnet8", input_shape=CIFAR, num_classes=10)
    assert model.training and all(m.training for m in model.modules())
    with pytest.raises(IdbenchError, match=r"expected \(2, 10\)"):
        models._check_fits(nn.Linear(4, 3), "linear", (4,), 10)


def test_locally_connected_with_shared_weights_is_a_convolution() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 5)
    local = LocallyConnected2d(3, 4, (9, 11), 5)  # non-square: catches a height/width mix-up
    positions = 5 * 7
    with torch.no_grad():
        local.weight.copy_(conv.weight.reshape(1, 4, 75).expand(positions, 4, 75))
        local.bias.copy_(conv.bias.reshape(4, 1).expand(4, positions))
    x = torch.randn(2, 3, 9, 11)
    torch.testing.assert_close(local(x), conv(x))


def test_untied_lenet_weights_differ_per_position() -> None:
    layer = build("untied-lenet", MNIST).layer1
    assert layer.weight.shape == (24 * 24, 6, 25)
    assert layer.bias.shape == (6, 24 * 24)
    assert not torch.equal(layer.weight[0], layer.weight[-1])


def test_fc_tied_lenet_sees_the_whole_input_from_every_position() -> None:
    model = build("fc-tied-lenet", MNIST)
    x = torch.zeros(1, *MNIST, requires_grad=True)
    model.layer1(x)[0, 0, 0, 0].backward()  # top-left output unit
    assert x.grad[0, 0, -1, -1] != 0  # depends on the bottom-right pixel
    assert model.layer1.weight.shape == (6, 1, 55, 55)
    assert model.layer2.weight.shape == (16, 6, 27, 27)


def test_fc_lenet_layers_are_dense_with_lenet_output_sizes() -> None:
    model = build("fc-lenet", MNIST)
    assert model.layer1(torch.zeros(2, *MNIST)).shape == (2, 6, 24, 24)
    assert model.layer1.linear.weight.shape == (6 * 24 * 24, 784)
    assert model.layer2.linear.weight.shape == (16 * 8 * 8, 6 * 12 * 12)


def test_unknown_model_suggests_a_name() -> None:
    with pytest.raises(IdbenchError, match="Did you mean 'lenet'"):
        models.create("lenett", input_shape=MNIST, num_classes=10)


def test_unknown_option_lists_valid_options() -> None:
    with pytest.raises(IdbenchError, match="'depht'.*depth, width"):
        models.create("fc[depht=2]", input_shape=MNIST, num_classes=10)


@pytest.mark.parametrize(
    "spec, match",
    [
        ("fc[depth=-1]", "depth must be an integer >= 0"),
        ("fc[width=0]", "width must be an integer >= 1"),
        ("fc[width=2.5]", "option width=2.5 is not of its type int"),
        ("resnet20[shortcut=C]", "shortcut must be 'A'"),
    ],
)
def test_bad_option_values(spec: str, match: str) -> None:
    with pytest.raises(IdbenchError, match=match):
        models.create(spec, input_shape=MNIST, num_classes=10)


@pytest.mark.parametrize(
    "spec, shape",
    [
        ("lenet", (1, 8, 8)),
        ("untied-lenet", (1, 15, 15)),
        ("fc-lenet", (1, 8, 8)),
        ("cnn", (1, 17, 17)),
        ("fc-tied-lenet", (1, 3, 3)),
        ("lenet", (64,)),
        ("timm:test_vit", MNIST),  # patch size 16 does not divide 28: caught by the forward check
    ],
)
def test_model_that_does_not_fit_the_input(spec: str, shape: tuple[int, ...]) -> None:
    message = f"model '{spec}' does not fit input shape {shape}"
    with pytest.raises(IdbenchError, match=re.escape(message)):
        models.create(spec, input_shape=shape, num_classes=10)


def test_smallest_fitting_inputs() -> None:
    for spec, side in [("lenet", 16), ("untied-lenet", 16), ("cnn", 18), ("fc-tied-lenet", 4)]:
        model = models.create(spec, input_shape=(1, side, side), num_classes=3)
        assert model(torch.zeros(1, 1, side, side)).shape == (1, 3)
    tabular = models.create("fc", input_shape=(64,), num_classes=10)  # fc flattens any shape
    assert count(tabular) == (64 * 200 + 200) + (200 * 200 + 200) + (200 * 10 + 10)


@pytest.mark.parametrize("num_classes", [0, -1, 2.0, True])
def test_bad_num_classes(num_classes: object) -> None:
    with pytest.raises(IdbenchError, match="num_classes"):
        models.create("fc", input_shape=MNIST, num_classes=num_classes)  # type: ignore[arg-type]


def test_unknown_timm_model_suggests_close_names() -> None:
    with pytest.raises(IdbenchError, match="Did you mean 'timm:resnet18'"):
        models.create("timm:resnet181", input_shape=CIFAR, num_classes=10)


def test_timm_refuses_pretrained_and_dataset_options() -> None:
    for option in ("pretrained=True", "in_chans=3", "img_size=64"):
        with pytest.raises(IdbenchError, match="set by idbench"):
            models.create(f"timm:test_resnet[{option}]", input_shape=CIFAR, num_classes=10)
    with pytest.raises(IdbenchError, match="'num_classes'"):  # refused by the registry itself
        models.create("timm:test_resnet[num_classes=5]", input_shape=CIFAR, num_classes=10)
    with pytest.raises(IdbenchError, match="bogus"):
        models.create("timm:test_resnet[bogus=1]", input_shape=CIFAR, num_classes=10)


def test_timm_gets_channels_classes_and_image_size() -> None:
    vit = build("timm:test_vit[patch_size=4]", MNIST)
    assert vit.patch_embed.img_size == (28, 28)
    assert vit.patch_embed.proj.in_channels == 1
    assert vit.head.out_features == 10


def test_timm_checkpoint(tmp_path) -> None:
    source = models.create("timm:test_resnet", input_shape=CIFAR, num_classes=10)
    path = tmp_path / "weights.pt"
    torch.save(source.state_dict(), path)
    spec = f"timm:test_resnet[checkpoint={path}]"
    loaded = models.create(spec, input_shape=CIFAR, num_classes=10)
    for (name, a), b in zip(source.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name

    with pytest.raises(IdbenchError, match="not found"):
        missing = tmp_path / "missing.pt"
        models.create(f"timm:test_resnet[checkpoint={missing}]", input_shape=CIFAR, num_classes=10)
    with pytest.raises(IdbenchError, match="does not load"):  # saved for 10 classes, built for 5
        models.create(spec, input_shape=CIFAR, num_classes=5)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(IdbenchError, match="does not load"):
        models.create(f"timm:test_resnet[checkpoint={garbage}]", input_shape=CIFAR, num_classes=10)
