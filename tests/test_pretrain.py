"""Pretraining made by idbench (idbench.pretrain), stored as a run, as a cell's theta0."""

import polars as pl
import pytest
import torch

import idbench
import idbench.data
from idbench.config import MeasureConfig
from idbench.errors import IdbenchError
from idbench.pretrain import pretrain
from idbench.runner import run_suite
from idbench.store import RunStore
from idbench.train import RunSpec, build_model

pytestmark = pytest.mark.usefixtures("one_thread")

SOURCE = RunSpec(model="fc[depth=1,width=8]", dataset="digits", seed=1, lr=0.1, steps=10)


def test_a_pretraining_is_a_stored_run_with_its_model_and_is_not_trained_twice(tmp_path):
    row, path = pretrain(SOURCE, out=tmp_path)
    assert (row.role, row.run_key, row.steps) == ("pretrain", SOURCE.key(), 10)
    assert RunStore(tmp_path).get(SOURCE.key()) == row
    assert path == tmp_path / "checkpoints" / f"{SOURCE.key()}.pt"
    again, _ = pretrain(SOURCE, out=tmp_path)
    assert again.timestamp == row.timestamp  # found in the store, not trained again
    data = idbench.data.load("digits")
    fine = SOURCE.replace(seed=5, theta0=f"checkpoint[run={row.run_key},store={tmp_path}]")
    net = build_model(fine, data).eval()
    state = torch.load(path)
    assert torch.equal(net.classifier.weight, state["classifier.weight"])
    assert net(data.x_val).argmax(1).eq(data.y_val).float().mean().item() == pytest.approx(
        row.val_score)  # the pretrained model itself, before any step


def test_a_cell_from_a_pretrained_theta0_records_it_in_every_row(tmp_path):
    row, path = pretrain(SOURCE, out=tmp_path)
    theta0 = f"checkpoint[run={row.run_key},store={tmp_path}]"
    config = MeasureConfig(model="fc[depth=1,width=8]", dataset="digits", draws=1, seeds=1, steps=6,
                           tune_trials=0, grid=(4, 16), theta0=theta0, said=True)
    measured = idbench.measure(config, out=tmp_path)
    sha = measured.theta0_sha256
    recorded = f"checkpoint[run={row.run_key}]"  # where the file lay changes no number
    assert (measured.theta0, measured.said, len(sha)) == (recorded, True, 64)
    runs = pl.read_parquet(tmp_path / "runs" / "*.parquet").filter(pl.col("role") != "pretrain")
    assert set(runs["theta0"]) == {recorded} and set(runs["theta0_sha256"]) == {sha}
    assert set(runs["theta0_head"]) == {"kept"}
    assert set(runs.filter(pl.col("role") == "probe")["said"]) == {True}


SUITE = """
name: tuned
version: "1"
defaults: {draws: 1, seeds: 1, steps: 6, tune_trials: 0, grid: [4, 16]}
grids:
  - {models: ["fc[depth=1,width=8]"], datasets: [digits], projections: [fastfood],
     options: {theta0: "checkpoint[run=KEY]"}}
"""


def test_a_suite_names_its_pretraining_by_key_and_its_board_ships_the_checkpoint(tmp_path):
    """checkpoint[run=KEY] without store= is looked up in --out, then in the --reuse folders;
    the published board holds the checkpoint and the pretraining's run, so it re-measures
    elsewhere from its own folder, nothing trained."""
    row, path = pretrain(SOURCE, out=tmp_path / "out")
    suite = tmp_path / "tuned.yaml"
    suite.write_text(SUITE.replace("KEY", row.run_key))
    first = run_suite(suite, out=tmp_path / "out", leaderboard_dir=tmp_path / "board",
                      resume=True, device="cpu")
    shipped = tmp_path / "board" / "checkpoints" / path.name
    assert shipped.read_bytes() == path.read_bytes()
    runs = pl.read_parquet(tmp_path / "board" / "runs.parquet")
    assert runs.filter(pl.col("role") == "pretrain")["run_key"].to_list() == [row.run_key]
    again = run_suite(suite, out=tmp_path / "again", leaderboard_dir=tmp_path / "board2",
                      reuse=[tmp_path / "board"], device="cpu")
    assert (again.trained_runs, again.table) == (0, first.table)
    assert (tmp_path / "again" / "checkpoints" / path.name).read_bytes() == path.read_bytes()
    with pytest.raises(IdbenchError, match=f"checkpoint .*{row.run_key}.pt does not exist"):
        run_suite(suite, out=tmp_path / "bare", device="cpu")
    assert not (tmp_path / "bare").exists()


def test_a_subspace_run_is_not_a_pretraining(tmp_path):
    with pytest.raises(IdbenchError, match="full-space run"):
        pretrain(SOURCE.replace(projection="dense", d=4), out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
