"""What the command line writes where: results (tables, JSON) on stdout, progress, notes, warnings
and errors on stderr, for every command; the main job writes nothing outside its output folder,
so a run in a checkout leaves ``git status`` clean; a resume says what it reused and trained."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from idbench.store import stored_run_keys

from test_cli import invoke

ROOT = Path(__file__).parents[1]
SUITE = ('name: tiny\nversion: "1"\ndefaults: {draws: 1, seeds: 1, epochs: 1, tune_trials: 0, grid: [8]}\n'
         'grids:\n  - models: ["fc[depth=1,width=8]"]\n    datasets: [digits]\n')
MEASURE = ["measure", "--model", "fc[depth=1,width=8]", "--dataset", "digits", "--seeds", "1",
           "--epochs", "1", "--tune-trials", "0", "--grid", "8"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout


@pytest.fixture
def checkout(tmp_path, monkeypatch) -> Path:
    """A git repository like the project's: its .gitignore, a suite, a published board."""
    repo = tmp_path / "checkout"
    (repo / "suites").mkdir(parents=True)
    (repo / "leaderboards" / "tiny").mkdir(parents=True)
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    (repo / "suites" / "tiny.yaml").write_text(SUITE)
    (repo / "leaderboards" / "tiny" / "leaderboard.md").write_text("the published board\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a checkout")
    monkeypatch.chdir(repo)
    return repo


def test_the_main_job_leaves_the_checkout_clean_and_says_what_it_trained(checkout, capfd):
    """The README's main-job shape, `idbench run suites/<suite>.yaml`, with no other flag."""
    code, out, err = invoke(["run", "suites/tiny.yaml"], capfd)
    assert code == 0, err
    assert git(checkout, "status", "--porcelain", "--untracked-files=all") == ""
    assert (checkout / "leaderboards" / "tiny" / "leaderboard.md").read_text() == \
        "the published board\n"
    board = checkout / "idbench-out" / "tiny" / "leaderboard"
    assert out.startswith("| Model |")  # the result, on stdout: the board's table
    assert (board / "leaderboard.md").read_text().startswith(out.strip())
    trained = len(stored_run_keys(checkout / "idbench-out" / "tiny"))
    assert trained == 2  # a baseline and a probe: one seed each
    lines = err.splitlines()
    assert f"idbench: 0 stored runs reused from idbench-out/tiny, {trained} runs trained" in lines
    written = Path("idbench-out/tiny/leaderboard")
    assert lines[-1].startswith(f"idbench: leaderboard written to {written} (")
    # the progress bar closes on the suite's count: no stale event line of the last cell
    bars = [line for line in lines if "━" in line]
    assert bars and all(line.startswith("suite ") and " 1/1 " in line for line in bars), bars

    code, out, err = invoke(["run", "suites/tiny.yaml", "--resume"], capfd)
    assert code == 0, err
    assert f"idbench: {trained} stored runs reused from idbench-out/tiny, 0 runs trained" in \
        err.splitlines()
    assert git(checkout, "status", "--porcelain", "--untracked-files=all") == ""

    code, out, err = invoke(["run", "suites/tiny.yaml", "--dry-run"], capfd)
    assert code == 0 and err == ""
    assert "fc[depth=1,width=8]/digits/dense/fpd" in out  # the plan is the result: stdout


def test_a_resume_of_a_folder_without_runs_says_it_starts_from_scratch(checkout, capfd):
    code, _, err = invoke(["run", "suites/tiny.yaml", "--resume", "--out", "idbench-out/tyni"],
                          capfd)
    assert code == 0, err
    warning = [line for line in err.splitlines() if "holds no stored runs" in line]
    assert warning == ["idbench: warning: --resume: idbench-out/tyni holds no stored runs, so this "
                       "run starts from scratch (if you meant to continue a run, check --out)"]


def test_measure_prints_its_summary_on_stdout_and_its_progress_on_stderr(tmp_path, capfd):
    argv = [*MEASURE, "--out", str(tmp_path / "out")]
    code, out, err = invoke(argv, capfd)
    assert code == 0, err
    keys = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert keys[:4] == ["model", "dataset", "projection", "method"] and "d_int90" in keys
    assert "n_runs" not in err and "measuring: probe d=8" in err
    code, out, err = invoke([*argv, "--json"], capfd)  # the stored measurement, as JSON
    # the default 4 draws, each a baseline run and one probe
    assert code == 0 and json.loads(out)["n_runs"] == 4 * 2 and err == ""


def test_ls_leaderboard_and_version_print_on_stdout(tmp_path, capfd):
    code, out, err = invoke(["ls", "projections", "sparse"], capfd)
    assert code == 0 and err == "" and out.startswith("sparse")
    code, out, err = invoke(["--version"], capfd)
    assert code == 0 and err == "" and out.startswith("idbench ")
    code, _, err = invoke([*MEASURE, "--out", str(tmp_path / "out"), "--json"], capfd)
    assert code == 0, err
    code, out, err = invoke(["leaderboard", str(tmp_path / "out"), "--format", "csv"], capfd)
    assert code == 0 and err == "" and "fc[depth=1,width=8]" in out


@pytest.mark.parametrize("command", ["measure", "run"])
def test_help_points_to_the_suite_format(command, capfd):
    code, out, err = invoke([command, "--help"], capfd)
    assert code == 0 and err == ""
    assert "python -m pydoc idbench.suites" in " ".join(out.split())
    import idbench.suites

    assert "grids:" in idbench.suites.__doc__  # the documentation it points to shows the format
