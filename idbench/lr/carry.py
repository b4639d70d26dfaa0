"""How a learning rate tuned at one d is carried to another, and where a tuning looks.

With unit-norm columns E[P P^T] = (d/D) I, so a plain SGD step moves theta by lr * d / D of the
gradient: ``inverse-d`` carrying keeps that step fixed (``inverse-sqrt-d`` for Adam's
per-coordinate steps). Under ``curvature`` the carried rate keeps the same fraction of the
stability limit ~2 / lambda_max(P^T H P) at theta0 (:mod:`idbench.curvature`, on the basis of the
first measured seed); a NaN estimate falls back to the rule ``auto`` picks, with one warning line.
A tuning at d searches within ``lr_window`` of the baseline's rate carried there
(:func:`tuning_range`). Every probe run's row records where its rate was tuned
(``lr_tuned_at``), the rule that carried it (``lr_carried_by``) and, under ``curvature``, the
estimate at its d (``curvature``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable


class Carry:
    """lr at d given the rate ``lr_t`` tuned at ``t``, by the config's ``lr_scaling`` rule; under
    ``curvature`` by measured lambda_max, computed once per d."""

    def __init__(self, config: Any, curvature_at: Callable[[int], float]) -> None:
        self.config = config
        self.rule = config.resolved_lr_scaling
        self.fallback = config.fallback_lr_scaling
        self._curvature_at = curvature_at
        self.lambdas: dict[int, float] = {}
        self._warned = False

    def curvature(self, d: int) -> float:
        if d not in self.lambdas:
            self.lambdas[d] = float(self._curvature_at(d))
        return self.lambdas[d]

    def rule_between(self, t: int, d: int) -> str:
        """The rule that carries from t to d: curvature unless an estimate is not usable."""
        if self.rule != "curvature":
            return self.rule
        usable = all(math.isfinite(lam) and lam > 0 for lam in (self.curvature(t), self.curvature(d)))
        if usable:
            return "curvature"
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"curvature estimate failed (lambda_max = {self.curvature(t):.3g} at d={t}, "
                f"{self.curvature(d):.3g} at d={d}): carrying the learning rate by "
                f"{self.fallback} instead", stacklevel=2)
        return self.fallback

    def __call__(self, lr_t: float, t: int, d: int) -> float:
        rule = self.rule_between(t, d)
        if rule == "curvature":
            return lr_t * self.curvature(t) / self.curvature(d)
        return self.config.subspace_lr(lr_t, t, d, rule=rule)

    def origin(self, t: int, d: int) -> dict[str, Any]:
        """The run-row columns saying how the rate at d came from the one tuned at t."""
        return {"lr_tuned_at": t, "lr_carried_by": self.rule_between(t, d),
                "curvature": self.curvature(d) if self.rule == "curvature" else None}


def tuning_range(config: Any, lr_baseline: float, D: int, d: int) -> tuple[float, float]:
    """Where to tune the subspace lr at ``d``: around the baseline's lr carried from d = D to d by
    the lr scaling rule (within a factor lr_window), else the whole lr_range."""
    if math.isnan(lr_baseline) or config.lr_window is None:
        return config.lr_range
    # no curvature estimate at d = D is made for the prior: curvature falls back to auto's rule
    rule = config.fallback_lr_scaling if config.lr_scaling == "curvature" else None
    prior = config.subspace_lr(lr_baseline, D, d, rule=rule)
    return prior / config.lr_window, prior * config.lr_window


def window_label(config: Any, lr_baseline: float) -> str:
    """The tuning window as the measurement row's ``tune_at`` records it (empty: no window)."""
    return "" if math.isnan(lr_baseline) or config.lr_window is None else \
        f" window:{config.lr_window:g}"
