"""Find d_int: the smallest subspace dimension whose runs reach a threshold score.

The search probes dimensions d, each probe training every seed and passing when the mean score
reaches ``threshold_score``. It never sweeps a hand-made grid:

1. **Grow** d geometrically from ``d_min`` (x ``growth``) until a probe passes *and* the next one
   up passes too. The confirmation probe guards against a lucky pass below a failing plateau.
2. **Bisect** in log space between the largest failing and the smallest passing d until they are
   within a relative ``resolution`` (or adjacent integers).

The answer is the smallest probed d that passes with every larger probed d passing, so it never
lies below a failing probe. If no probe up to ``d_max`` passes, the result is *censored*
("> d_max"), never a silent d_max. ``grid`` mode probes a fixed list instead (the published
sweeps) and applies the same rule.

The confidence interval bootstraps the seeds: each replicate resamples seed indices (the same draw
at every probe, since a seed fixes initialisation and basis), recomputes the mean curve, and takes
its crossing interpolated linearly in log d between the probes around it.

Example::

    curve = {d: [min(1.0, d / 700)] for d in range(1, 5000)}   # scores per seed
    result = search(lambda d: curve[d], threshold_score=0.9, d_min=10, d_max=4000)
    result.d_int, result.d_lo, result.censored, len(result.probes)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from idbench.errors import IdbenchError


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


@dataclass
class SearchResult:
    """d_int with its bracket, bootstrap interval and the probes that led there."""

    d_int: int | None  # None when censored
    d_lo: int | None  # largest failing probe below d_int (None: nothing below failed)
    d_hi: int | None  # == d_int
    censored: bool
    ci_low: float | None
    ci_high: float | None  # inf when some replicates never cross
    probes: list[Probe] = field(default_factory=list)  # in the order they were run


def decide(probes: Sequence[Probe]) -> tuple[int | None, int | None]:
    """(d_int, d_lo): the smallest passing d with every larger probe passing, and the largest
    failing d below it."""
    ordered = sorted(probes, key=lambda p: p.d)
    d_int = None
    for probe in reversed(ordered):
        if not probe.passed:
            break
        d_int = probe.d
    if d_int is None:
        return None, None
    failing = [p.d for p in ordered if not p.passed and p.d < d_int]
    return d_int, (max(failing) if failing else None)


def bootstrap_crossing(
    probes: Sequence[Probe], threshold_score: float, *, replicates: int = 2000, seed: int = 0,
    level: float = 0.95,
) -> tuple[float | None, float | None]:
    """Percentile interval of the interpolated crossing d under resampling of seeds."""
    ordered = sorted(probes, key=lambda p: p.d)
    n_seeds = min(len(p.scores) for p in ordered)
    if not ordered or n_seeds == 0:
        return None, None
    scores = np.array([p.scores[:n_seeds] for p in ordered])  # (probes, seeds)
    log_d = np.log([p.d for p in ordered])
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_seeds, size=(replicates, n_seeds))
    means = scores[:, draws].mean(axis=2)  # (probes, replicates)
    passes = means >= threshold_score
    # suffix_all[i, r]: probe i and every larger probe pass in replicate r
    suffix_all = np.flip(np.logical_and.accumulate(np.flip(passes, 0), axis=0), 0)
    crossings = np.full(replicates, np.inf)
    has = suffix_all.any(axis=0)
    first = np.argmax(suffix_all, axis=0)
    for r in np.nonzero(has)[0]:
        i = first[r]
        if i == 0:
            crossings[r] = math.exp(log_d[0])
            continue
        m_a, m_b = means[i - 1, r], means[i, r]
        frac = (threshold_score - m_a) / (m_b - m_a) if m_b > m_a else 1.0
        crossings[r] = math.exp(log_d[i - 1] + frac * (log_d[i] - log_d[i - 1]))
    if not has.any():
        return None, None
    tail = (1 - level) / 2
    # no interpolation between order statistics, so replicates that never cross (inf) stay inf
    low, high = np.quantile(crossings, [tail, 1 - tail], method="inverted_cdf")
    return float(low), float(high)


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
) -> SearchResult:
    """Search d in [d_min, d_max] (or over ``grid``); ``evaluate(d)`` returns one score per seed."""
    if not 1 <= d_min <= d_max:
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
        lo, d = None, d_min
        while True:
            if probe(d).passed:
                up = min(d_max, max(d + 1, round(d * growth)))
                if d == d_max or probe(up).passed:
                    break
                lo, d = up, up  # the pass was not confirmed: keep growing above the failure
                continue
            if d == d_max:
                break
            lo, d = d, min(d_max, max(d + 1, round(d * growth)))
        d_int, d_lo = decide(probes.values())
        if d_int is not None and d_lo is not None:
            lo, hi = d_lo, d_int
            while hi - lo > 1 and hi / lo - 1 > resolution:
                mid = min(hi - 1, max(lo + 1, round(math.sqrt(lo * hi))))
                if probe(mid).passed:
                    hi = mid
                else:
                    lo = mid

    d_int, d_lo = decide(probes.values())
    ci_low, ci_high = bootstrap_crossing(list(probes.values()), threshold_score)
    return SearchResult(
        d_int=d_int, d_lo=d_lo, d_hi=d_int, censored=d_int is None, ci_low=ci_low,
        ci_high=ci_high, probes=list(probes.values()),
    )
