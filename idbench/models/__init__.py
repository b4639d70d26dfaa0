"""The models, created by name: the networks of the published intrinsic-dimension studies and timm.

Every model is built from a spec and the dataset's shape::

    import idbench.models
    net = idbench.models.create("fc[depth=2,width=200]", input_shape=(1, 28, 28), num_classes=10)
    idbench.models.list("*lenet*")

Each model lives in a small file of its own with its registration at the bottom.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from idbench.errors import IdbenchError
# each model file registers its factories with MODELS (decorators at the bottom of the file)
from idbench.models import cnn, fc, lenet, planted, resnet, timm_adapter, toy  # noqa: F401
from idbench.models.common import MODELS, does_not_fit
from idbench.registry import Spec


def create(spec: str | Spec, *, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Build the model named by ``spec`` for inputs of ``input_shape`` (no batch axis).

    The model is checked to fit: one forward pass on a zero batch of 2 (eval mode, no gradients)
    must give logits of shape (2, num_classes), so a wrong model/dataset pairing fails here with a
    clear message rather than in the middle of a run.
    """
    if not input_shape or not all(_is_positive_int(n) for n in input_shape):
        raise IdbenchError(
            f"input shape {tuple(input_shape)} must be positive integers, e.g. (1, 28, 28)"
        )
    if not _is_positive_int(num_classes):
        raise IdbenchError(f"num_classes must be a positive integer, got {num_classes!r}")
    input_shape, num_classes = tuple(int(n) for n in input_shape), int(num_classes)
    spec = Spec.parse(spec)
    model = MODELS.create(spec, input_shape=input_shape, num_classes=num_classes)
    _check_fits(model, spec.name, input_shape, num_classes)
    return model


def _is_positive_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


def _check_fits(
    model: nn.Module, name: str, input_shape: tuple[int, ...], num_classes: int
) -> None:
    """Run one forward pass on zeros; raise IdbenchError if the model cannot take this shape."""
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, *input_shape))
    except (RuntimeError, AssertionError) as exc:
        raise does_not_fit(name, input_shape, str(exc).rstrip(".")) from exc
    finally:
        model.train(training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise IdbenchError(
            f"model {name!r} gives outputs {got} for a batch of 2 inputs of shape {input_shape}, "
            f"expected (2, {num_classes}): pick a model that ends in a {num_classes}-way classifier"
        )


def list(pattern: str = "*") -> list[str]:  # noqa: A001 - mirrors timm.list_models
    """Registered model names matching a wildcard."""
    return MODELS.list(pattern)

