"""Fully connected ReLU network, the first model of Li et al. 2018 ("Measuring the Intrinsic
Dimension of Objective Landscapes", arXiv:1804.08838).

The input is flattened, so any input shape works (images, tabular features). The paper's MNIST
network 784-200-200-10 is ``fc`` with its defaults (D = 199,210).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from idbench.models.common import MODELS
from idbench.models.common import check_int


class FC(nn.Module):
    """Flatten, then ``depth`` hidden layers Linear(width) + ReLU, then a linear classifier."""

    def __init__(self, in_features: int, num_classes: int, depth: int, width: int) -> None:
        super().__init__()
        widths = [in_features] + [width] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))
        self.classifier = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.classifier(x)


@MODELS.register("fc")
def fc(
    *, input_shape: tuple[int, ...], num_classes: int, depth: int = 2, width: int = 200
) -> nn.Module:
    """Fully connected network with ``depth`` hidden layers of ``width`` units (Li et al. 2018).

    ``depth=0`` is a linear (softmax regression) model.
    """
    depth = check_int("fc", "depth", depth, 0)
    width = check_int("fc", "width", width, 1)
    return FC(math.prod(input_shape), num_classes, depth, width)
