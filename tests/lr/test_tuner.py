"""The tuner: studies re-made from their stored runs, pruned trials stored, draws of the tuner."""

import json
import math
import shutil

import pytest

import polars as pl

import idbench.cell as cell
import idbench.lr.tuner as tuner
import idbench.tuning as tuning
from idbench.measurement import measure
from idbench.store import RunStore

from test_measurement import digits_config
from test_retries import _Remote


def test_a_study_re_made_from_its_runs_replays_the_original_trials(tmp_path, monkeypatch):
    """Without its Optuna journal a study's TPE proposals need not be the original's (here: a
    tuner seeded otherwise). Its stored trials, pruned ones included, are replayed first, in their
    order, so nothing trains again and the cell uses the same runs; without the replay TPE's
    draws replace the stored ones."""
    config = digits_config(tune_trials=6, seeds=1)
    reference = measure(config, out=tmp_path / "ref", device="cpu")
    tune = RunStore(tmp_path / "ref").table().filter(pl.col("role") == "tune")
    pruned = tune.filter(pl.col("pruned"))
    assert pruned.height >= 1  # the property below covers a pruned trial
    stored = set(tune["run_key"])
    monkeypatch.setattr(tuning, "derive_seed", lambda *parts: 12345)
    trained = []
    real_run = cell.run
    monkeypatch.setattr(cell, "run", lambda spec, *a, **kw: trained.append(spec.lr)
                        or real_run(spec, *a, **kw))

    def again(name):
        trained.clear()
        shutil.copytree(tmp_path / "ref" / "runs", tmp_path / name / "runs")
        return set(json.loads(measure(config, out=tmp_path / name, device="cpu").run_keys))

    assert again("again") == set(json.loads(reference.run_keys)) and trained == []
    assert set(pruned["run_key"]) <= stored
    monkeypatch.setattr(tuner.Tuner, "_replay", lambda self, d, lr_range, draw: [])
    assert not stored <= again("control")  # the control: TPE's draws differ from the stored
    assert trained


def test_a_pruned_trial_is_stored_up_to_its_last_evaluation(tmp_path):
    """A pruned tuning trial's row: its history ends at the evaluation the pruner stopped it
    after, its outcome is that evaluation's, with fewer steps than its budget and no test score;
    only the tuning seed that reports to the pruner trained."""
    measure(digits_config(tune_trials=6, seeds=1), out=tmp_path, device="cpu")
    runs = RunStore(tmp_path).table()
    pruned = runs.filter(pl.col("pruned"))
    assert pruned.height >= 1 and set(pruned["role"]) == {"tune"}
    full = runs.filter(pl.col("role") == "tune", ~pl.col("pruned"))["steps"].max()
    for row in pruned.iter_rows(named=True):
        history = json.loads(row["history"])
        assert row["steps"] == history[-1]["step"] < full and row["stopped_early"]
        assert (row["val_score"], row["val_loss"]) == (history[-1]["val_score"],
                                                       history[-1]["val_loss"])
        assert math.isnan(row["test_score"]) and row["seed"] == tuner.TUNE_SEED
        twin = runs.filter(pl.col("role") == "tune", pl.col("lr") == row["lr"],
                           pl.col("d").eq_missing(row["d"]), pl.col("cell") == row["cell"])
        assert twin.height == 1  # the second tuning seed never trained


def test_another_tuner_draw_tunes_on_its_own_grid_and_draws_other_rates(tmp_path):
    """tune_draw: another cell (key) whose studies have other names and whose grid trials lie
    elsewhere in their bins, so it shares no tuning trial with draw 0; draw 0 is the default and
    changes no key."""
    base = digits_config(tune_trials=6, seeds=1)
    other = base.model_copy(update={"tune_draw": 1})
    assert base.key() == digits_config(tune_trials=6, seeds=1, tune_draw=0).key()
    assert other.key() != base.key()
    first = measure(base, out=tmp_path, device="cpu")
    second = measure(other, out=tmp_path, device="cpu")
    assert (first.tune_draw, second.tune_draw) == (0, 1)
    tune = RunStore(tmp_path).table().filter(pl.col("role") == "tune", pl.col("d").is_null())
    by_cell = {cell: set(part["lr"]) for (cell,), part in tune.group_by("cell")}
    assert set(by_cell) == {first.cell, second.cell}
    for draw, cell in ((0, first.cell), (1, second.cell)):  # each draw's baseline grid, trained
        grid = tuning.startup_grid(base.lr_range, tuning.STARTUP_TRIALS, draw)
        assert all(any(math.isclose(g, lr) for lr in by_cell[cell]) for g in grid)
    assert by_cell[second.cell] and not by_cell[second.cell] & by_cell[first.cell]

def test_a_pruned_trial_is_stored_alike_here_and_on_a_worker(tmp_path):
    """A worker trains a trial to its end and the parent prunes it afterwards from its history:
    the stored row is the one a run stopped at its pruning evaluation here gives."""
    config = digits_config(tune_trials=6, seeds=1)
    tables = {}
    for name, executor in (("local", None), ("remote", _Remote())):
        measure(config, out=tmp_path / name, device="cpu", executor=executor)
        runs = RunStore(tmp_path / name).table().filter(pl.col("pruned"))
        tables[name] = runs.select("run_key", "steps", "val_score", "val_loss", "history",
                                   "theta_psi").sort("run_key")
    assert tables["local"].height >= 1
    assert tables["remote"].equals(tables["local"])


def test_a_power_of_two_tuning_trains_only_powers_of_two_and_says_so(tmp_path):
    config = digits_config(tune_trials=3, seeds=1, tune_grid="pow2", grid=(32,),
                           lr_range=(0.01, 1.0))
    row = measure(config, out=tmp_path, device="cpu")
    rates = RunStore(tmp_path).table().filter(pl.col("role") == "tune")["lr"].to_list()
    assert len(set(rates)) == 6  # 3 for the baseline, 3 for the subspace at d = 32
    assert all(math.log2(lr).is_integer() for lr in rates)
    assert row.tune_grid == "pow2" and math.log2(row.lr_baseline).is_integer()
    log = digits_config(tune_trials=3, seeds=1, grid=(32,), lr_range=(0.01, 1.0))
    assert tuner.study_name(config, "baseline", None, config.lr_range) != \
        tuner.study_name(log, "baseline", None, log.lr_range)
    assert log.key() == digits_config(tune_trials=3, seeds=1, grid=(32,),
                                      lr_range=(0.01, 1.0), tune_grid="log").key()


@pytest.mark.parametrize("options, phrase", [
    (dict(lr_range=(0.3, 0.45)), "holds no power of two"),
    (dict(optimizer="ngd", damping_range=(0.01, 1.0)), "tunes the rate alone"),
])
def test_a_power_of_two_grid_that_cannot_be_made_is_refused(options, phrase):
    with pytest.raises(ValueError, match=phrase):
        digits_config(tune_grid="pow2", **options)
