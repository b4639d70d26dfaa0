"""How a learning rate tuned at one d is carried to another, and where a tuning looks.

With unit-norm columns E[P P^T] = (d/D) I, so a plain SGD step moves theta by lr * d / D of the
gradient: ``inverse-d`` carrying keeps that step fixed (``inverse-sqrt-d`` for Adam's
per-coordinate steps; ``auto`` picks by optimiser and method). A tuning at d searches within
:data:`~idbench.lr.options.LR_WINDOW` of the baseline's rate carried there (:func:`tuning_range`).
Every probe run's row records where its rate was tuned (``lr_tuned_at``) and the rule that carried
it (``lr_carried_by``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from idbench.lr.options import LR_WINDOW, WINDOW_MOVES

if TYPE_CHECKING:
    from idbench.config import MeasureConfig


class Carry:
    """lr at d given the rate ``lr_t`` tuned at ``t``, by the config's ``lr_scaling`` rule."""

    def __init__(self, config: MeasureConfig) -> None:
        self.config = config
        self.rule = config.resolved_lr_scaling

    def __call__(self, lr_t: float, t: int, d: int) -> float:
        return self.config.subspace_lr(lr_t, t, d)

    def origin(self, t: int, d: int) -> dict[str, Any]:
        """The run-row columns saying how the rate at d came from the one tuned at t."""
        return {"lr_tuned_at": t, "lr_carried_by": self.rule}


def tuning_range(config: MeasureConfig, lr_baseline: float, D: int,
                 d: int) -> tuple[float, float]:
    """Where to tune the subspace lr at ``d``: around the baseline's lr carried from d = D to d by
    the lr scaling rule (within a factor :data:`LR_WINDOW`); the whole lr_range without a
    trained baseline (a global one)."""
    if math.isnan(lr_baseline):
        return config.lr_range
    prior = config.subspace_lr(lr_baseline, D, d)
    return prior / LR_WINDOW, prior * LR_WINDOW


def window_label(lr_baseline: float, moves: int = 0) -> str:
    """The tuning window as the measurement row's ``tune_at`` records it (empty: no window),
    with how often it may move past an end its best trial sits at (``moves``)."""
    if math.isnan(lr_baseline):
        return ""
    return f" window:{LR_WINDOW:g}" + (f" moves:{moves}" if moves else "")


def window_moves(config: MeasureConfig) -> int:
    """How often a subspace tuning of ``config`` may move its window past the end its best trial
    sits at: :data:`~idbench.lr.options.WINDOW_MOVES` where every probe is tuned (the reference
    protocol assumes no rule for where the rate lies: random bases descent's best rate, for one,
    does not follow the baseline's carried as 1/d), none elsewhere."""
    return WINDOW_MOVES if config.tune_every_probe else 0
