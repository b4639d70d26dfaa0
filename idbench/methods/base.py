"""What one training step does: the interface every method implements.

The trainer owns the loop (batches, schedule, evaluation, divergence); a method owns the update.
``fpd`` (fixed projection descent, Li et al. 2018) trains z of a :class:`~idbench.subspace.SubspaceModel`
with an ordinary optimiser; the full-space baseline is the same rule on all parameters. Methods
that redraw their basis every step (``rbd``) or estimate the gradient (``nes``) work on the plain
network instead and set ``uses_subspace_model = False``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from idbench.registry import Registry
from idbench.runinfo import Optimiser, SubspaceInfo

LossFn = Callable[[nn.Module], torch.Tensor]  # mean loss of the current batch under a module

# each method module registers its class; callers supply the model and the run spec
METHODS: "Registry[Method]" = Registry("method", context=("model", "run_spec"))


@dataclass(frozen=True)
class BatchLoss:
    """The loss of one training batch: a :data:`LossFn` (``batch(module)`` is the mean loss of the
    batch under ``module``) that also exposes the batch and the loss of (outputs, targets), for step
    rules that need single examples (``optimizer: ngd``)."""

    x: torch.Tensor
    y: torch.Tensor
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

    def __call__(self, module: nn.Module) -> torch.Tensor:
        return self.loss(module(self.x), self.y)


class Method:
    """A step rule. ``step`` applies one update at learning rate ``lr`` and returns the batch loss."""

    name: ClassVar[str]
    uses_subspace_model: ClassVar[bool] = True
    uses_optimizer: ClassVar[bool] = True  # False: the method takes its own steps (no optimizer)

    def __init__(self, model: nn.Module, run_spec: Any) -> None:
        self.model, self.spec = model, run_spec

    def step(self, loss_fn: LossFn, lr: float) -> torch.Tensor:
        raise NotImplementedError

    def converged(self) -> bool:
        """Whether the last step found the run converged, so that further steps change nothing
        (the trainer then stops the run early)."""
        return False

    def describe(self) -> dict[str, Any]:
        """The method's own options that a result row records (``method_options``)."""
        return {}

    def optimiser(self) -> Optimiser | None:
        """The optimiser that really updates the run; None: the run spec's own."""
        return None

    def subspace_info(self) -> SubspaceInfo | None:
        """The subspace of a method that builds its own bases (rbd, nes); None: the model's
        (a :class:`~idbench.subspace.SubspaceModel`) or none (a full-space run)."""
        return None

    def grad_cosine(self) -> float | None:
        """Mean cosine between step direction and full gradient, where the method measures it."""
        return None
