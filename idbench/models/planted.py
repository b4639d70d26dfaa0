"""``planted-lstsq``: the model of the planted least-squares problem (dataset ``planted-lstsq`` in
idbench.data.planted): a bias-free linear map of the D input features to one output, with its D
weights initialised to zeros so that the starting point is the same for every seed.
"""

from __future__ import annotations

import torch
from torch import nn

from idbench.models.common import MODELS


class PlantedLinear(nn.Module):
    """y = x . w, w in R^D starting at zero."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) @ self.weight).unsqueeze(1)


@MODELS.register("planted-lstsq")
def planted_lstsq(*, input_shape: tuple[int, ...], num_classes: int) -> PlantedLinear:
    """The linear model for inputs of ``input_shape`` (the dataset's D features)."""
    return PlantedLinear(int(torch.Size(input_shape).numel()))
