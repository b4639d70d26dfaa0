"""LeNet-5 and the three variants Li et al. 2018 ("Measuring the Intrinsic Dimension of Objective
Landscapes", arXiv:1804.08838) use to separate the two priors of a convolution:

=================  ==================  ==============  ===============  =================
model              receptive field     weights tied    D on MNIST       D on CIFAR-10
=================  ==================  ==============  ===============  =================
``lenet``          local (5x5)         yes             44,426           62,006
``untied-lenet``   local (5x5)         no              286,334          658,238
``fc-tied-lenet``  global (all input)  yes             193,370          297,734
``fc-lenet``       global (all input)  no              3,640,574        16,397,726
=================  ==================  ==============  ===============  =================

All four share one skeleton (:class:`LeNet`): layer 1 (6 maps) -> ReLU -> 2x2 max-pool -> layer 2
(16 maps) -> ReLU -> 2x2 max-pool -> FC 120 -> FC 84 -> classifier, and differ only in what the two
feature layers are. Layers use PyTorch's default initialisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from idbench.models.common import MODELS
from idbench.models.common import does_not_fit, image_shape
from idbench.models.pooling import max_pool2x2

Size = tuple[int, int]


class LocallyConnected2d(nn.Module):
    """A valid, stride-1 convolution without weight sharing: every output position has its own
    filter and its own bias (Keras' ``LocallyConnected2D``).

    Patches are gathered with :func:`torch.nn.functional.unfold` and each position is multiplied
    by its own weights in one batched ``einsum``: no Python loop over positions.
    """

    def __init__(
        self, in_channels: int, out_channels: int, in_size: Size, kernel_size: int
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.out_channels = out_channels
        self.out_size = (in_size[0] - kernel_size + 1, in_size[1] - kernel_size + 1)
        positions = self.out_size[0] * self.out_size[1]
        fan_in = in_channels * kernel_size * kernel_size
        self.weight = nn.Parameter(torch.empty(positions, out_channels, fan_in))
        self.bias = nn.Parameter(torch.empty(out_channels, positions))
        # nn.Conv2d's default initialisation draws weights and biases from U(-1/sqrt(fan_in), ...).
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = F.unfold(x, self.kernel_size)  # (batch, fan_in, positions), row-major positions
        out = torch.einsum("bip,poi->bop", patches, self.weight) + self.bias
        return out.reshape(x.shape[0], self.out_channels, *self.out_size)


class FullyConnected2d(nn.Module):
    """A dense layer from one stack of feature maps to another: every output unit sees every input
    unit, with its own weights."""

    def __init__(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.out_shape = tuple(out_shape)
        self.linear = nn.Linear(math.prod(in_shape), math.prod(out_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)).reshape(x.shape[0], *self.out_shape)


class LeNet(nn.Module):
    """The LeNet-5 skeleton around two exchangeable feature layers (see the module docstring)."""

    def __init__(
        self, layer1: nn.Module, layer2: nn.Module, flat_features: int, num_classes: int
    ) -> None:
        super().__init__()
        self.layer1 = layer1
        self.layer2 = layer2
        self.fc1 = nn.Linear(flat_features, 120)
        self.fc2 = nn.Linear(120, 84)
        self.classifier = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = max_pool2x2(torch.relu(self.layer1(x)))
        x = max_pool2x2(torch.relu(self.layer2(x)))
        x = torch.relu(self.fc1(x.flatten(1)))
        x = torch.relu(self.fc2(x))
        return self.classifier(x)


def _local_sizes(model: str, input_shape: tuple[int, ...]) -> tuple[int, Size, Size, Size]:
    """Channels and the map sizes entering layer 1, layer 2 and FC 120 for two valid 5x5 layers."""
    channels, height, width = image_shape(model, input_shape)
    pooled1 = ((height - 4) // 2, (width - 4) // 2)
    pooled2 = ((pooled1[0] - 4) // 2, (pooled1[1] - 4) // 2)
    if min(pooled2) < 1:
        raise does_not_fit(
            model,
            input_shape,
            "two valid 5x5 layers and two 2x2 poolings need at least 16x16 pixels",
        )
    return channels, (height, width), pooled1, pooled2


@MODELS.register("lenet")
def lenet(*, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """LeNet-5 (LeCun et al. 1998) with ReLU and max-pooling, as in Li et al. 2018: conv 5x5 (6),
    pool, conv 5x5 (16), pool, FC 120, FC 84, classifier. D = 44,426 on MNIST."""
    channels, _, _, pooled2 = _local_sizes("lenet", input_shape)
    return LeNet(
        nn.Conv2d(channels, 6, 5),
        nn.Conv2d(6, 16, 5),
        16 * pooled2[0] * pooled2[1],
        num_classes,
    )


@MODELS.register("untied-lenet")
def untied_lenet(*, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """LeNet with both convolutions replaced by locally connected layers (same receptive fields,
    no weight sharing), the "Untied-LeNet" of Li et al. 2018. D = 286,334 on MNIST."""
    channels, size1, pooled1, pooled2 = _local_sizes("untied-lenet", input_shape)
    return LeNet(
        LocallyConnected2d(channels, 6, size1, 5),
        LocallyConnected2d(6, 16, pooled1, 5),
        16 * pooled2[0] * pooled2[1],
        num_classes,
    )


@MODELS.register("fc-lenet")
def fc_lenet(*, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """LeNet with both convolutions replaced by dense layers with the same output sizes (global
    receptive fields, no weight sharing), the "FC-LeNet" of Li et al. 2018 (their
    ``build_MLPLeNet``). The pooling is kept. D = 3,640,574 on MNIST, 16,397,726 on CIFAR-10."""
    channels, (height, width), pooled1, pooled2 = _local_sizes("fc-lenet", input_shape)
    return LeNet(
        FullyConnected2d((channels, height, width), (6, height - 4, width - 4)),
        FullyConnected2d((6, *pooled1), (16, pooled1[0] - 4, pooled1[1] - 4)),
        16 * pooled2[0] * pooled2[1],
        num_classes,
    )


def _global_conv(in_channels: int, out_channels: int, in_size: Size) -> nn.Conv2d:
    """A convolution whose kernel sees the whole input from every output position: kernel
    2h-1 x 2w-1, zero padding h-1 x w-1 ("same" output size)."""
    height, width = in_size
    return nn.Conv2d(
        in_channels, out_channels, (2 * height - 1, 2 * width - 1), padding=(height - 1, width - 1)
    )


@MODELS.register("fc-tied-lenet")
def fc_tied_lenet(*, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """LeNet with global receptive fields but tied weights, the "FCTied-LeNet" of Li et al. 2018.

    Both convolutions get kernels large enough to see the whole input from every output position
    (2h-1 x 2w-1 with "same" zero padding: 55x55 then 27x27 on MNIST, 63x63 then 31x31 on
    CIFAR-10), so each unit is connected to all inputs while the weights stay shared; FC 120 then
    reads the whole (h/4 x w/4) map. Li et al.'s released code has no builder for this variant;
    this construction reproduces the parameter counts of the PyTorch reproduction
    github.com/AntoAndGar/Intrinsic-Dimension (``networks_arch.py``, ``FCTied_LeNet``, whose last
    "conv" has a kernel covering the whole map, i.e. is this FC 120): D = 193,370 on MNIST and
    297,734 on CIFAR-10.
    """
    channels, height, width = image_shape("fc-tied-lenet", input_shape)
    pooled1 = (height // 2, width // 2)
    pooled2 = (pooled1[0] // 2, pooled1[1] // 2)
    if min(pooled2) < 1:
        raise does_not_fit(
            "fc-tied-lenet", input_shape, "two 2x2 poolings need at least 4x4 pixels"
        )
    return LeNet(
        _global_conv(channels, 6, (height, width)),
        _global_conv(6, 16, pooled1),
        16 * pooled2[0] * pooled2[1],
        num_classes,
    )
