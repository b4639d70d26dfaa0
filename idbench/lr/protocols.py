"""Where the subspace learning rate is tuned: one strategy object per protocol.

A strategy (:class:`SubspaceLr`) says which rate every probe at d trains with, what the rows
record about it, and how the d search runs under it; :func:`choose_subspace_lr` picks the one a
config asks for. A new protocol is one new class here.

- :class:`TunedAtBracket` (the default): tuned at d_ref, d grows with the
  carried rate until the crossing is bracketed; the rate is re-tuned at the bracket's geometric
  middle when that is more than ``lr_retune_factor`` from where it was tuned, and the search runs
  again with the rate carried from there (once more if the bisection then lands that far away). If
  nothing passes up to d_max at the carried rate, it is re-tuned at d_max and the search runs
  again. The probes that decide the crossing so use a rate tuned near it, and the reported result
  is the last search's, whose probes all share one rate rule. A search after a re-tuning starts on
  the lattice d_min x 2^k (:func:`on_lattice`), so it probes the d that a search from d_min
  probes: near the crossing a verdict depends on which d is probed (each d draws its own bases)
  more than on the rate.
- :class:`TunedAtEveryProbe` (``tune_every_probe``): tuned anew at every probe, the reference
  answer at the cost of a tuning per probe.
- :class:`CarriedFromReference`: where nothing is re-tuned (fixed rates, ``tune_trials: 0``, or a
  fixed grid of d, which has no bracket to narrow): one rate at d_ref, carried to every other d
  (:class:`~idbench.lr.carry.Carry`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from idbench.lr.carry import Carry
from idbench.search import SearchResult

MAX_RETUNES = 2  # re-tunings after the first tuning at d_ref
SearchFrom = Callable[[int], SearchResult]  # a whole d search starting at the given d


class SubspaceLr(Protocol):
    """How the learning rate of the subspace runs at probe d is chosen, and how the d search runs
    under it: the one piece a new learning-rate protocol replaces."""

    def lr_at(self, d: int) -> float:
        """The learning rate of every seed's run at probe ``d``."""

    def origin(self, d: int) -> dict[str, Any]:
        """The run-row columns that say where the rate at ``d`` was tuned and how it was carried:
        ``lr_tuned_at`` and ``lr_carried_by``."""

    def record(self) -> dict[str, Any]:
        """The MeasurementRow columns that say how the rate was chosen: ``tune_at``,
        ``lr_subspace`` and ``lr_scaling``."""

    def search(self, search_from: SearchFrom, d_min: int) -> SearchResult:
        """The search's result: ``search_from(d_min)``, or several searches where the protocol
        re-tunes as they narrow."""


def choose_subspace_lr(config: Any, *, tune: Callable[[int], float], carry: Carry, d_ref: int,
                       window: str) -> SubspaceLr:
    """The strategy ``config`` asks for; ``tune(d)`` tunes the subspace rate at ``d`` (a
    reference tuning at ``d_ref`` happens here, unless every probe is tuned)."""
    if config.tune_every_probe:
        return TunedAtEveryProbe(tune, window)
    if config.retunes_at_bracket:
        return TunedAtBracket(tune, carry, d_ref, window, config.lr_retune_factor)
    return CarriedFromReference(carry, tune(d_ref), d_ref, window)


@dataclass
class CarriedFromReference:
    """Tuned (or given) once at ``d_ref``, carried to every other d."""

    carry: Carry
    lr_ref: float
    d_ref: int
    window: str

    def lr_at(self, d: int) -> float:
        return self.carry(self.lr_ref, self.d_ref, d)

    def origin(self, d: int) -> dict[str, Any]:
        return self.carry.origin(self.d_ref, d)

    def record(self) -> dict[str, Any]:
        return {"tune_at": f"ref:{self.d_ref}{self.window}", "lr_subspace": self.lr_ref,
                "lr_scaling": self.carry.rule}

    def search(self, search_from: SearchFrom, d_min: int) -> SearchResult:
        return search_from(d_min)


@dataclass
class TunedAtEveryProbe:
    """``tune_every_probe``: tuned anew at every probe d."""

    tune: Callable[[int], float]
    window: str

    def lr_at(self, d: int) -> float:
        return self.tune(d)

    def origin(self, d: int) -> dict[str, Any]:
        return {"lr_tuned_at": d, "lr_carried_by": "none"}

    def record(self) -> dict[str, Any]:
        return {"tune_at": f"every-probe{self.window}", "lr_subspace": None, "lr_scaling": "none"}

    def search(self, search_from: SearchFrom, d_min: int) -> SearchResult:
        return search_from(d_min)


def on_lattice(d_min: int, d: float) -> int:
    """The largest d_min x 2^k at or below ``d`` (d_min itself below it): where a search started
    again after a re-tuning begins, so that it grows and bisects through the d that the first
    search (and tune-every-probe, from d_min) probe.

    Near the crossing a probe's verdict depends on the d probed more than on its rate: each d
    draws its own bases, and at d_int100 one ill-conditioned basis among the seeds fails a d whose
    neighbours pass, so the smallest d above which every probe passes depends on which d were
    probed. A search restarted from d_lo / 2 would probe another lattice (24, 48, ..) than one
    from d_min (16, 32, 64, ..) and bisect through other d (evidence:
    ``benchmarks/protocol_check.md``).
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
    tuned: list[tuple[int, float]] = field(default_factory=list)  # (d, lr) in tuning order

    def __post_init__(self) -> None:
        self.tuned.append((self.d_ref, self.tune(self.d_ref)))

    def lr_at(self, d: int) -> float:
        t, lr_t = self.tuned[-1]
        return self.carry(lr_t, t, d)

    def origin(self, d: int) -> dict[str, Any]:
        return self.carry.origin(self.tuned[-1][0], d)

    def record(self) -> dict[str, Any]:
        points = ",".join(str(t) for t, _ in self.tuned)
        return {"tune_at": f"bracket:{points} retune:x{self.move:g} restart:lattice{self.window}",
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
            if result.d_hi is not None and result.d_lo is None and start > d_min:
                start = on_lattice(d_min, start / 4)  # even the start passed: lower
                continue
            where = _crossing(result)
            t = self.tuned[-1][0]
            if max(where / t, t / where) <= self.move or len(self.tuned) > MAX_RETUNES:
                return result
            here = max(1, round(where))
            self.tuned.append((here, self.tune(here)))
            start = on_lattice(d_min, (result.d_lo or result.d_hi or where) / 2)


def _crossing(result: SearchResult) -> float:
    """Where an uncensored search places the crossing: the geometric centre of its bracket, d_hi
    where d_min already passed, and the fitted crossing where there is no bracket (the fitted
    curve crosses the threshold, but the largest probes fail: a curve that falls)."""
    if result.d_hi is None:
        assert result.d_int is not None, "a censored search has no crossing"
        return result.d_int
    return math.sqrt(result.d_lo * result.d_hi) if result.d_lo else result.d_hi
