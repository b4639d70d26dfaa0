"""The stored executor: a re-measurement from stored runs that trains nothing, and stops with one
line at a run it lacks."""

from __future__ import annotations

import subprocess
import sys

import polars as pl
import pytest

import idbench.executors as executors
from idbench.errors import IdbenchError
from idbench.runner import run_suite

pytestmark = pytest.mark.executor


def test_a_suite_re_measured_from_its_runs_trains_nothing_and_gives_the_same_board(
        reference, tiny_suite, lb_rows, tmp_path):
    _, lb, expected = reference
    result = run_suite(tiny_suite, out=tmp_path / "out", leaderboard_dir=tmp_path / "lb",
                       device="cpu", executor="stored", reuse=[lb])
    assert result.trained_runs == 0 and result.reused_runs == expected.trained_runs
    assert lb_rows(tmp_path / "lb").equals(lb_rows(lb))


def _without_one_probe(lb, tmp_path) -> tuple[str, str]:
    """A runs.parquet of the reference without its first probe run: (path, the run's key)."""
    runs = pl.read_parquet(lb / "runs.parquet")
    missing = runs.filter(pl.col("role") == "probe")["run_key"][0]
    path = tmp_path / "runs.parquet"
    runs.filter(pl.col("run_key") != missing).write_parquet(path)
    return str(path), missing


def test_a_missing_run_stops_the_measurement_naming_it_before_the_board_is_written(
        reference, tiny_suite, tmp_path):
    _, lb, _ = reference
    runs, missing = _without_one_probe(lb, tmp_path)
    with pytest.raises(IdbenchError, match=f"not stored: .* \\(run {missing}\\)"):
        run_suite(tiny_suite, out=tmp_path / "out", leaderboard_dir=tmp_path / "lb",
                  device="cpu", executor="stored", reuse=[runs])
    assert not (tmp_path / "lb").exists()


def test_the_command_line_says_so_in_one_line_and_exits_2(reference, tiny_suite, tmp_path):
    _, lb, _ = reference
    runs, missing = _without_one_probe(lb, tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "idbench.cli", "run", str(tiny_suite), "--out", "out",
         "--executor", "stored", "--reuse", runs, "--leaderboard", "board"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    errors = [line for line in done.stderr.splitlines() if line.startswith("idbench: error")]
    assert done.returncode == 2 and len(errors) == 1 and missing in errors[0]
    assert not (tmp_path / "board").exists()


def test_cluster_options_are_refused_for_it():
    with pytest.raises(IdbenchError, match="--workers: only for a Dask cluster.*stored runs"):
        executors.create("stored", workers=2)
