"""d_int from a fitted curve, its interval over every source of noise, and flags for ill-defined
cells.

A cell's probes give, at each probed d, one score per *unit*: the runs of one seed, with its own
baseline run at that seed. :class:`Curve` holds them; the estimate reads all of them at once,
never two probes alone.

**Estimate** (:func:`crossing`). The probes' mean scores get the best nondecreasing fit in log d
(isotonic regression, which pools neighbouring probes whose means fall as d grows), and d_int is
where that fit crosses the threshold, interpolated linearly in log d. Every probe's runs enter
the fit, and a probe that fails above a passing one is averaged with it instead of deciding the
crossing alone; where the means rise, the fit passes through them, so a curve without noise (a
known answer) keeps its exact crossing.

d_int is ``d[0]`` when the smallest probe already passes and inf when the fitted curve never
reaches the threshold (censored).

**Interval** (:func:`interval`). A bootstrap over units: each replicate resamples the units with
replacement, so it redraws training seeds and the baseline's seeds (the threshold moves with the
resampled baseline mean), and re-fits the curve.
The interval is d_int x exp(-/+ t s), s the bootstrap's standard error of log d_int on each side
(from its 16th and 84th percentiles, corrected by sqrt(n / (n - 1)) for resampling n units), t
Student's quantile at n - 1 degrees of freedom: with 3 to 6 units a percentile interval is too
narrow. Replicates that never cross make the upper end inf. Every unit shares the cell's one
tuning, so the interval leaves out the tuner's draw (:func:`covers`); how often it contains an
independent re-measurement is measured by ``benchmarks/calibration.py``.

**Independent draws** (:func:`pooled`, :func:`pooled_ratio`): where a measurement repeats
itself R times with everything redrawn (``draws``, :mod:`idbench.draws`), its estimate is the
geometric mean of the draws' and its interval a Student-t interval over them, which covers the
tuner's draw as well.

**Flags** (:func:`flags`): ``threshold-low`` (the smallest probe already passes, or a probe beats
the cell's own baseline: d_int says more about the baseline than the subspace), ``falls`` (the
mean score falls, as d grows, by more than twice the standard error of the difference) and
``flat`` (at the crossing the fitted line rises less per doubling of d than the spread of single
runs around it: d_int is poorly determined).

Example::

    curve = Curve(d=np.array([64, 128, 256]), scores=np.array([[.5, .6, .55], [.8, .82, .79],
                  [.9, .91, .9]]), baseline=np.array([.95, .96, .94]), threshold=0.9)
    estimate(curve)   # Estimate(d_int=..., ci_low=..., ci_high=..., flags=())
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import isotonic_regression
from scipy.stats import t as student_t

WINDOW = 2.0  # the slope at the crossing: through the probes within this factor of it
MIN_POINTS = 3  # and through at least this many probes (the nearest in log d)
REPLICATES = 1000  # bootstrap replicates of an interval
CI_LEVEL = 0.95
MIN_CI_UNITS = 3  # below this the bootstrap has too few distinct resamples (2 units: 3)


@dataclass(frozen=True)
class Curve:
    """The probes of one cell: ``scores[i, u]`` is unit u's score at ``d[i]`` (``d`` ascending);
    ``baseline[u]`` unit u's baseline score (None: the threshold score is fixed, ``threshold``
    itself, as with a global baseline); ``threshold`` the fraction of the baseline mean to reach."""

    d: np.ndarray
    scores: np.ndarray
    baseline: np.ndarray | None
    threshold: float

    @classmethod
    def of(cls, probes: list[tuple[int, list[float]]], baseline: list[float] | None,
           threshold: float) -> "Curve":
        """A curve from ``(d, scores per unit)`` pairs in any order, truncated to the units every
        probe has (and the baseline, where given)."""
        ordered = sorted(probes)
        n = min([len(s) for _, s in ordered] + ([len(baseline)] if baseline else []), default=0)
        return cls(d=np.array([d for d, _ in ordered], dtype=float),
                   scores=np.array([s[:n] for _, s in ordered], dtype=float).reshape(-1, n),
                   baseline=None if baseline is None else np.array(baseline[:n], dtype=float),
                   threshold=threshold)

    @property
    def units(self) -> int:
        return self.scores.shape[1]

    @property
    def threshold_score(self) -> float:
        """The score d_int reaches: the fraction of the baseline mean (or the fixed score)."""
        if self.baseline is None:
            return self.threshold
        return self.threshold * float(self.baseline.mean())

    def resampled(self, units: np.ndarray) -> "Curve":
        """The curve of the units ``units`` (indices, repeats allowed): probes and baseline alike."""
        return replace(self, scores=self.scores[:, units],
                       baseline=None if self.baseline is None else self.baseline[units])


@dataclass(frozen=True)
class Estimate:
    """d_int (None: censored) with its interval (None below :data:`MIN_CI_UNITS` units or when
    censored; ``ci_high`` inf when some replicates never cross) and the cell's flags."""

    d_int: float | None
    ci_low: float | None
    ci_high: float | None
    flags: tuple[str, ...]


def crossing(curve: Curve) -> float:
    """d_int of ``curve``: where its isotonic fit crosses the threshold, interpolated linearly in
    log d (module docstring): ``d[0]`` when it starts there, inf when it never does."""
    if curve.units == 0 or len(curve.d) == 0:
        return math.inf
    fitted = isotonic_regression(curve.scores.mean(axis=1)).x
    above = np.nonzero(fitted >= curve.threshold_score)[0]
    if len(above) == 0:
        return math.inf
    i = above[0]
    if i == 0:
        return float(curve.d[0])
    frac = (curve.threshold_score - fitted[i - 1]) / (fitted[i] - fitted[i - 1])
    d_a, d_b = float(curve.d[i - 1]), float(curve.d[i])
    return d_b if frac >= 1 else min(d_a * (d_b / d_a) ** frac, d_b)


def _line_at_crossing(curve: Curve, point: float) -> tuple[float, float]:
    """(slope, noise) at the crossing ``point``: the slope per doubling of d of a least-squares
    line through every run of the probes within :data:`WINDOW` of it (at least the
    :data:`MIN_POINTS` nearest), and the spread of single runs around their probe means there
    (nan: no line where the crossing is at or below the smallest probe or never comes; noise nan
    with one unit)."""
    if not math.isfinite(point) or point <= curve.d[0]:
        return math.nan, math.nan
    x, at = np.log2(curve.d), math.log2(point)
    near = np.abs(x - at) <= math.log2(WINDOW)
    if near.sum() < MIN_POINTS:
        near = np.zeros_like(near)
        near[np.argsort(np.abs(x - at), kind="stable")[:MIN_POINTS]] = True
    slope = np.polyfit(np.repeat(x[near], curve.units), curve.scores[near].ravel(), 1)[0]
    resid = curve.scores[near] - curve.scores[near].mean(axis=1, keepdims=True)
    dof = near.sum() * (curve.units - 1)
    noise = float(np.sqrt((resid ** 2).sum() / dof)) if dof > 0 else math.nan
    return float(slope), noise


def interval(curve: Curve, *, replicates: int = REPLICATES, seed: int = 0,
             level: float = CI_LEVEL) -> tuple[float, float] | None:
    """The interval of d_int over units (module docstring); None below :data:`MIN_CI_UNITS`
    units or when d_int is inf."""
    point = crossing(curve)
    if curve.units < MIN_CI_UNITS or not math.isfinite(point):
        return None
    draws = np.random.default_rng(seed).integers(0, curve.units, (replicates, curve.units))
    logs = np.log([crossing(curve.resampled(units)) for units in draws])
    return _scaled(point, logs, curve.units, level)


def _scaled(point: float, logs: np.ndarray, n: int, level: float) -> tuple[float, float]:
    """point x exp(-/+ t s) from bootstrap replicates ``logs`` of log(point) over ``n`` units."""
    q16, q50, q84 = np.quantile(logs, [0.16, 0.5, 0.84], method="inverted_cdf")
    scale = math.sqrt(n / (n - 1)) * student_t.ppf((1 + level) / 2, n - 1)
    low = point * math.exp(-scale * max(q50 - q16, 0.0))
    high = point * math.exp(scale * max(q84 - q50, 0.0)) if math.isfinite(q84) else math.inf
    return float(low), float(high)


def ratio(curve: Curve, reference: Curve, *, replicates: int = REPLICATES, seed: int = 0,
          level: float = CI_LEVEL) -> tuple[float, float | None, float | None]:
    """d_int of ``curve`` over d_int of ``reference`` with its interval, both resampled by the
    same draw of units where they have as many units (cells of one model share their baseline
    seeds), independently otherwise; nan where either never crosses."""
    a, b = crossing(curve), crossing(reference)
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.nan, None, None
    n = min(curve.units, reference.units)
    if n < MIN_CI_UNITS:
        return a / b, None, None
    rng = np.random.default_rng(seed)
    logs = []
    for _ in range(replicates):
        units = rng.integers(0, curve.units, curve.units)
        other = units if curve.units == reference.units else rng.integers(
            0, reference.units, reference.units)
        logs.append(math.log(crossing(curve.resampled(units)))
                    - math.log(crossing(reference.resampled(other))))
    low, high = _scaled(a / b, np.nan_to_num(np.array(logs), nan=math.inf), n, level)
    return a / b, low, high


def flags(curve: Curve) -> tuple[str, ...]:
    """The cell's flags (module docstring), in a fixed order."""
    found = []
    means = curve.scores.mean(axis=1)
    if len(means) and curve.units:
        target = curve.threshold_score
        beats = curve.baseline is not None and means.max() >= curve.baseline.mean()
        if means[0] >= target or beats:
            found.append("threshold-low")
        if curve.units > 1:
            se = curve.scores.std(axis=1, ddof=1) / math.sqrt(curve.units)
            drop = means[:, None] - means[None, :]  # [i, j]: how far j lies below i
            noise = 2 * np.sqrt(se[:, None] ** 2 + se[None, :] ** 2)
            if np.any(np.triu(drop > noise, k=1)):
                found.append("falls")
        slope, noise = _line_at_crossing(curve, crossing(curve))
        if noise > 0 and not slope > noise:
            found.append("flat")
    return tuple(found)


def estimate(curve: Curve) -> Estimate:
    """d_int, its interval and flags: everything a measurement row reports about the curve."""
    point = crossing(curve)
    if not math.isfinite(point):
        return Estimate(None, None, None, flags(curve))
    bounds = interval(curve)
    low, high = bounds if bounds else (None, None)
    return Estimate(point, low, high, flags(curve))


def pooled(estimates: list[float], *, level: float = CI_LEVEL) -> tuple[float, float, float]:
    """One estimate from independent draws of a whole measurement (:mod:`idbench.draws`): the
    geometric mean of ``estimates`` and a Student-t interval over them in log d, at
    len - 1 degrees of freedom. Every source of noise a draw has (its seeds, its baseline's
    seeds, its tuner's draw) varies between draws, so the interval covers them all."""
    if len(set(estimates)) == 1:  # draws that agree exactly (a known answer): that answer
        return float(estimates[0]), float(estimates[0]), float(estimates[0])
    logs = np.log(np.asarray(estimates, dtype=float))
    mean = float(logs.mean())
    half = float(student_t.ppf(0.5 + level / 2, len(logs) - 1) * logs.std(ddof=1)
                 / math.sqrt(len(logs)))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def pooled_ratio(estimates: list[float], reference: list[float], *,
                 level: float = CI_LEVEL) -> tuple[float, float, float]:
    """The ratio of two pooled estimates (:func:`pooled`) with Welch's interval: the difference
    of the mean log d of independent draws, its standard error from both cells' spreads, and
    Welch-Satterthwaite's degrees of freedom."""
    a, b = np.log(np.asarray(estimates, dtype=float)), np.log(np.asarray(reference, dtype=float))
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if se > 0 else 1.0
    diff = float(a.mean() - b.mean())
    half = float(student_t.ppf(0.5 + level / 2, dof)) * se
    return math.exp(diff), math.exp(diff - half), math.exp(diff + half)


def covers(units: int, *, tuned: bool, baseline: bool) -> str:
    """What an interval over ``units`` units covers, in words (rows, tables and the page say it):
    ``tuned``: the rates were tuned, by one tuning every unit shares, whose draw the interval
    leaves out; ``baseline`` False for a global baseline, whose threshold has no noise."""
    if units < MIN_CI_UNITS:
        return "none"
    sources = ", ".join(["seeds"] + (["baseline seeds"] if baseline else []))
    return f"{sources} (not the tuner's draw)" if tuned else sources
