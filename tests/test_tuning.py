"""What drives the learning rate, and so d_int: tuning resume, lr carrying and its window,
tuning at every probe, and the locks that let concurrent cells share runs."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import threading

import optuna
import pytest

from idbench.cell import CellRuns, holding, run_spec
from idbench.config import MeasureConfig
from idbench.errors import IdbenchError
from idbench.executors import LocalExecutor
from idbench.lr.carry import tuning_range
from idbench.lr.options import LR_WINDOW, WINDOW_MOVES
from idbench.measurement import measure
from idbench.runinfo import Optimiser, RunInfo
from idbench.store import RunStore
from idbench.train import RunResult
from idbench import tuning
from idbench.tuning import open_storage, tried_rates, tune_lr


def bowl(calls: list[float], stop_after: int | None = None):
    """A training stand-in: the validation loss is a bowl in log lr (minimum at lr = 0.3), reported
    at three evaluations; with ``stop_after``, the process 'dies' at that call."""

    def train_at(lr: float, report) -> RunResult:
        if stop_after is not None and len(calls) == stop_after:
            raise KeyboardInterrupt
        calls.append(lr)
        loss = (math.log(lr) - math.log(0.3)) ** 2 + 0.1
        for index in range(3):
            report(index, 1 - loss, loss * (3 - index))
        return RunResult(val_score=1 - loss, val_loss=loss, test_score=0.0, train_loss=loss,
                         steps=3, wall_s=0.0)

    return train_at


def test_interrupted_tuning_resumes_to_exactly_the_uninterrupted_study(tmp_path):
    options = dict(study_name="baseline-x", n_trials=8, lr_range=(1e-3, 10.0))
    whole: list[float] = []
    best, tried = tune_lr(bowl(whole), storage=str(tmp_path / "a.log"), **options)
    # every trial ran (pruned ones part-way)
    assert len(whole) == 8 and {p["lr"] for p in tried} <= set(whole)

    first: list[float] = []
    with pytest.raises(KeyboardInterrupt):  # killed in the middle of the sixth trial
        tune_lr(bowl(first, stop_after=5), storage=str(tmp_path / "b.log"), **options)
    rest: list[float] = []
    best_resumed, tried_resumed = tune_lr(bowl(rest), storage=str(tmp_path / "b.log"), **options)
    assert first + rest == whole  # the same rates, in the same order
    assert (best_resumed, tried_resumed) == (best, tried)
    assert best["lr"] == pytest.approx(0.3, rel=1.0)  # near the bottom of the bowl
    assert set(best) == {"lr"}  # no damping_range: the rate alone


def valley(calls: list[tuple[float, float]], stop_after: int | None = None):
    """ngd's stand-in: the loss is a bowl in log(lr / damping) (minimum at lr / damping = 3) plus
    a shallow one in log damping (minimum at 0.1); with ``stop_after``, the process 'dies'."""

    def train_at(lr: float, report, damping: float) -> RunResult:
        if stop_after is not None and len(calls) == stop_after:
            raise KeyboardInterrupt
        calls.append((lr, damping))
        loss = (math.log(lr / damping) - math.log(3.0)) ** 2 \
            + 0.1 * (math.log(damping) - math.log(0.1)) ** 2 + 0.1
        for index in range(3):
            report(index, 1 - loss, loss * (3 - index))
        return RunResult(val_score=1 - loss, val_loss=loss, test_score=0.0, train_loss=loss,
                         steps=3, wall_s=0.0)

    return train_at


class Killed(BaseException):
    """A process killed mid-trial (SIGKILL): optuna cannot mark the trial failed, so it stays
    RUNNING in the journal (a KeyboardInterrupt, caught by optuna, ends it as FAIL)."""


def test_a_trial_left_running_by_a_killed_process_does_not_move_the_resumed_study(tmp_path):
    """TPE counts a trial left RUNNING and proposes another rate after it than an uninterrupted
    study would; a resumed study fails such trials first (those whose process is gone: another
    live process's trial is left running) and proposes what it would have."""
    options = dict(study_name="subspace-x", n_trials=7, lr_range=(1e-3, 10.0))
    whole: list[float] = []
    tune_lr(bowl(whole), storage=str(tmp_path / "a.log"), **options)

    first: list[float] = []
    train = bowl(first)

    def killed_at_the_second(lr: float, report) -> RunResult:
        if len(first) == 1:
            raise Killed
        return train(lr, report)

    with pytest.raises(Killed):
        tune_lr(killed_at_the_second, storage=str(tmp_path / "b.log"), **options)
    study = optuna.load_study(study_name="subspace-x",
                              storage=open_storage(str(tmp_path / "b.log")))
    stale = study.trials[-1]
    assert stale.state == optuna.trial.TrialState.RUNNING
    assert stale.user_attrs["process"] == f"{socket.gethostname()}:{os.getpid()}"
    tune_lr(bowl([]), storage=str(tmp_path / "b.log"), **{**options, "n_trials": 1})
    assert study.trials[stale.number].state == optuna.trial.TrialState.RUNNING  # its process lives
    gone = subprocess.Popen(["true"])
    gone.wait()
    study._storage.set_trial_user_attr(stale._trial_id, "process",
                                       f"{socket.gethostname()}:{gone.pid}")  # as if killed
    rest: list[float] = []
    tune_lr(bowl(rest), storage=str(tmp_path / "b.log"), **options)
    assert first + rest == whole


def test_an_interrupted_joint_study_of_rate_and_damping_resumes_to_the_uninterrupted_one(tmp_path):
    options = dict(study_name="ngd-x", n_trials=10, lr_range=(1e-3, 10.0),
                   damping_range=(1e-3, 10.0))
    whole: list[tuple[float, float]] = []
    best, tried = tune_lr(valley(whole), storage=str(tmp_path / "a.log"), **options)
    assert len(whole) == 10 and set(best) == {"lr", "damping"}
    assert best in tried and len({p["damping"] for p in tried}) == len(tried)  # damping searched

    first: list[tuple[float, float]] = []
    with pytest.raises(KeyboardInterrupt):  # killed in the middle of the seventh trial
        tune_lr(valley(first, stop_after=6), storage=str(tmp_path / "b.log"), **options)
    rest: list[tuple[float, float]] = []
    best_resumed, tried_resumed = tune_lr(valley(rest), storage=str(tmp_path / "b.log"), **options)
    assert first + rest == whole  # the same (rate, damping) pairs, in the same order
    assert (best_resumed, tried_resumed) == (best, tried)


def test_the_first_joint_trials_cover_both_ranges_without_fixing_their_ratio(tmp_path):
    calls: list[tuple[float, float]] = []
    tune_lr(valley(calls), study_name="grid2", storage=str(tmp_path / "g.log"), n_trials=4,
            lr_range=(1e-3, 10.0), damping_range=(1e-4, 1.0))
    lrs, dampings = zip(*calls)
    assert [math.log10(lr) for lr in lrs] == pytest.approx([-2.5, -1.5, -0.5, 0.5])
    assert [math.log10(d) for d in dampings] == pytest.approx([-3.5, -1.5, -2.5, -0.5])


@pytest.mark.parametrize("draw", [1, 2, 3, 7])
def test_another_draw_puts_one_grid_trial_in_each_bin_away_from_the_centres(draw):
    lo, hi, n = 1e-3, 10.0, 4
    centres = tuning.startup_grid((lo, hi), n)
    moved = tuning.startup_grid((lo, hi), n, draw)
    width = math.log10(hi / lo) / n
    bins = [math.floor((math.log10(lr / lo)) / width) for lr in moved]
    assert bins == list(range(n))  # still an even cover: one rate in each bin
    assert all(not math.isclose(a, b, rel_tol=1e-3) for a, b in zip(moved, centres))
    assert tuning.startup_grid((lo, hi), n, 0) == centres  # draw 0: the published grid


def test_the_first_trials_cover_the_range_on_an_even_log_grid(tmp_path):
    calls: list[float] = []
    tune_lr(bowl(calls), study_name="grid", storage=str(tmp_path / "g.log"), n_trials=4,
            lr_range=(1e-3, 10.0))
    logs = [math.log10(lr) for lr in calls]
    assert logs == pytest.approx([-2.5, -1.5, -0.5, 0.5])


@pytest.mark.parametrize(
    "optimizer,method,rule",
    [("sgd", "fpd", "inverse-d"), ("adam", "fpd", "inverse-sqrt-d"), ("adam", "rbd", "inverse-d")],
)
def test_auto_lr_scaling_carries_the_rate_by_the_rule_of_the_optimiser(optimizer, method, rule):
    config = MeasureConfig(model="fc", dataset="digits", optimizer=optimizer, method=method)
    assert config.resolved_lr_scaling == rule
    carried = config.subspace_lr(0.4, 100, 400)
    assert carried == pytest.approx(0.1 if rule == "inverse-d" else 0.2)
    none = MeasureConfig(model="fc", dataset="digits", lr_scaling="none")
    assert none.subspace_lr(0.4, 100, 400) == 0.4


def test_the_subspace_lr_is_tuned_in_a_window_around_the_carried_baseline_rate():
    config = MeasureConfig(model="fc", dataset="digits")  # sgd: inverse-d
    low, high = tuning_range(config, lr_baseline=0.1, D=10_000, d=100)
    prior = 0.1 * 10_000 / 100  # the baseline rate carried from d = D to d = 100
    assert (low, high) == pytest.approx((prior / LR_WINDOW, prior * LR_WINDOW))
    assert tuning_range(config, lr_baseline=math.nan, D=10_000, d=100) == config.lr_range


def test_tune_every_probe_tunes_the_rate_at_each_probed_d(tmp_path):
    config = MeasureConfig(draws=1, model="fc[depth=1,width=16]", dataset="digits", projection="fastfood",
                           seeds=1, epochs=2, grid=(16, 64), d_max=100, tune_trials=2, tune_seeds=1,
                           tune_every_probe=True)
    row = measure(config, out=tmp_path, device="cpu")
    assert row.tune_at == "every-probe window:10 moves:2" and row.lr_subspace is None
    runs = RunStore(tmp_path).table()
    tuned_at = sorted(set(runs.filter(runs["role"] == "tune")["d"].drop_nulls().to_list()))
    assert tuned_at == [16, 64]  # each probe's own studies: 2 trials each, a moved window's too
    per_d = runs.filter((runs["role"] == "tune") & runs["d"].is_not_null())["d"].value_counts()
    assert set(per_d["count"]) <= {2 * (1 + moves) for moves in range(WINDOW_MOVES + 1)}


def test_locks_of_one_name_exclude_each_other_and_of_other_names_do_not():
    order: list[str] = []
    inside, release = threading.Event(), threading.Event()

    def first() -> None:
        with holding(["a", "b"]):
            inside.set()
            release.wait(timeout=10)
            order.append("first")

    thread = threading.Thread(target=first)
    thread.start()
    inside.wait(timeout=10)
    with holding(["c"]):  # another name: taken while the first thread holds a and b
        order.append("other")
    release.set()
    with holding(["b"]):  # the same name: only after the first thread let go
        order.append("same")
    thread.join()
    assert order == ["other", "first", "same"]


class _GatedExecutor(LocalExecutor):
    """Trains nothing: returns a made-up result per spec, and holds its first call until told."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.entered, self.release = threading.Event(), threading.Event()

    def map(self, fn, items):
        items = list(items)
        self.calls.append([spec.key() for spec, _ in items])
        if len(self.calls) == 1:
            self.entered.set()
            self.release.wait(timeout=10)
        info = RunInfo(D=1210, subspace=None, optimiser=Optimiser("sgd", 0.9, 0.0))
        return [(RunResult(val_score=0.9, val_loss=0.3, test_score=0.9, train_loss=0.3, steps=1,
                           wall_s=0.0, info=info), "cpu") for _ in items]


def test_concurrent_cells_train_a_shared_baseline_once_and_both_use_it(tmp_path):
    store, executor = RunStore(tmp_path), _GatedExecutor()
    configs = [MeasureConfig(draws=1, model="fc[depth=1,width=16]", dataset="digits", projection=p,
                             seeds=2, tune_trials=0) for p in ("dense", "fastfood")]
    cells = [CellRuns(c, store, executor, "cpu", None, None)
             for c in configs]
    specs = [run_spec(configs[0], seed=s, lr=0.1) for s in range(2)]
    assert specs == [run_spec(configs[1], seed=s, lr=0.1) for s in range(2)]  # shared baseline
    results: dict[int, list] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(
        i, cells[i].runs(specs, "baseline"))) for i in range(2)]
    threads[0].start()
    executor.entered.wait(timeout=10)  # the first cell is training the baseline
    threads[1].start()
    executor.release.set()
    for thread in threads:
        thread.join(timeout=30)
    assert executor.calls == [[s.key() for s in specs]]  # trained once, by one cell
    assert [r.run_key for r in results[0]] == [r.run_key for r in results[1]]
    assert set(cells[1].used) == {s.key() for s in specs}  # the other cell counts them as used


def test_ngd_damping_is_tuned_with_the_rate_and_recorded_in_runs_and_measurement(tmp_path):
    options = dict(model="fc[depth=1,width=16]", dataset="digits", projection="fastfood",
                   optimizer="ngd", draws=1, seeds=1, epochs=1, grid=(16, 64), d_max=100, tune_trials=3,
                   tune_seeds=1, ngd_samples=4)
    config = MeasureConfig(**options, damping_range=(1e-3, 1.0))
    assert config.key() != MeasureConfig(**options).key()  # a recorded choice of the cell
    row = measure(config, out=tmp_path, device="cpu")
    runs = RunStore(tmp_path).table()
    tune = runs.filter(runs["role"] == "tune")
    assert tune.height == 6  # 3 joint trials for the baseline, 3 at d_ref
    assert tune["ngd_damping"].n_unique() == 3  # each trial at its own damping
    probes = runs.filter(runs["role"] == "probe")
    subspace_trials = tune.filter(tune["d"].is_not_null())["ngd_damping"].to_list()
    assert probes["ngd_damping"].unique().to_list() == [row.ngd_damping]
    assert row.ngd_damping in subspace_trials and row.ngd_damping != 0.1  # tuned, not the default
    assert row.damping_range == "[0.001, 1.0]"
    baseline = runs.filter(runs["role"] == "baseline")["ngd_damping"].to_list()
    assert baseline[0] in tune.filter(tune["d"].is_null())["ngd_damping"].to_list()
    # a rerun of the cell reuses every run: its study resumes to the same damping
    again = measure(config.model_copy(), out=tmp_path / "again", device="cpu")
    assert again.ngd_damping == row.ngd_damping and again.d_int == row.d_int


def test_damping_range_needs_ngd_and_tuning():
    with pytest.raises(IdbenchError, match="damping_range tunes ngd's damping"):
        MeasureConfig.build(model="fc", dataset="digits", damping_range=(1e-3, 1.0))
    with pytest.raises(IdbenchError, match="needs optimizer ngd and tune_trials > 0"):
        MeasureConfig.build(model="fc", dataset="digits", optimizer="ngd", tune_trials=0,
                            damping_range=(1e-3, 1.0))
    with pytest.raises(IdbenchError, match="0 < low < high"):
        MeasureConfig.build(model="fc", dataset="digits", optimizer="ngd",
                            damping_range=(1.0, 1e-3))


def test_ngd_options_are_null_in_rows_of_other_optimisers(tmp_path):
    options = dict(model="fc[depth=1,width=16]", dataset="digits", projection="fastfood",
                   draws=1, seeds=1, epochs=1, grid=(16,), d_max=100, tune_trials=0)
    for optimizer in ("sgd", "adam"):
        row = measure(MeasureConfig(**options, optimizer=optimizer), out=tmp_path / optimizer,
                      device="cpu")
        runs = RunStore(tmp_path / optimizer).table()
        assert runs.height == 2 and set(runs["optimizer"]) == {optimizer}
        for column in ("ngd_samples", "ngd_damping", "ngd_refresh"):
            assert getattr(row, column) is None
            assert runs[column].null_count() == runs.height


def test_the_power_of_two_grid_holds_powers_of_two_in_the_range_spread_evenly():
    assert tuning.power_of_two_grid((0.01, 1.0), 10) == [2.0 ** k for k in range(-6, 1)]
    assert tuning.power_of_two_grid((0.01, 1.0), 3) == [2.0 ** -5, 2.0 ** -3, 2.0 ** -1]
    assert tuning.power_of_two_grid((0.25, 0.5), 4) == [0.25, 0.5]  # the ends count
    other = tuning.power_of_two_grid((0.01, 1.0), 3, draw=1)
    assert other != tuning.power_of_two_grid((0.01, 1.0), 3) and len(set(other)) == 3
    assert all(math.log2(lr).is_integer() and 0.01 <= lr <= 1.0 for lr in other)


def test_a_power_of_two_study_tries_each_power_once_and_keeps_the_best(tmp_path):
    calls: list[float] = []
    best, tried = tune_lr(bowl(calls), study_name="pow2-x", storage=str(tmp_path / "p.log"),
                          n_trials=12, lr_range=(0.01, 8.0), powers=True)
    assert calls == [2.0 ** k for k in range(-6, 4)]  # ten powers: ten trials, none by TPE
    assert best == {"lr": 0.25}  # the power of two nearest the bowl's bottom, 0.3
    assert len(tried) == 10  # the grid is never pruned


def test_tried_rates_holds_the_pruned_trials_beside_the_complete_ones(tmp_path):
    """A moved window asks which rates a study tried: those it judged worse on the way count, a
    failed trial (an error, not a verdict) does not."""
    storage = str(tmp_path / "j.log")
    study = optuna.create_study(study_name="s", storage=open_storage(storage))
    rate = {"lr": optuna.distributions.FloatDistribution(1e-3, 10, log=True)}
    for lr, state in ((0.5, optuna.trial.TrialState.COMPLETE),
                      (0.05, optuna.trial.TrialState.PRUNED),
                      (5.0, optuna.trial.TrialState.FAIL)):
        study.enqueue_trial({"lr": lr})
        trial = study.ask(rate)
        assert trial.params["lr"] == lr
        study.tell(trial, 1.0 if state == optuna.trial.TrialState.COMPLETE else None, state=state)
    assert sorted(tried_rates("s", storage)) == [0.05, 0.5]
