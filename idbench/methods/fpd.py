"""Fixed projection descent: an ordinary optimiser on the trainable tensors of the model.

For a :class:`~idbench.subspace.SubspaceModel` that is z alone (Li et al. 2018); for a plain network
(the baseline) every parameter. SGD with momentum or Adam, as the run spec says.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from idbench.methods.base import LossFn, Method


class FixedProjectionDescent(Method):
    name = "fpd"

    def __init__(self, model: nn.Module, run_spec: Any) -> None:
        super().__init__(model, run_spec)
        spec = run_spec
        params = [p for p in model.parameters() if p.requires_grad]
        if spec.optimizer == "adam":
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(
                params, lr=spec.lr, weight_decay=spec.weight_decay
            )
        else:
            self.optimizer = torch.optim.SGD(
                params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay
            )

    def step(self, loss_fn: LossFn, lr: float) -> torch.Tensor:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(self.model)
        loss.backward()
        self.optimizer.step()
        return loss.detach()
