"""d_int from a fitted curve, its interval and flags (idbench.estimate): scripted curves, exact
expectations, and the interval's coverage measured on simulated cells of known crossing."""

import math

import numpy as np
import pytest

from idbench.estimate import (MIN_CI_UNITS, Curve, covers, crossing, estimate, flags, interval,
                              ratio)


def curve(d, means, units=3, noise=0.0, baseline=None, threshold=0.9, seed=0):
    rng = np.random.default_rng(seed)
    scores = np.array(means, dtype=float)[:, None] + rng.normal(0, noise, (len(d), units))
    return Curve(np.array(d, dtype=float), scores,
                 None if baseline is None else np.asarray(baseline, dtype=float), threshold)


def test_crossing_interpolates_the_isotonic_fit_in_log_d():
    d = [100, 200, 400, 800]
    assert crossing(curve(d, [0.0, 0.0, 0.5, 1.0], threshold=0.75)) == pytest.approx(
        400 * math.sqrt(2))
    assert crossing(curve(d, [1.0, 1.0, 1.0, 1.0], threshold=0.75)) == 100
    assert math.isinf(crossing(curve(d, [0.0, 0.0, 0.0, 0.5], threshold=0.75)))
    # a pass below a failing probe is pooled with it (0.5, 0.5), not decided by either alone
    assert crossing(curve(d, [0.0, 1.0, 0.0, 1.0], threshold=0.75)) == pytest.approx(
        400 * math.sqrt(2))
    # the pooled pair passes: the crossing lies between 100 and 200, where the fit reaches 0.75
    assert crossing(curve(d, [0.0, 1.0, 0.8, 1.0], threshold=0.75)) == pytest.approx(
        100 * 2 ** (0.75 / 0.9))


def test_a_noise_free_curve_keeps_its_exact_crossing_and_a_point_interval():
    c = curve(list(range(5, 16)), [min(1.0, d / 10) for d in range(5, 16)], units=4,
              threshold=1.0)
    found = estimate(c)
    assert found.d_int == pytest.approx(10) and found.ci_low == found.ci_high == found.d_int
    assert found.flags == ()


def test_the_threshold_moves_with_the_baseline_seeds():
    d = [64, 128, 256, 512]
    means = [0.6, 0.75, 0.85, 0.92]
    steady = curve(d, means, units=5, noise=0.01, baseline=[0.95] * 5)
    shaky = curve(d, means, units=5, noise=0.01, baseline=[0.91, 0.99, 0.93, 0.97, 0.95])
    assert steady.threshold_score == shaky.threshold_score == pytest.approx(0.855)
    assert crossing(steady) == crossing(shaky)
    lo_s, hi_s = interval(steady)
    lo, hi = interval(shaky)
    assert hi / lo > hi_s / lo_s  # the baseline's noise widens the interval
    assert lo <= crossing(shaky) <= hi


@pytest.mark.parametrize("units", [1, 2])
def test_no_interval_below_three_units(units):
    c = curve([64, 128, 256], [0.5, 0.88, 0.95], units=units, noise=0.01)
    assert MIN_CI_UNITS == 3
    assert interval(c) is None and estimate(c).ci_low is None
    assert 64 < estimate(c).d_int < 256


def test_interval_always_contains_the_estimate_and_is_inf_when_replicates_never_cross():
    rng = np.random.default_rng(11)
    for _ in range(200):
        d = np.unique(np.exp(rng.uniform(np.log(8), np.log(4000), rng.integers(2, 9))).round())
        means = rng.uniform(0.7, 0.95, len(d))
        c = curve(d, means, units=int(rng.integers(3, 7)), noise=rng.uniform(0, 0.05),
                  seed=int(rng.integers(1 << 30)), threshold=0.85)
        found = estimate(c)
        if found.d_int is None:
            continue
        assert found.ci_low <= found.d_int <= found.ci_high
        assert d.min() <= found.d_int <= d.max()
    hopeless = curve([100, 200], [0.5, 0.91], units=4, noise=0.05, seed=5)  # barely crosses
    assert math.isinf(interval(hopeless)[1])


def _simulated(rng, units, d_star=300.0, noise=0.02, baseline_noise=0.01):
    """A cell whose mean score is a logistic in log d crossing 0.855 (0.9 x 0.95) at d_star,
    probed as a search would (a doubling grid and a bisection-like cluster), with noisy seeds and
    a noisy baseline per seed."""
    d = np.unique(np.r_[2.0 ** np.arange(5, 11), d_star * 2 ** rng.uniform(-0.6, 0.6, 4)].round())
    slope = 0.06  # per doubling at the crossing
    mean = 0.855 + slope * np.log2(d / d_star)
    scores = mean[:, None] + rng.normal(0, noise, (len(d), units))
    baseline = 0.95 + rng.normal(0, baseline_noise, units)
    return Curve(d, scores, baseline, 0.9), 0.9 * baseline.mean()


@pytest.mark.parametrize("units", [3, 5])
def test_the_interval_covers_the_true_crossing_about_as_often_as_it_says(units):
    """Coverage of the true d_int (where the curve crosses 0.9 x the true baseline mean) over
    simulated cells: a 95% interval should cover it in about 95% of cells, never in far fewer
    (a percentile interval over 3 seeds covers it in about 70%)."""
    rng = np.random.default_rng(units)
    covered, total = 0, 120
    for _ in range(total):
        c, _ = _simulated(rng, units)
        bounds = interval(c, replicates=400)
        covered += bounds is not None and bounds[0] <= 300.0 <= bounds[1]
    assert covered / total >= 0.85


def test_flags_name_each_ill_defined_cell():
    d = [32, 64, 128, 256, 512]
    assert flags(curve(d, [0.95, 0.96, 0.97, 0.97, 0.97], baseline=[0.96] * 3)) == (
        "threshold-low",)  # passes at its smallest probe, and beats its own baseline
    beats = curve(d, [0.5, 0.7, 0.88, 0.97, 0.98], baseline=[0.97] * 3)
    assert "threshold-low" in flags(beats)  # a probe reaches the baseline itself
    falls = curve(d, [0.5, 0.7, 0.9, 0.8, 0.7], units=4, noise=0.005, baseline=[1.0] * 4)
    assert "falls" in flags(falls)
    flat = curve(d, [0.86, 0.87, 0.875, 0.88, 0.885], units=4, noise=0.03,
                 baseline=[0.975] * 4)
    assert "flat" in flags(flat)
    steep = curve(d, [0.3, 0.5, 0.7, 0.9, 0.95], units=4, noise=0.005, baseline=[1.0] * 4)
    assert flags(steep) == ()


def test_ratio_of_a_curve_to_its_reference_with_a_shared_resampling():
    d = [64, 91, 128, 181, 256, 362, 512, 724, 1024]
    rng = np.random.default_rng(4)
    noise = rng.normal(0, 0.01, (len(d), 5))
    base = 0.855 + 0.06 * np.log2(np.array(d) / 200.0)
    reference = Curve(np.array(d, float), base[:, None] + noise, np.full(5, 0.95), 0.9)
    same = ratio(reference, reference)
    assert same == (pytest.approx(1.0), pytest.approx(1.0), pytest.approx(1.0))
    shifted = Curve(np.array(d, float) * 2, reference.scores, reference.baseline, 0.9)
    value, low, high = ratio(shifted, reference)
    assert value == pytest.approx(2.0) and low == high == pytest.approx(2.0)  # same noise, paired
    other = Curve(np.array(d, float), base[:, None] + rng.normal(0, 0.01, (len(d), 5)),
                  np.full(5, 0.95), 0.9)
    value, low, high = ratio(other, reference)
    assert low < value < high and low < 1.0 < high  # indistinguishable: the interval holds 1


def test_curve_of_probes_keeps_the_units_every_probe_has():
    c = Curve.of([(128, [0.8, 0.81, 0.79]), (64, [0.6, 0.61])], [0.9, 0.91, 0.92], 0.9)
    assert list(c.d) == [64, 128] and c.units == 2 and len(c.baseline) == 2


def test_covers_says_what_the_interval_includes():
    assert covers(3, tuned=True, baseline=True) == "seeds, baseline seeds (not the tuner's draw)"
    assert covers(3, tuned=False, baseline=False) == "seeds"
    assert covers(2, tuned=True, baseline=True) == "none"
