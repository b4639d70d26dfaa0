"""Where the subspace learning rate is tuned, and how a tuned rate is carried to other d.

A rate tuned at one d and carried far by a scaling rule can be off by a lot: the top curvature of
P^T H P shrinks like d / D only while d is above the Hessian's effective rank, so ``inverse-d``
overshoots the stability limit below it and undershoots the best rate elsewhere. Two remedies,
each a recorded option of :class:`~idbench.config.MeasureConfig`:

- **where** (``lr_protocol: bracket``, :class:`TunedAtBracket`): tune once at d_ref and grow d
  with the carried rate until the crossing is bracketed; re-tune at the bracket's geometric
  middle when that is more than ``lr_retune_factor`` (x1.5) from where the rate was tuned, and
  search again from the bracket with the rate carried from there; re-tune once more if the
  bisection then lands more than that factor from that point. If nothing passes up to d_max at
  the carried rate, the rate is re-tuned at d_max (when that is further than the factor from the
  tuning point) and the search runs again (LeNet/sparse on Fashion-MNIST: censored at 2048 with
  the rate carried from 181, crossing at 725 with a rate tuned at every probe). The probes that
  decide the crossing so use a rate tuned near it; the reported result is the last search's,
  whose probes all share one rate rule. A search after a re-tuning starts on the lattice
  d_min x 2^k (``retune_restart: lattice``, :func:`on_lattice`), so it probes the d that a search
  from d_min probes: near the crossing the verdict depends on which d is probed (each d draws its
  own bases) more than on the rate.
- **how** (``lr_scaling: curvature``, :class:`Carry`): lr_d = lr_t * lambda_t / lambda_d with
  lambda = lambda_max(P^T H P) at theta0 (:mod:`idbench.curvature`, on the basis of the first
  measured seed), so the carried rate keeps the same fraction of the stability limit ~2 / lambda.
  A NaN estimate falls back to the rule ``auto`` would pick (inverse-d for SGD, inverse-sqrt-d for
  Adam), with one warning line.

Every probe run's row records where its rate was tuned (``lr_tuned_at``), the rule that carried it
(``lr_carried_by``) and, under ``curvature``, the estimate at its d (``curvature``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from idbench.search import SearchResult

MAX_RETUNES = 2  # re-tunings after the first tuning at d_ref


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


def on_lattice(d_min: int, d: float) -> int:
    """The largest d_min x 2^k at or below ``d`` (d_min itself below it): where a search started
    again after a re-tuning begins, so that it grows and bisects through the d that the first
    search (and tune-every-probe, from d_min) probe.

    Near the crossing a probe's verdict depends on the d probed more than on its rate: each d
    draws its own bases, and at d_int100 one ill-conditioned basis among the seeds fails a d whose
    neighbours pass, so the smallest d above which every probe passes depends on which d were
    probed. A search restarted from d_lo / 2 probes another lattice (24, 48, ..) than one from
    d_min (16, 32, 64, ..) and bisects through other d. On the known-answer family (Adam, 300
    steps) the verdicts at tune-every-probe's own bracket stay the same with its rate x0.8 to x1.25
    on 35 of 40 cells (benchmarks/rate_sensitivity.py), yet restarts at d_lo / 2 gave brackets
    that overlap tune-every-probe's on 32 of 40; restarted on the lattice, on 38 of 40
    (benchmarks/protocol_check.md).
    """
    if d <= d_min:
        return d_min
    return d_min * 2 ** math.floor(math.log2(d / d_min) + 1e-12)


@dataclass
class TunedAtBracket:
    """Tuned at d_ref, then re-tuned at the bracket of the crossing (see the module docstring)."""

    tune: Callable[[int], float]  # the tuned rate at d
    carry: Carry
    d_ref: int
    window: str
    move: float  # re-tune when the crossing lies further than this factor from the tuning point
    restart: Literal["lattice", "half"] = "lattice"  # where a search starts again (restart_at)
    tuned: list[tuple[int, float]] = field(default_factory=list)  # (d, lr) in tuning order

    def __post_init__(self) -> None:
        self.tuned.append((self.d_ref, self.tune(self.d_ref)))

    def lr_at(self, d: int) -> float:
        t, lr_t = self.tuned[-1]
        return self.carry(lr_t, t, d)

    def origin(self, d: int) -> dict[str, Any]:
        return self.carry.origin(self.tuned[-1][0], d)

    def restart_at(self, d_min: int, d: float) -> int:
        """Where a search starts again, at or below ``d``: the lattice point below it, or (half,
        the protocol before ``retune_restart``) ``d`` rounded down."""
        return on_lattice(d_min, d) if self.restart == "lattice" else max(d_min, int(d))

    def record(self) -> dict[str, Any]:
        points = ",".join(str(t) for t, _ in self.tuned)
        # rows of the half restart read as they did before retune_restart existed
        restart = "" if self.restart == "half" else f" restart:{self.restart}"
        return {"tune_at": f"bracket:{points} retune:x{self.move:g}{restart}{self.window}",
                "lr_subspace": self.tuned[-1][1], "lr_scaling": self.carry.rule}

    def search(self, search_from: Callable[[int], SearchResult], d_min: int) -> SearchResult:
        """Run ``search_from(start)`` (a full search from d = start at the current rate),
        re-tuning and searching again while the crossing lies far from the tuning point."""
        start = d_min
        while True:
            result = search_from(start)
            if result.censored:  # nothing passed up to d_max at the carried rate: re-tune there
                top, t = max(p.d for p in result.probes), self.tuned[-1][0]
                if top / t <= self.move or len(self.tuned) > MAX_RETUNES:
                    return result
                self.tuned.append((top, self.tune(top)))
                start = d_min
                continue
            if result.d_lo is None and start > d_min:
                start = self.restart_at(d_min, start / 4)  # even the start passed: lower
                continue
            where = math.sqrt(result.d_lo * result.d_hi) if result.d_lo else result.d_hi
            t = self.tuned[-1][0]
            if max(where / t, t / where) <= self.move or len(self.tuned) > MAX_RETUNES:
                return result
            here = max(1, round(where))
            self.tuned.append((here, self.tune(here)))
            start = self.restart_at(d_min, (result.d_lo or result.d_hi) / 2)
