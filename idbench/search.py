"""Find d_int: the smallest subspace dimension whose runs reach a threshold score.

The search probes dimensions d, each probe training every seed and passing when the mean score
reaches ``threshold_score``. It never sweeps a hand-made grid:

1. **Grow** d geometrically from ``d_min`` (x ``growth``) until a probe passes *and* the next one
   up passes too. The confirmation probe guards against a lucky pass below a failing plateau.
2. **Bisect** in log space between the largest failing and the smallest passing d until they are
   within a relative ``resolution`` (or adjacent integers). The probes it places around the
   crossing are what the fitted curve reads there: a search stopped earlier, once its bracket lay
   within the estimate's interval, made that interval wider and its re-measurements less
   consistent (``benchmarks/calibration.md``).

The bracket is (d_lo, d_hi]: d_hi the smallest probed d that passes with every larger probed d
passing (so it never lies below a failing probe), d_lo the largest failing probe below it.
``grid`` mode probes a fixed list instead (the published sweeps) and applies the same rule.

The reported d_int is not read off the bracket: it is where a monotone curve fitted through
every probe's runs crosses the threshold, with its interval over seeds (and, given the
baseline's scores per seed, over the threshold's noise too): :mod:`idbench.estimate`. If the
fitted curve never reaches the threshold up to ``d_max``, the result is *censored*
("> d_max"), never a silent d_max.

Example::

    curve = {d: [min(1.0, d / 700)] for d in range(1, 5000)}   # scores per seed
    result = search(lambda d: curve[d], threshold_score=0.9, d_min=10, d_max=4000)
    result.d_int, (result.d_lo, result.d_hi), result.censored, len(result.probes)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from idbench.errors import IdbenchError
from idbench.estimate import Curve, estimate


@dataclass(frozen=True)
class Probe:
    """One probed dimension: the score of every seed."""

    d: int
    scores: tuple[float, ...]
    passed: bool

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        return float(np.std(self.scores, ddof=1)) if len(self.scores) > 1 else 0.0

    def to_dict(self) -> dict:
        return {"d": self.d, "mean": self.mean, "std": self.std, "scores": list(self.scores),
                "passed": self.passed}

    @classmethod
    def from_dict(cls, stored: dict) -> "Probe":
        """The probe of a stored :meth:`to_dict` (rows from before per-seed scores: the mean)."""
        return cls(stored["d"], tuple(stored.get("scores") or [stored["mean"]]), stored["passed"])


@dataclass
class SearchResult:
    """d_int (the crossing estimate) with its bootstrap interval, the bracket of probes that
    supports it, and the probes that led there."""

    d_int: float | None  # the fitted curve's crossing (idbench.estimate); None when censored
    d_lo: int | None  # largest failing probe below d_hi (None: nothing below failed)
    d_hi: int | None  # smallest passing probe with every larger probe passing
    censored: bool
    ci_low: float | None  # None below 3 seeds or when censored (idbench.estimate.interval)
    ci_high: float | None  # inf when some replicates never cross
    flags: tuple[str, ...] = ()  # idbench.estimate.flags
    probes: list[Probe] = field(default_factory=list)  # in the order they were run


def decide(probes: Sequence[Probe]) -> tuple[int | None, int | None]:
    """(d_hi, d_lo): the smallest passing d with every larger probe passing, and the largest
    failing d below it."""
    ordered = sorted(probes, key=lambda p: p.d)
    d_hi = None
    for probe in reversed(ordered):
        if not probe.passed:
            break
        d_hi = probe.d
    if d_hi is None:
        return None, None
    failing = [p.d for p in ordered if not p.passed and p.d < d_hi]
    return d_hi, (max(failing) if failing else None)


def curve_of(probes: Sequence[Probe], threshold_score: float,
             baseline_scores: Sequence[float] | None = None) -> Curve:
    """The :class:`~idbench.estimate.Curve` of ``probes``: against the fixed ``threshold_score``,
    or, with the baseline's score per seed, against that fraction of their mean (which then
    moves with a resample of the seeds)."""
    pairs = [(p.d, list(p.scores)) for p in probes]
    if baseline_scores is None:
        return Curve.of(pairs, None, threshold_score)
    return Curve.of(pairs, list(baseline_scores), threshold_score / float(np.mean(baseline_scores)))


def search(
    evaluate: Callable[[int], Sequence[float]],
    *,
    threshold_score: float,
    d_min: int,
    d_max: int,
    resolution: float = 0.05,
    growth: float = 2.0,
    grid: Sequence[int] | None = None,
    on_probe: Callable[[Probe], None] | None = None,
    baseline_scores: Sequence[float] | None = None,
) -> SearchResult:
    """Search d in [d_min, d_max] (or over ``grid``); ``evaluate(d)`` returns one score per seed;
    ``baseline_scores``: the baseline's score per seed, whose noise the interval then covers
    (:func:`curve_of`)."""
    if grid is None and not 1 <= d_min <= d_max:  # (a grid alone says where to probe)
        raise IdbenchError(f"need 1 <= d_min <= d_max, got d_min={d_min}, d_max={d_max}")
    if growth <= 1 or not 0 < resolution < 1:
        raise IdbenchError("growth must be > 1 and resolution in (0, 1)")
    probes: dict[int, Probe] = {}

    def probe(d: int) -> Probe:
        if d not in probes:
            scores = tuple(float(s) for s in evaluate(d))
            probes[d] = Probe(d, scores, bool(np.mean(scores) >= threshold_score))
            if on_probe is not None:
                on_probe(probes[d])
        return probes[d]

    if grid is not None:
        for d in sorted(set(int(g) for g in grid)):
            probe(d)
    else:
        _grow(probe, d_min, d_max, growth)
        d_hi, d_lo = decide(probes.values())
        if d_hi is not None and d_lo is not None:
            _bisect(probe, d_lo, d_hi, resolution)

    d_hi, d_lo = decide(probes.values())
    found = estimate(curve_of(list(probes.values()), threshold_score, baseline_scores))
    return SearchResult(
        d_int=found.d_int, d_lo=d_lo, d_hi=d_hi, censored=found.d_int is None,
        ci_low=found.ci_low, ci_high=found.ci_high, flags=found.flags,
        probes=list(probes.values()),
    )


def _grow(probe: Callable[[int], Probe], d_min: int, d_max: int, growth: float) -> None:
    """Probe d_min, d_min x growth, ... until a pass is confirmed by the next d up, or d_max."""
    d = d_min
    while True:
        if probe(d).passed:
            up = min(d_max, max(d + 1, round(d * growth)))
            if d == d_max or probe(up).passed:
                return
            d = up  # the pass was not confirmed: keep growing above the failure
            continue
        if d == d_max:
            return
        d = min(d_max, max(d + 1, round(d * growth)))


def _bisect(probe: Callable[[int], Probe], lo: int, hi: int, resolution: float) -> None:
    """Bisect (lo, hi] in log d until the resolution or adjacent integers."""
    while hi - lo > 1 and hi / lo - 1 > resolution:
        mid = min(hi - 1, max(lo + 1, round(math.sqrt(lo * hi))))
        if probe(mid).passed:
            hi = mid
        else:
            lo = mid
