"""CIFAR ResNets (He et al. 2016, "Deep Residual Learning for Image Recognition", Section 4.2).

A 3x3 convolution with 16 maps, three stages of ``n`` basic blocks with 16, 32 and 64 maps (the
last two start with stride 2), global average pooling and the classifier: depth 6n + 2. BatchNorm
after every convolution; convolutions use He et al.'s initialisation. Where a block changes the
shape, the shortcut is

* option A (default, the paper's CIFAR choice): parameter-free, subsample and zero-pad the extra
  channels. ``resnet20`` has D = 269,722 for 10 classes (the "0.27M" of the paper), ``resnet8``
  75,290.
* option B: a 1x1 convolution with BatchNorm (projection), +2,752 parameters: ``resnet20`` has
  D = 272,474, ``resnet8`` 78,042.

Designed for 32x32 inputs; the pooling is global, so other image sizes work too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from idbench.errors import IdbenchError
from idbench.models.common import MODELS
from idbench.models.common import image_shape


class ShortcutA(nn.Module):
    """Option A shortcut: keep every ``stride``-th pixel, append ``extra`` zero channels (half in
    front, half behind)."""

    def __init__(self, stride: int, extra: int) -> None:
        super().__init__()
        self.stride = stride
        self.pad = (0, 0, 0, 0, extra // 2, extra - extra // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, :: self.stride, :: self.stride], self.pad)


class BasicBlock(nn.Module):
    """Two 3x3 conv + BatchNorm layers with a residual connection, ReLU after the sum."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, shortcut: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = (
                ShortcutA(stride, out_channels - in_channels)
                if shortcut == "A"
                else nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                    nn.BatchNorm2d(out_channels),
                )
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet of depth 6 * ``blocks_per_stage`` + 2 for small images."""

    def __init__(
        self, channels: int, num_classes: int, blocks_per_stage: int, shortcut: str
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()
        )
        blocks = []
        in_channels = 16
        for stage, width in enumerate((16, 32, 64)):
            for i in range(blocks_per_stage):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(in_channels, width, stride, shortcut))
                in_channels = width
        self.blocks = nn.Sequential(*blocks)
        self.classifier = nn.Linear(64, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.classifier(x.mean(dim=(2, 3)))


def _cifar_resnet(
    model: str, input_shape: tuple[int, ...], num_classes: int, blocks_per_stage: int, shortcut: str
) -> nn.Module:
    """Validate the options shared by the CIFAR ResNets and build one."""
    channels, _, _ = image_shape(model, input_shape)
    if shortcut not in ("A", "B"):
        raise IdbenchError(
            f"model {model!r}: option shortcut must be 'A' (zero-padding identity) or "
            f"'B' (1x1 projection), got {shortcut!r}"
        )
    return CifarResNet(channels, num_classes, blocks_per_stage, shortcut)


@MODELS.register("resnet20")
def resnet20(*, input_shape: tuple[int, ...], num_classes: int, shortcut: str = "A") -> nn.Module:
    """ResNet-20 for CIFAR (He et al. 2016): D = 269,722 for 10 classes (272,474 with
    shortcut=B)."""
    return _cifar_resnet("resnet20", input_shape, num_classes, 3, shortcut)


@MODELS.register("resnet8")
def resnet8(*, input_shape: tuple[int, ...], num_classes: int, shortcut: str = "A") -> nn.Module:
    """ResNet-8 for CIFAR (He et al. 2016 family, one block per stage): D = 75,290 for 10 classes
    (78,042 with shortcut=B)."""
    return _cifar_resnet("resnet8", input_shape, num_classes, 1, shortcut)
