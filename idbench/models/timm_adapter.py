"""Any timm model as ``timm:<name>``, e.g. ``timm:resnet18``, ``timm:test_vit[patch_size=4]``.

The model is built for the dataset: ``in_chans`` from the input channels, ``num_classes`` from the
labels, and ``img_size`` from the image size where the model takes one (vision transformers and
other fixed-grid models; convolutional networks do not). Other options in the spec go to
``timm.create_model`` unchanged. Weights are never downloaded (``pretrained=False`` always); the
``checkpoint`` option loads a local state dict instead.
"""

from __future__ import annotations

import difflib
import pickle
from pathlib import Path
from typing import Any

from torch import nn

from idbench.errors import IdbenchError
from idbench.models.common import MODELS
from idbench.models.common import image_shape

# Set by idbench from the dataset (or forbidden, for pretrained), never by the spec.
_RESERVED = ("pretrained", "num_classes", "in_chans", "img_size")


def _build(name: str, kwargs: dict[str, Any], img_size: tuple[int, int]) -> nn.Module:
    """``timm.create_model`` with ``img_size`` when the model accepts it."""
    import timm  # here, not at the top: importing timm takes seconds, and only timm: models need it

    try:
        return timm.create_model(name, **kwargs, img_size=img_size)
    except TypeError as exc:
        if "img_size" not in str(exc):
            raise
    return timm.create_model(name, **kwargs)


@MODELS.register("timm:")
def timm_model(
    *,
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    checkpoint: str | None = None,
    **options: Any,
) -> nn.Module:
    """The timm model ``name``, randomly initialised, or loaded from the local file ``checkpoint``
    (a state dict, or a dict holding one under ``state_dict``/``model``, as timm saves them)."""
    import timm

    model = f"timm:{name}"
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(repr(f'timm:{c}') for c in close)}?" if close else ""
        raise IdbenchError(
            f"unknown timm model {name!r}.{hint} List the names with timm.list_models('*pattern*')"
        )
    reserved = [key for key in _RESERVED if key in options]
    if reserved:
        raise IdbenchError(
            f"model {model!r}: option(s) {', '.join(reserved)} are set by idbench from the dataset "
            "(and weights are never downloaded: use checkpoint=<path> for local weights); "
            "remove them from the spec"
        )
    channels, height, width = image_shape(model, input_shape)
    kwargs = {"pretrained": False, "num_classes": num_classes, "in_chans": channels, **options}
    try:
        net = _build(name, kwargs, (height, width))
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
        raise IdbenchError(
            f"timm could not build {model!r} with options {options or '{}'} for input shape "
            f"{tuple(input_shape)}: {exc}"
        ) from exc
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise IdbenchError(
                f"checkpoint {checkpoint!r} for {model!r} not found: give the path of a local "
                "state-dict file (idbench never downloads weights)"
            )
        try:
            timm.models.load_checkpoint(net, str(path), strict=True)
        except (RuntimeError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as exc:
            raise IdbenchError(
                f"checkpoint {checkpoint!r} does not load into {model!r} built for "
                f"{channels} channel(s) and {num_classes} classes: {exc}"
            ) from exc
    return net
