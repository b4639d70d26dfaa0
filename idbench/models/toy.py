"""``toy-sums``: the model of Li et al.'s toy problem (dataset ``toy-sums`` in idbench.data.toy).

One parameter vector of D = num_classes x group_size entries (1000 at the defaults), initialised
to zeros so that the starting point is the same for every seed; the output is the sum of each
block of ``group_size`` consecutive entries, broadcast over the batch. The input's values are
ignored: only the parameters matter, and exactly ``num_classes`` directions change the output.
"""

from __future__ import annotations

import torch
from torch import nn

from idbench.errors import IdbenchError
from idbench.models.common import MODELS


class GroupSums(nn.Module):
    """Outputs the ``groups`` block sums of its parameter vector for every sample of the batch."""

    def __init__(self, groups: int, group_size: int) -> None:
        super().__init__()
        self.groups = groups
        self.group_size = group_size
        self.weight = nn.Parameter(torch.zeros(groups * group_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sums = self.weight.view(self.groups, self.group_size).sum(dim=1)
        return sums.expand(x.shape[0], self.groups)


@MODELS.register("toy-sums")
def toy_sums(*, input_shape: tuple[int, ...], num_classes: int, group_size: int = 100) -> GroupSums:
    """The group-sums model; ``num_classes`` is the number of groups (the dataset's option)."""
    if group_size < 1:
        raise IdbenchError(f"toy-sums needs group_size >= 1, got {group_size}")
    return GroupSums(num_classes, group_size)
