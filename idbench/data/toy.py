"""``toy-sums``: the toy problem of Li et al. 2018 whose intrinsic dimension is known.

The model (``toy-sums`` in :mod:`idbench.models.toy`) holds D = groups x group_size parameters and
outputs only the ``groups`` sums of consecutive blocks of ``group_size`` of them; the loss is the
mean squared error of those sums against fixed targets. Only ``groups`` directions of the D-dim
space change the loss, so a random subspace of d >= groups dimensions can solve it and one of
d < groups generically cannot: d_int100 = groups (10 at the defaults, D = 1000).

The inputs carry no information: every split is ``SAMPLES`` rows of dummy zeros of shape (1,),
and every target row is the same vector of ``groups`` sums drawn from N(0, 1) with ``seed``.
A sample's score is the fraction of groups whose sum is within ``tol`` of its target, with
``tol`` absolute for targets up to 1 in size and relative beyond (``|s - t| <= tol * max(1,
|t|)``), so a score of 1.0 means solved.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from idbench.data.dataset import DATASETS
from idbench.data.dataset import Dataset, LoadContext
from idbench.errors import IdbenchError

SAMPLES = 16


@dataclass(eq=False)
class ExactTargets(Dataset):
    """Regression onto exact targets (the known-answer problems: toy-sums, planted-lstsq);
    ``score`` is the fraction of a sample's outputs within ``tol`` of their targets."""

    tol: float = 1e-2

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the outputs (batch, k) against the targets."""
        return F.mse_loss(outputs, targets)

    def score(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-sample fraction of the outputs within tolerance, shape (batch,)."""
        within = (outputs - targets).abs() <= self.tol * targets.abs().clamp_min(1.0)
        return within.float().mean(dim=-1)

    def at_chance(self, val_score: float, val_loss: float) -> bool:
        """Never: a regression has no chance level, and its divergence shows as a NaN loss."""
        return False


@DATASETS.register("toy-sums")
def toy_sums(*, ctx: LoadContext, groups: int = 10, seed: int = 0, tol: float = 1e-2) -> ExactTargets:
    """Targets for ``groups`` sums, drawn from N(0, 1) with ``seed`` (see the module docstring)."""
    if groups < 1 or tol <= 0:
        raise IdbenchError(
            f"toy-sums needs groups >= 1 and tol > 0, got groups={groups}, tol={tol}"
        )
    target = torch.randn(groups, generator=torch.Generator().manual_seed(seed))
    x = torch.zeros(SAMPLES, 1, device=ctx.device)
    y = target.to(ctx.device).expand(SAMPLES, groups).clone()
    return ExactTargets(
        name=ctx.name,
        x_train=x,
        y_train=y,
        x_val=x.clone(),
        y_val=y.clone(),
        x_test=x.clone(),
        y_test=y.clone(),
        input_shape=(1,),
        num_classes=groups,
        metric="sums-within-tol",
        tol=tol,
    )
