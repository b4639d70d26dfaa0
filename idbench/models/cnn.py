"""The small convolutional network of Gressmann et al. 2020 ("Improving Neural Network Training in
Low Dimensional Random Bases", NeurIPS 2020), the model of their random-bases-descent study.

Three valid 3x3 convolutions (32, 64, 64 maps) with ReLU, 2x2 max-pooling after the first two,
then FC 64 and the classifier: D = 93,322 on MNIST, 122,570 on CIFAR-10.
"""

from __future__ import annotations

import torch
from torch import nn

from idbench.models.common import MODELS
from idbench.models.common import does_not_fit, image_shape
from idbench.models.pooling import MaxPool2x2


class CNN(nn.Module):
    """conv3x3(32) pool conv3x3(64) pool conv3x3(64) -> FC 64 -> classifier, ReLU throughout."""

    def __init__(self, channels: int, flat_features: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 32, 3), nn.ReLU(), MaxPool2x2(),
            nn.Conv2d(32, 64, 3), nn.ReLU(), MaxPool2x2(),
            nn.Conv2d(64, 64, 3), nn.ReLU(),
        )
        self.fc = nn.Linear(flat_features, 64)
        self.classifier = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc(self.features(x).flatten(1)))
        return self.classifier(x)


@MODELS.register("cnn")
def cnn(*, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The 3-conv network of Gressmann et al. 2020 (D = 93,322 on MNIST)."""
    channels, height, width = image_shape("cnn", input_shape)
    final = [((n - 2) // 2 - 2) // 2 - 2 for n in (height, width)]
    if min(final) < 1:
        raise does_not_fit(
            "cnn",
            input_shape,
            "three valid 3x3 layers and two 2x2 poolings need at least 18x18 pixels",
        )
    return CNN(channels, 64 * final[0] * final[1], num_classes)
