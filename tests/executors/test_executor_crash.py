"""Crash safety of `idbench run`: SIGKILL then --resume, and two processes on one output folder."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from idbench.store import RunStore

pytestmark = pytest.mark.executor


def idbench_run(suite: Path, out: Path, lb: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "idbench.cli", "run", str(suite), "--out", str(out),
         "--leaderboard", str(lb), "--device", "cpu", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=out.parent,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def stored(runs: Path) -> int:
    """Runs stored in a run folder (not counting a temporary file being written)."""
    if not runs.is_dir():
        return 0
    return sum(not p.name.startswith(".") for p in runs.glob("*.parquet"))


def kill_after(process: subprocess.Popen, runs: Path, n: int, timeout: float = 120) -> int:
    """SIGKILL ``process`` as soon as ``runs`` holds at least ``n`` stored runs; returns how many
    it held then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = stored(runs)
        if done >= n:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            return done
        if process.poll() is not None:
            pytest.fail(f"idbench run ended before {n} runs were stored: {process.stderr.read()}")
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"fewer than {n} runs stored after {timeout} s")


def test_sigkill_then_resume_loses_nothing_and_matches_an_uninterrupted_run(
    reference, tiny_suite, tmp_path, lb_rows
):
    _, ref_lb, ref = reference
    out, lb = tmp_path / "out", tmp_path / "lb"
    total = RunStore(ref_lb.parent / "out").table().height
    seen: dict[str, float] = {}  # run key -> mtime of its file when first seen
    for n in (2, total // 2):  # killed twice: in a tuning trial, then (likely) among the probes
        kill_after(idbench_run(tiny_suite, out, lb, "--resume"), out / "runs", n)
        for path in (out / "runs").glob("[!.]*.parquet"):
            seen.setdefault(path.stem, path.stat().st_mtime)
        RunStore(out).table()  # readable after every kill: only complete files
    done = subprocess.run(
        [sys.executable, "-m", "idbench.cli", "run", str(tiny_suite), "--out", str(out),
         "--leaderboard", str(lb), "--device", "cpu", "--resume"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    runs = RunStore(out).table()
    # nothing finished was lost or trained again (its file is the one written before the kill)
    assert seen
    assert all((out / "runs" / f"{k}.parquet").stat().st_mtime == t for k, t in seen.items())
    assert runs["run_key"].n_unique() == runs.height
    # the same runs as an uninterrupted run, and the same leaderboard (but for wall time: the
    # runs of the two executions took different seconds, and runs in flight were timed twice)
    ref_runs = RunStore(ref_lb.parent / "out").table()
    assert sorted(runs["run_key"]) == sorted(ref_runs["run_key"])
    assert lb_rows(lb).equals(lb_rows(ref_lb))
    assert not [p for p in out.rglob("*") if p.name.startswith(".tmp")]


def test_two_processes_on_one_output_folder_leave_a_readable_duplicate_free_store(
    reference, tiny_suite, tmp_path
):
    out, lb = tmp_path / "out", tmp_path / "lb"
    out.mkdir()
    processes = [idbench_run(tiny_suite, out, lb, "--resume") for _ in range(2)]
    for process in processes:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    runs, measurements = RunStore(out).table(), RunStore(out).measurements()
    assert runs.height > 0 and runs["run_key"].n_unique() == runs.height
    assert sorted(measurements["cell"]) == sorted(m.cell for m in reference[2].measurements)
    assert not [p for p in out.rglob("*") if p.name.startswith(".tmp")]
    # both processes measured every cell; every run either of them used is in the store
    assert (lb / "leaderboard.md").is_file() and (lb / "runs.parquet").is_file()


def test_ctrl_c_stops_a_dask_run_and_leaves_a_readable_store(tiny_suite, tmp_path):
    """Driven by events, not timing (it holds on a loaded machine): Ctrl-C once 4 runs are
    stored; the process then ends (the timeouts only guard against a hang) with status 130 and
    one line saying what is stored and how to continue."""
    pytest.importorskip("distributed")
    out = tmp_path / "out"
    command = ["run", str(tiny_suite), "--out", str(out), "--leaderboard", str(tmp_path / "lb"),
               "--device", "cpu", "--executor", "dask", "--workers", "2"]
    process = subprocess.Popen(
        [sys.executable, "-m", "idbench.cli", *command],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
    )
    runs = out / "runs"
    while stored(runs) < 4:
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    at_interrupt = stored(runs)
    _, err = process.communicate(timeout=900)  # the cluster is shut down too
    assert process.returncode == 130 and "Traceback" not in err, err
    table = RunStore(out).table()  # (the cell threads have ended before the line is printed)
    said = [line for line in err.splitlines() if line.startswith("idbench: interrupted")]
    assert said == [f"idbench: interrupted: {table.height} finished runs stored in {out}; "
                    "continue with: " + shlex.join(["idbench", *command, "--resume"])], err
    # what was queued is cancelled: only the runs in flight (2 cells x 2 seeds) may still land
    assert at_interrupt <= table.height <= at_interrupt + 4
    assert not [p for p in out.rglob("*") if p.name.startswith(".tmp")]
    assert not (tmp_path / "lb").exists()
