"""Find d_int: the smallest subspace dimension whose runs reach a threshold score.

The search probes dimensions d, each probe training every seed and passing when the mean score
reaches ``threshold_score``. It never sweeps a hand-made grid:

1. **Grow** d geometrically from ``d_min`` (x ``growth``) until a probe passes *and* the next one
   up passes too. The confirmation probe guards against a lucky pass below a failing plateau.
2. **Bisect** in log space between the largest failing and the smallest passing d until they are
   within a relative ``resolution`` (or adjacent integers).

The bracket is (d_lo, d_hi]: d_hi the smallest probed d that passes with every larger probed d
passing (so it never lies below a failing probe), d_lo the largest failing probe below it. If no
probe up to ``d_max`` passes, the result is *censored* ("> d_max"), never a silent d_max. ``grid``
mode probes a fixed list instead (the published sweeps) and applies the same rule.

The reported d_int is one statistic with its own interval (:func:`estimate_with_interval`): the
crossing of the mean curve over seeds with the threshold, interpolated linearly in log d between
d_lo and d_hi, and the bootstrap percentile interval of that same crossing when the seeds are
resampled (none below 3 seeds), widened where needed so that it always contains the estimate.

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

    d_int: float | None  # log-interpolated crossing of the mean curve; None when censored
    d_lo: int | None  # largest failing probe below d_hi (None: nothing below failed)
    d_hi: int | None  # smallest passing probe with every larger probe passing
    censored: bool
    ci_low: float | None  # None below MIN_CI_SEEDS seeds or when censored
    ci_high: float | None  # inf when some replicates never cross
    probes: list[Probe] = field(default_factory=list)  # in the order they were run


MIN_CI_SEEDS = 3  # below this the bootstrap has too few distinct resamples (2 seeds: 3)
CI_LEVEL = 0.95


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


def crossing(d: np.ndarray, means: np.ndarray, threshold_score: float) -> np.ndarray:
    """The crossing d of each mean curve: ``means`` is (probes, curves) at the sorted ``d``.

    The rule of :func:`decide` on each curve: the first probe from which every probe passes
    (mean >= threshold), interpolated linearly in log d against the failing probe below it.
    d[0] when the smallest probe already passes (the crossing is at or below it); inf when the
    largest probe fails (the curve never crosses).
    """
    passes = means >= threshold_score
    # suffix[i, r]: probe i and every larger probe pass on curve r
    suffix = np.flip(np.logical_and.accumulate(np.flip(passes, 0), axis=0), 0)
    first = np.argmax(suffix, axis=0)  # first passing index (0 where nothing passes)
    below = np.maximum(first - 1, 0)
    cols = np.arange(means.shape[1])
    m_a, m_b = means[below, cols], means[first, cols]
    # m_b >= threshold > m_a wherever first > 0, so the fraction lies in (0, 1]
    frac = np.where(first > 0, (threshold_score - m_a) / np.where(first > 0, m_b - m_a, 1.0), 1.0)
    d_a, d_b = d[below].astype(float), d[first].astype(float)
    # d_a (d_b / d_a)^frac, exactly d_b at frac = 1 (and at the smallest probe)
    out = np.where(frac < 1, np.minimum(d_a * (d_b / d_a) ** frac, d_b), d_b)
    return np.where(suffix[-1], out, np.inf)


def estimate_with_interval(
    probes: Sequence[Probe], threshold_score: float, *, replicates: int = 2000, seed: int = 0,
    level: float = CI_LEVEL,
) -> tuple[float | None, float | None, float | None]:
    """(d_int, ci_low, ci_high): the crossing of the mean curve over seeds and its bootstrap
    percentile interval, the same statistic on curves whose seeds are resampled.

    Each replicate resamples seed indices with replacement (one draw for every probe, since a seed
    fixes initialisation and basis) and takes :func:`crossing` of its mean curve. The interval runs
    from the (1 - level)/2 to the (1 + level)/2 quantile of the replicates (order statistics, so
    replicates that never cross stay inf), widened where needed to contain d_int itself, since an
    interval that excludes its point misleads. Below 6 seeds the percentile interval contains it
    anyway (the resample that draws every seed once reproduces d_int, with probability
    n!/n^n >= 3.8% > (1 - level)/2); with more, the replicates could lie beyond it on one side.
    No interval (None) below :data:`MIN_CI_SEEDS` seeds, or when the mean curve never crosses
    (censored; d_int None as well).
    """
    if not probes:
        return None, None, None
    ordered = sorted(probes, key=lambda p: p.d)
    n_seeds = min(len(p.scores) for p in ordered)
    if n_seeds == 0:
        return None, None, None
    d = np.array([p.d for p in ordered])
    scores = np.array([p.scores[:n_seeds] for p in ordered], dtype=float)  # (probes, seeds)
    point = float(crossing(d, scores.mean(axis=1, keepdims=True), threshold_score)[0])
    if math.isinf(point):
        return None, None, None
    if n_seeds < MIN_CI_SEEDS:
        return point, None, None
    draws = np.random.default_rng(seed).integers(0, n_seeds, size=(replicates, n_seeds))
    reps = crossing(d, scores[:, draws].mean(axis=2), threshold_score)
    tail = (1 - level) / 2
    low, high = np.quantile(reps, [tail, 1 - tail], method="inverted_cdf")
    return point, float(min(low, point)), float(max(high, point))


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
        d_hi, d_lo = decide(probes.values())
        if d_hi is not None and d_lo is not None:
            lo, hi = d_lo, d_hi
            while hi - lo > 1 and hi / lo - 1 > resolution:
                mid = min(hi - 1, max(lo + 1, round(math.sqrt(lo * hi))))
                if probe(mid).passed:
                    hi = mid
                else:
                    lo = mid

    d_hi, d_lo = decide(probes.values())
    d_int, ci_low, ci_high = estimate_with_interval(list(probes.values()), threshold_score)
    return SearchResult(
        d_int=d_int, d_lo=d_lo, d_hi=d_hi, censored=d_hi is None, ci_low=ci_low,
        ci_high=ci_high, probes=list(probes.values()),
    )
