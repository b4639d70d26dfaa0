"""Shared by the executor tests: a tiny suite and its uninterrupted, in-process reference run.

The suite is the tiny one of tests/test_runner.py with a slightly larger budget (8 epochs, 3
tuning trials), so that both cells find a d_int (not "> d_max") and the comparisons below compare
real search results. It trains about 40 short runs: seconds on one core.
"""

from __future__ import annotations

import polars as pl
import pytest

from idbench.leaderboard import load_results, table
from idbench.runner import run_suite

TINY = """
name: tiny
version: "1"
defaults: {draws: 1, seeds: 2, epochs: 8, d_min: 8, d_max: 1200, resolution: 0.2, tune_trials: 3}
grids:
  - models: ["fc[depth=1,width=16]"]
    datasets: [digits]
    projections: [sparse, fastfood]
"""


def leaderboard_rows(lb_dir) -> pl.DataFrame:
    """The leaderboard table of a results folder, without the wall-time column.

    Wall time is the sum of the stored runs' own wall seconds, so it differs between any two
    executions of the same suite (and a run killed in flight is timed again when it is redone);
    every other column (d_int, bracket, CI, baseline, runs...) is determined by the runs.
    """
    return table(*load_results(lb_dir)).drop("wall_s")


@pytest.fixture(scope="session")
def lb_rows():
    """:func:`leaderboard_rows`, for the test modules."""
    return leaderboard_rows


@pytest.fixture(scope="session")
def tiny_suite(tmp_path_factory):
    path = tmp_path_factory.mktemp("suite") / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="session")
def reference(tiny_suite, tmp_path_factory):
    """The tiny suite run once, uninterrupted, in this process: (out, leaderboard dir, result)."""
    root = tmp_path_factory.mktemp("reference")
    result = run_suite(tiny_suite, out=root / "out", leaderboard_dir=root / "lb", device="cpu")
    assert all(not m.censored for m in result.measurements)
    return root / "out", root / "lb", result
