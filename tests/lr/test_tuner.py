"""The tuner: studies re-made from their stored runs, pruned trials stored, draws of the tuner."""

import dataclasses
import json
import math
import shutil

import pytest

import polars as pl

import idbench.cell as cell
import idbench.lr.tuner as tuner
import idbench.tuning as tuning
from idbench.lr.options import LR_WINDOW, WINDOW_MOVES
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


def _loss_with_its_best_rate_at(target: float, monkeypatch) -> None:
    """Subspace runs train as usual but report a validation loss that is least at ``target`` (it
    grows with the log distance, and stays below chance's ln 10, so no run counts as collapsed):
    where the best rate lies is then the test's choice."""
    real_run = cell.run

    def run(spec, *args, **kwargs):
        result = real_run(spec, *args, **kwargs)
        if spec.d is None:
            return result
        return dataclasses.replace(result, val_loss=1 - 1 / (1 + math.log(spec.lr / target) ** 2),
                                   diverged=False, retries=0)

    monkeypatch.setattr(cell, "run", run)


def _tunings_at(out, d: int) -> list[float]:
    """The rates tried by the tunings at ``d``, in the order they trained."""
    runs = RunStore(out).table().filter((pl.col("role") == "tune") & (pl.col("d") == d))
    return runs.sort("timestamp")["lr"].to_list()


def _every_probe_config():
    return digits_config(seeds=1, epochs=1, grid=(16,), tune_trials=3, tune_seeds=1,
                         tune_every_probe=True)


@pytest.mark.parametrize("side", ["below", "above"])
def test_a_tuning_at_every_probe_moves_its_window_past_the_end_its_best_trial_sits_at(
        tmp_path, monkeypatch, side):
    """The best rate lies far outside the first window: its best trial is the end rate, so the
    window moves one width that way, twice (WINDOW_MOVES), and the probe trains at the best trial
    of all three studies; the moved windows' trials lie beyond the first window's."""
    _loss_with_its_best_rate_at(1e-12 if side == "below" else 1e12, monkeypatch)
    row = measure(_every_probe_config(), out=tmp_path, device="cpu")
    assert row.tune_at == f"every-probe window:{LR_WINDOW:g} moves:{WINDOW_MOVES}"
    tried = _tunings_at(tmp_path, 16)
    assert len(tried) == 3 * (1 + WINDOW_MOVES)
    first, moved = tried[:3], tried[3:]
    width = LR_WINDOW ** 2
    if side == "below":
        assert max(moved) < min(first) and min(moved) > min(first) / width ** (WINDOW_MOVES + 1)
    else:
        assert min(moved) > max(first) and max(moved) < max(first) * width ** (WINDOW_MOVES + 1)
    probe = RunStore(tmp_path).table().filter(pl.col("role") == "probe")
    assert probe["lr"].to_list() == [min(tried) if side == "below" else max(tried)]
    assert "untuned" not in (row.flags or "")  # its moved windows found a finishing rate


def test_a_tuning_whose_best_trial_lies_inside_its_window_does_not_move_it(tmp_path, monkeypatch):
    """The best rate is the first window's middle trial: one study, whose best is the rate."""
    _loss_with_its_best_rate_at(1e-12, monkeypatch)
    measure(_every_probe_config(), out=tmp_path / "probe-window", device="cpu")
    middle = sorted(_tunings_at(tmp_path / "probe-window", 16)[:3])[1]
    _loss_with_its_best_rate_at(middle, monkeypatch)
    measure(_every_probe_config(), out=tmp_path / "inside", device="cpu")
    assert sorted(_tunings_at(tmp_path / "inside", 16)) == pytest.approx(
        sorted(_tunings_at(tmp_path / "probe-window", 16)[:3]))
    probe = RunStore(tmp_path / "inside").table().filter(pl.col("role") == "probe")
    assert probe["lr"].to_list() == pytest.approx([middle])


def test_a_moved_tuning_re_made_from_its_runs_trains_nothing(tmp_path, monkeypatch):
    """Each moved window ends where the last began, so every study replays only its own trials:
    the measurement re-made from the stored runs alone (no journal) trains nothing."""
    _loss_with_its_best_rate_at(1e-12, monkeypatch)
    reference = measure(_every_probe_config(), out=tmp_path / "ref", device="cpu")
    shutil.copytree(tmp_path / "ref" / "runs", tmp_path / "again" / "runs")
    trained = []
    monkeypatch.setattr(cell, "run", lambda spec, *a, **kw: trained.append(spec) or 1 / 0)
    again = measure(_every_probe_config(), out=tmp_path / "again", device="cpu")
    assert trained == [] and again.d_int == reference.d_int
    assert set(json.loads(again.run_keys)) == set(json.loads(reference.run_keys))


def _every_subspace_trial_diverges(monkeypatch, baseline: bool = False) -> None:
    """Tuning trials of subspace runs (trained without retries; with ``baseline``, of baseline
    runs instead) diverge; the rest train as usual."""
    real_run = cell.run

    def run(spec, *args, **kwargs):
        result = real_run(spec, *args, **kwargs)
        if (spec.d is None) != baseline or kwargs.get("max_retries", 1) > 0:
            return result
        return dataclasses.replace(result, diverged=True, val_score=0.0)

    monkeypatch.setattr(cell, "run", run)


def test_a_tuning_whose_every_trial_diverged_moves_down_and_keeps_the_smallest_rate(
        tmp_path, monkeypatch):
    """Every subspace trial diverges: the window moves down twice, and the probe trains at the
    smallest rate tried (as a single study's all-diverged choice); the cell is flagged untuned."""
    _every_subspace_trial_diverges(monkeypatch)
    row = measure(_every_probe_config(), out=tmp_path, device="cpu")
    tried = _tunings_at(tmp_path, 16)
    assert len(tried) == 3 * (1 + WINDOW_MOVES)
    probe = RunStore(tmp_path).table().filter(pl.col("role") == "probe")
    assert probe["lr"].to_list() == [min(tried)]
    assert row.flags.split(",")[-1] == "untuned"


def test_a_cell_whose_tuning_found_no_stable_rate_is_flagged_untuned_in_every_draw(
        tmp_path, monkeypatch):
    """The default protocol (one fixed window): every trial of the reference tuning diverges, so
    the probes run at the rate their retries find. Each draw and the pooled row say so, and the
    row re-made from the stored runs alone says so again; a cell whose trials finish does not."""
    config = digits_config(seeds=1, epochs=1, grid=(16, 32), tune_trials=3, tune_seeds=1, draws=2)
    plain = measure(config, out=tmp_path / "plain", device="cpu")
    assert "untuned" not in (plain.flags or "")
    _every_subspace_trial_diverges(monkeypatch)
    row = measure(config, out=tmp_path / "diverged", device="cpu")
    assert "untuned" in row.flags.split(",")
    draws = RunStore(tmp_path / "diverged").measurements().filter(pl.col("draws") == 1)
    assert draws.height == 2 and all("untuned" in f.split(",") for f in draws["flags"])
    shutil.copytree(tmp_path / "diverged" / "runs", tmp_path / "again" / "runs")
    monkeypatch.setattr(cell, "run", lambda spec, *a, **kw: 1 / 0)  # nothing may train
    again = measure(config, out=tmp_path / "again", device="cpu")
    assert again.flags == row.flags and again.d_int == row.d_int


def test_a_baseline_tuning_that_found_no_stable_rate_flags_its_cell_untuned(tmp_path, monkeypatch):
    """Every trial of the baseline's tuning diverges: its runs train at the rate their retries
    find, and so the threshold rests on an untuned rate, which the flag says."""
    _every_subspace_trial_diverges(monkeypatch, baseline=True)
    events = []
    row = measure(digits_config(seeds=1, epochs=1, grid=(16,), tune_trials=3, tune_seeds=1),
                  out=tmp_path, device="cpu", on_event=events.append)
    assert row.flags.split(",")[-1] == "untuned"
    said = [e for e in events if "every trial diverged" in e]
    assert len(said) == 1 and said[0].startswith("baseline tuning:")  # the progress says so too
