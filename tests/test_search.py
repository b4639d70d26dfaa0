"""The d search on scripted accuracy curves: no training, exact expectations."""

import json
import math

import numpy as np
import pytest

from idbench.errors import IdbenchError
from idbench.search import Probe, decide, search


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


def test_noisy_non_monotonic_curve_lands_near_the_crossing_and_within_its_probes():
    rng = np.random.default_rng(3)
    for trial in range(20):
        noise = {d: rng.normal(0, 0.03) for d in range(1, 5001)}
        result = search(lambda d: [min(1.0, d / 700) + noise[d]], threshold_score=0.9,
                        d_min=10, d_max=5000)
        assert result.d_int is not None
        assert all(not p.passed for p in result.probes if p.d == result.d_lo)
        assert 450 < result.d_int < 1400
        # the fitted curve crosses where the probes' scores, pooled where they fall, reach 0.9
        assert min(p.d for p in result.probes) <= result.d_int <= result.d_hi


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


def test_decide_rule():
    mk = lambda d, ok: Probe(d, (1.0 if ok else 0.0,), ok)
    assert decide([mk(10, False), mk(20, True), mk(40, False), mk(80, True), mk(160, True)]) == (80, 40)
    assert decide([mk(10, True), mk(20, True)]) == (10, None)
    assert decide([mk(10, True), mk(20, False)]) == (None, None)


def test_bad_ranges():
    with pytest.raises(IdbenchError, match="d_min <= d_max"):
        search(lambda d: [1.0], threshold_score=0.9, d_min=100, d_max=10)


def test_a_stored_probe_reads_back_as_itself():
    probe = Probe(128, (0.7, 0.72, 0.69), False)
    assert Probe.from_dict(json.loads(json.dumps(probe.to_dict()))) == probe
    older = {"d": 64, "mean": 0.5, "std": 0.0, "passed": True}  # before per-seed scores
    assert Probe.from_dict(older) == Probe(64, (0.5,), True)
