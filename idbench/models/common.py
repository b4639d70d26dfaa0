"""The model registry :data:`MODELS` and the checks its factories share (option values, shapes).

Every failure is an :class:`~idbench.errors.IdbenchError` that names the model, the offending value
and what to do instead, so a wrong model/dataset pairing is reported before any training starts.
"""

from __future__ import annotations

from typing import Any

from idbench.errors import IdbenchError
from idbench.registry import Registry

# each model file registers its factories; callers supply the input shape and class count
MODELS: Registry[Any] = Registry("model", context=("input_shape", "num_classes"))


def does_not_fit(model: str, input_shape: tuple[int, ...], why: str) -> IdbenchError:
    """The error for a model that cannot take inputs of ``input_shape`` (no batch axis)."""
    return IdbenchError(
        f"model {model!r} does not fit input shape {tuple(input_shape)}: {why}; "
        "pick a model for this input size or another dataset"
    )


def image_shape(model: str, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``input_shape`` as (channels, height, width); refuses anything that is not an image."""
    if len(input_shape) != 3:
        raise does_not_fit(
            model,
            input_shape,
            "it takes images shaped (channels, height, width) (fc takes any shape)",
        )
    channels, height, width = (int(n) for n in input_shape)
    return channels, height, width


def check_int(model: str, option: str, value: object, minimum: int) -> int:
    """``value`` as an int of at least ``minimum``, else an error naming the option."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise IdbenchError(
            f"model {model!r}: option {option} must be an integer >= {minimum}, got {value!r}"
        )
    return value
