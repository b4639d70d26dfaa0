"""Every published board re-measures from its own committed runs to the same table, nothing trained.

Each folder of ``leaderboards/`` is measured again the way a reader would check it
(``idbench run SUITE --reuse leaderboards/SUITE --executor stored``), which trains nothing: every
run the measurement needs must be among the published runs, and the new leaderboard must equal
the published one. A code change that moves a published number fails here instead of needing a manual
re-check. The boards' provenance must name the revisions that trained their runs, none of them an
uncommitted tree.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from idbench.leaderboard.provenance import trained_by
from idbench.runner import run_suite
from idbench.suites import load_suite

ROOT = Path(__file__).resolve().parents[1]
BOARDS = sorted(p for p in (ROOT / "leaderboards").iterdir() if (p / "runs.parquet").exists())
SAME = ("leaderboard.csv", "leaderboard.md", "leaderboard.tex")  # compared without provenance


def _suite(board: Path) -> Path:
    return ROOT / "suites" / f"{board.name}.yaml"


def _without_provenance(text: str) -> str:
    """The table without its provenance line (the Markdown footer names the measuring revision)."""
    return "\n".join(line for line in text.splitlines() if not line.startswith("Provenance: "))


@pytest.mark.parametrize("board", BOARDS, ids=lambda p: p.name)
def test_board_remeasures_from_its_runs_to_the_same_table(board, tmp_path):
    skipped = [c.skipped for c in load_suite(_suite(board)).cells() if c.skipped]
    if skipped:  # its data are not on this machine (.ci/run installs Fashion-MNIST)
        pytest.skip(f"{board.name}: {skipped[0]}")
    measured = pl.read_parquet(board / "measurements.parquet")
    result = run_suite(_suite(board), out=tmp_path / "out", leaderboard_dir=tmp_path / "board",
                       reuse=[board], device="cpu", executor="stored")
    assert len(result.measurements) == measured.height and result.trained_runs == 0
    for name in SAME:
        again = _without_provenance((tmp_path / "board" / name).read_text())
        assert again == _without_provenance((board / name).read_text()), name


@pytest.mark.parametrize("board", BOARDS, ids=lambda p: p.name)
def test_board_provenance_names_every_revision_that_trained_its_runs(board):
    info = json.loads((board / "provenance.json").read_text())
    runs = pl.read_parquet(board / "runs.parquet")
    assert info["trained_by"] == trained_by(runs)
    assert sum(info["trained_by"].values()) == runs["run_key"].n_unique() == info["runs"]
    dirty = [rev for rev in info["trained_by"] if rev.endswith("-dirty") or rev == "unknown"]
    assert dirty == [], f"{board.name} holds runs trained from an uncommitted tree: retrain them"
    assert not info["measured_by"].endswith("-dirty")
