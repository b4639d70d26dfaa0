"""The d search on scripted accuracy curves: no training, exact expectations."""

import json
import math

import numpy as np
import pytest

from idbench.errors import IdbenchError
from idbench.search import MIN_CI_SEEDS, Probe, crossing, decide, estimate_with_interval, search


def linear_curve(d_star: float, seeds: int = 3):
    """Score d / d_star (capped at 1): crosses 0.9 at 0.9 * d_star."""
    calls: list[int] = []

    def evaluate(d: int) -> list[float]:
        calls.append(d)
        return [min(1.0, d / d_star)] * seeds

    return evaluate, calls


def test_finds_the_crossing_in_the_expected_number_of_probes():
    evaluate, calls = linear_curve(700)  # passes from d = 630
    result = search(evaluate, threshold_score=0.9, d_min=10, d_max=4000, resolution=0.05)
    assert result.d_hi >= 630 and result.d_lo < 630
    assert result.d_hi / result.d_lo - 1 <= 0.05
    assert not result.censored and result.d_lo < result.d_int <= result.d_hi
    assert result.d_int == pytest.approx(630, rel=0.002)  # log-linear on a linear curve, 5% apart
    # growth 10..1280 (8 probes incl. the confirmation), then bisection of (320, 640) to 5%
    expected = math.ceil(math.log2(630 / 10)) + 2 + math.ceil(math.log2(math.log(2) / math.log(1.05)))
    assert len(calls) <= expected
    assert len(calls) == len(set(calls))  # never the same d twice


def test_exact_integer_answer_when_resolution_allows():
    evaluate, _ = linear_curve(10 / 0.9 - 1e-9)  # passes from d = 10 exactly, fails at 9
    result = search(evaluate, threshold_score=0.9, d_min=1, d_max=100, resolution=0.01)
    assert (result.d_hi, result.d_lo) == (10, 9)
    assert result.d_int == pytest.approx(10, abs=1e-6)  # the mean curve reaches 0.9 at d = 10


def test_lucky_pass_below_a_failing_plateau_is_not_returned():
    def evaluate(d: int) -> list[float]:
        return [1.0] if d == 40 else [min(1.0, d / 700)]

    result = search(evaluate, threshold_score=0.9, d_min=10, d_max=4000)
    assert result.d_hi >= 630 and result.d_int > result.d_lo
    failing = [p.d for p in result.probes if not p.passed]
    assert all(f < result.d_int for f in failing)


def test_noisy_non_monotonic_curve_never_answers_below_a_failing_probe():
    rng = np.random.default_rng(3)
    for trial in range(20):
        noise = {d: rng.normal(0, 0.03) for d in range(1, 5001)}
        result = search(lambda d: [min(1.0, d / 700) + noise[d]], threshold_score=0.9,
                        d_min=10, d_max=5000)
        assert result.d_int is not None
        assert all(p.passed for p in result.probes if p.d >= result.d_int)
        assert all(not p.passed for p in result.probes if p.d == result.d_lo)
        assert 450 < result.d_int <= result.d_hi < 1400


def test_censored_when_nothing_passes():
    evaluate, calls = linear_curve(1e9)
    result = search(evaluate, threshold_score=0.9, d_min=10, d_max=1000)
    assert result.censored and result.d_int is None and result.d_hi is None
    assert max(calls) == 1000  # d_max itself is probed
    assert (result.ci_low, result.ci_high) == (None, None)


def test_passing_at_d_min():
    evaluate, calls = linear_curve(1.0)
    result = search(evaluate, threshold_score=0.9, d_min=5, d_max=1000)
    assert (result.d_int, result.d_lo, result.censored) == (5, None, False)
    assert calls == [5, 10]  # the pass and its confirmation


@pytest.mark.parametrize("d_star", [37, 300, 2222])
def test_grid_mode_matches_the_search(d_star):
    grid = [10, 20, 50, 100, 200, 300, 500, 700, 1000, 1500, 2000, 2500, 3000, 4000]
    evaluate, calls = linear_curve(d_star)
    by_grid = search(evaluate, threshold_score=0.9, d_min=10, d_max=4000, grid=grid)
    assert sorted(calls) == grid
    passing_grid = [d for d in grid if d >= 0.9 * d_star]
    assert by_grid.d_hi == passing_grid[0]
    evaluate, _ = linear_curve(d_star)
    by_search = search(evaluate, threshold_score=0.9, d_min=10, d_max=4000, resolution=0.01)
    assert by_grid.d_lo < by_search.d_hi <= by_grid.d_hi * 1.01  # within the resolution
    # the estimate lies in its bracket; the fine search interpolates close to the true crossing
    assert by_grid.d_lo < 0.9 * d_star <= by_grid.d_hi and by_grid.d_lo < by_grid.d_int <= by_grid.d_hi
    assert by_search.d_int == pytest.approx(0.9 * d_star, rel=0.01)


def test_crossing_interpolates_in_log_d_with_the_decide_rule():
    d = np.array([100, 200, 400, 800])
    curves = np.array([
        [0.0, 0.0, 0.5, 1.0],  # crosses 0.75 halfway (in log d) between 400 and 800
        [1.0, 1.0, 1.0, 1.0],  # passes at the smallest probe: d[0]
        [0.0, 1.0, 0.0, 1.0],  # a pass below a failing probe does not count: 3/4 of 400..800
        [0.0, 0.0, 0.0, 0.5],  # never reaches the threshold
    ]).T
    got = crossing(d, curves, 0.75)
    assert got[:3] == pytest.approx([400 * math.sqrt(2), 100, 400 * 2 ** 0.75])
    assert math.isinf(got[3])


def test_estimate_is_the_crossing_of_the_mean_curve_and_inside_its_bracket():
    probes = [Probe(d, tuple([min(1.0, d / 700)] * 4), d >= 630) for d in (320, 640, 1280)]
    d_int, low, high = estimate_with_interval(probes, 0.9)
    d_hi, d_lo = decide(probes)
    # log-linear between (320, 0.457) and (640, 0.914)
    frac = (0.9 - 320 / 700) / (640 / 700 - 320 / 700)
    assert d_int == pytest.approx(math.exp(math.log(320) + frac * math.log(2)))
    assert d_lo < d_int <= d_hi
    assert low == high == pytest.approx(d_int)  # identical seeds: every resample is the curve


def test_interval_of_noisy_seeds_is_wider_and_contains_the_estimate():
    rng = np.random.default_rng(0)
    noisy = [Probe(d, tuple(min(1.0, d / 700) + rng.normal(0, 0.05, 8)), True) for d in (320, 640, 1280)]
    d_int, low, high = estimate_with_interval(noisy, 0.9)
    assert 320 <= low < d_int < high <= 1280


@pytest.mark.parametrize("seeds", [1, 2])
def test_no_interval_below_three_seeds(seeds):
    probes = [Probe(d, tuple(min(1.0, d / 700) + 0.01 * s for s in range(seeds)), d >= 630)
              for d in (320, 640, 1280)]
    d_int, low, high = estimate_with_interval(probes, 0.9)
    assert MIN_CI_SEEDS == 3
    assert 320 < d_int <= 640 and (low, high) == (None, None)


def test_censored_curve_has_no_estimate_and_no_interval():
    probes = [Probe(d, (0.1, 0.2, 0.3), False) for d in (10, 100)]
    assert estimate_with_interval(probes, 0.9) == (None, None, None)


def _random_probes(rng: np.random.Generator) -> tuple[list[Probe], float]:
    """A random probe set: a noisy sigmoid in log d, or noise around the threshold (non-monotone)."""
    n_seeds = int(rng.integers(3, 9))
    ds = np.unique(np.exp(rng.uniform(np.log(5), np.log(5000), rng.integers(2, 10))).round())
    threshold = 0.855
    if rng.random() < 0.5:
        d_star = np.exp(rng.uniform(np.log(5), np.log(5000)))
        level = 1 / (1 + np.exp(-rng.uniform(0.5, 4) * np.log(ds / d_star)))
    else:
        level = rng.uniform(0.78, 0.92, len(ds))
    scores = level[:, None] + rng.normal(0, rng.uniform(0, 0.1), (len(ds), n_seeds))
    return [Probe(int(d), tuple(map(float, s)), bool(np.mean(s) >= threshold))
            for d, s in zip(ds, scores)], threshold


def test_property_interval_contains_the_estimate_which_lies_in_its_bracket():
    rng = np.random.default_rng(2024)
    crossed = 0
    for _ in range(1500):
        probes, threshold = _random_probes(rng)
        d_int, low, high = estimate_with_interval(probes, threshold, replicates=500)
        d_hi, d_lo = decide(probes)
        if d_hi is None:
            assert (d_int, low, high) == (None, None, None)
            continue
        crossed += 1
        assert (d_lo or 0) < d_int <= d_hi
        assert low <= d_int <= high
        assert min(p.d for p in probes) <= low  # a crossing is never below the smallest probe
    assert crossed > 500  # the property was exercised on many crossing curves


def test_decide_rule():
    mk = lambda d, ok: Probe(d, (1.0 if ok else 0.0,), ok)
    assert decide([mk(10, False), mk(20, True), mk(40, False), mk(80, True), mk(160, True)]) == (80, 40)
    assert decide([mk(10, True), mk(20, True)]) == (10, None)
    assert decide([mk(10, True), mk(20, False)]) == (None, None)


def test_bad_ranges():
    with pytest.raises(IdbenchError, match="d_min <= d_max"):
        search(lambda d: [1.0], threshold_score=0.9, d_min=100, d_max=10)


def test_below_six_seeds_the_plain_percentile_interval_already_contains_the_estimate():
    """The widening in estimate_with_interval is a guarantee, not a patch: with 3 to 5 seeds the
    replicate that draws every seed once reproduces the estimate often enough (n!/n^n > 2.5%)."""
    rng = np.random.default_rng(5)
    checked = 0
    while checked < 300:
        probes, threshold = _random_probes(rng)
        n_seeds = len(probes[0].scores)
        d_hi, _ = decide(probes)
        if n_seeds > 5 or d_hi is None:
            continue
        d = np.array([p.d for p in probes])
        scores = np.array([p.scores for p in probes])
        point = crossing(d, scores.mean(axis=1, keepdims=True), threshold)[0]
        draws = np.random.default_rng(0).integers(0, n_seeds, size=(2000, n_seeds))
        reps = crossing(d, scores[:, draws].mean(axis=2), threshold)
        low, high = np.quantile(reps, [0.025, 0.975], method="inverted_cdf")
        assert low <= point <= high
        checked += 1


def test_a_stored_probe_reads_back_as_itself():
    probe = Probe(128, (0.7, 0.72, 0.69), False)
    assert Probe.from_dict(json.loads(json.dumps(probe.to_dict()))) == probe
    older = {"d": 64, "mean": 0.5, "std": 0.0, "passed": True}  # before per-seed scores
    assert Probe.from_dict(older) == Probe(64, (0.5,), True)
