"""`idbench run` end to end on a tiny suite: Parquet, tables, plots, resume, bad input."""

import json
import subprocess
import sys

import polars as pl
import pytest

from idbench.errors import IdbenchError
from idbench.leaderboard import format_table, load_results, table
from idbench.leaderboard.tables import FLAGS
from idbench.runner import plan, run_suite
from idbench.store import RunStore

TINY = """
name: tiny
version: "1"
defaults: {draws: 1, seeds: 2, epochs: 4, d_min: 8, d_max: 1200, resolution: 0.2, tune_trials: 2}
grids:
  - models: ["fc[depth=1,width=16]"]
    datasets: [digits]
    projections: [sparse, fastfood]
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite")
    suite = root / "tiny.yaml"
    suite.write_text(TINY)
    result = run_suite(suite, out=root / "out", leaderboard_dir=root / "lb", device="cpu")
    return root, suite, result


def test_run_writes_parquet_tables_and_plots(tiny_run):
    root, _, result = tiny_run
    lb = root / "lb"
    for name in ("runs.parquet", "measurements.parquet", "leaderboard.md", "leaderboard.html",
                 "leaderboard.csv", "leaderboard.tex", "dint_vs_d.png", "dint_vs_d.svg",
                 "dint_by_projection.png", "provenance.json"):
        assert (lb / name).is_file(), name
    measurements = pl.read_parquet(lb / "measurements.parquet")
    assert measurements.height == 2 and set(measurements["projection"]) == {"sparse", "fastfood"}
    markdown = (lb / "leaderboard.md").read_text()
    for row in measurements.iter_rows(named=True):
        marks = "".join(FLAGS[f][0] for f in row["flags"].split(",") if f)  # flags after d_int
        shown = (f"> {row['d_max']}" if row["censored"] else f"≤ {row['d_hi']}"
                 if row["d_lo"] is None else f"| {round(row['d_int'])}{' ' * bool(marks)}{marks} |")
        assert shown in markdown
    assert result.table.splitlines()[0] == markdown.splitlines()[0]


def test_rendering_from_parquet_gives_the_same_table_without_training(tiny_run):
    root, _, result = tiny_run
    measurements, runs = load_results(root / "lb")
    assert format_table(table(measurements, runs), "md") == result.table


def test_rerun_needs_resume_and_then_trains_nothing(tiny_run):
    root, suite, result = tiny_run
    with pytest.raises(IdbenchError, match="pass --resume"):
        run_suite(suite, out=root / "out", leaderboard_dir=root / "lb2", device="cpu")
    before = len(list((root / "out" / "runs").glob("*.parquet")))
    again = run_suite(suite, out=root / "out", leaderboard_dir=root / "lb2", resume=True,
                      device="cpu")
    assert len(list((root / "out" / "runs").glob("*.parquet"))) == before
    assert again.table == result.table
    rows = plan(suite, out=root / "out")
    assert all(r["measured"] and r["stored_runs"] > 0 for r in rows)


def test_only_filters_cells_and_reports_unknown_patterns(tiny_run):
    _, suite, _ = tiny_run
    assert [r["cell"] for r in plan(suite, only="*fastfood*")] == [
        "fc[depth=1,width=16]/digits/fastfood/fpd"]
    with pytest.raises(IdbenchError, match="matches no cell"):
        plan(suite, only="*lenet*")


def test_cli_errors_are_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace("epochs: 4", "epoch: 4"))
    for args in (["run", str(tmp_path / "missing.yaml")], ["run", str(bad)],
                 ["leaderboard", str(tmp_path)]):
        done = subprocess.run([sys.executable, "-m", "idbench.cli", *args], capture_output=True,
                              text=True, timeout=60, cwd=tmp_path)
        assert done.returncode == 2, args
        assert done.stderr.startswith("idbench: error:") and done.stderr.count("\n") == 1
    assert not (tmp_path / "leaderboards").exists()


def test_a_suite_publishes_only_its_own_cells_from_a_shared_output_folder(tiny_run):
    """Suites that share cells run into one --out (README); each leaderboard holds its own."""
    root, _, _ = tiny_run
    one = root / "one.yaml"
    one.write_text(TINY.replace("name: tiny", "name: one").replace("[sparse, fastfood]", "[sparse]"))
    before = len(list((root / "out" / "runs").glob("*.parquet")))
    run_suite(one, out=root / "out", leaderboard_dir=root / "lb-one", resume=True, device="cpu")
    assert len(list((root / "out" / "runs").glob("*.parquet"))) == before  # all reused
    measurements, runs = load_results(root / "lb-one")
    assert measurements["projection"].to_list() == ["sparse"]
    assert runs.height > 0 and set(runs["cell"]) == set(measurements["cell"])
    assert runs["run_key"].n_unique() == measurements["n_runs"][0]  # its own runs and the shared


def test_every_cell_lists_all_its_runs_including_shared_baselines(tiny_run):
    """Sparse and Fastfood share their baseline runs, stored under the cell that trained them:
    each cell's runs in runs.parquet are the n_runs it used, baselines included."""
    root, _, _ = tiny_run
    measurements, runs = load_results(root / "lb")
    for cell, n_runs in measurements.select("cell", "n_runs").iter_rows():
        mine = runs.filter(pl.col("cell") == cell)
        assert mine["run_key"].n_unique() == mine.height == n_runs
        assert mine.filter(pl.col("role") == "baseline").height == 2  # seeds: 2
    baselines = runs.filter(pl.col("role") == "baseline")
    assert baselines["run_key"].n_unique() == 2 and baselines.height == 4
    provenance = json.loads((root / "lb" / "provenance.json").read_text())
    assert provenance["runs"] == runs["run_key"].n_unique() < runs.height
    assert pl.read_parquet(root / "lb" / "measurements.parquet").height == 2


@pytest.mark.parametrize("source", ["lb", "lb/runs.parquet", "out"])
def test_a_published_leaderboard_is_re_measured_from_its_runs_alone(tiny_run, source):
    """--reuse copies a results folder's runs (or a runs.parquet's, or a run store's: the --out
    that trained them) into a new --out: nothing trains (no Optuna journal comes along) and the
    table is the published one."""
    root, suite, result = tiny_run
    published = pl.read_parquet(root / "lb" / "runs.parquet")["run_key"].unique()
    out = root / f"again-{source.replace('/', '-')}"
    planned = plan(suite, out=out, reuse=[root / source])  # --dry-run counts what --reuse brings
    assert all(r["stored_runs"] > 0 and not r["measured"] for r in planned)
    assert all(r["stored_runs"] == 0 for r in plan(suite, out=out)) and not out.exists()
    again = run_suite(suite, out=out, leaderboard_dir=root / "lb-again", reuse=[root / source],
                      device="cpu")
    stored = RunStore(out).table()
    assert set(stored["run_key"]) == set(published)  # every published run copied
    trained_at = dict(pl.read_parquet(root / "lb" / "runs.parquet")
                      .select("run_key", "timestamp").iter_rows())
    assert all(trained_at[key] == when for key, when in  # and none trained again
               stored.select("run_key", "timestamp").iter_rows())
    assert again.table == result.table


def test_reuse_of_a_missing_results_folder_fails_before_anything_is_written(tiny_run, tmp_path):
    root, suite, _ = tiny_run
    with pytest.raises(IdbenchError, match="--reuse .*not found"):
        run_suite(suite, out=tmp_path / "out", leaderboard_dir=tmp_path / "lb",
                  reuse=[root / "lb", tmp_path / "nowhere"], device="cpu")
    assert list(tmp_path.iterdir()) == []
    cli = subprocess.run([sys.executable, "-m", "idbench.cli", "run", str(suite), "--out",
                          str(tmp_path / "out"), "--reuse", str(tmp_path / "nowhere")],
                         capture_output=True, text=True)
    assert cli.returncode == 2 and len(cli.stderr.strip().splitlines()) == 1
    assert "--reuse" in cli.stderr and list(tmp_path.iterdir()) == []
