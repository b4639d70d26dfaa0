"""A diverged run is retried at half the rate (up to MAX_RETRIES = 8 times, enough to undo the
default search's largest carry, x256); only divergence at every rate scores 0.

The toy's loss (1/k) ||S theta - t||^2 has the Hessian (2/k) S^T S in theta, whose top eigenvalue
is 2 * group_size / groups = 20 at the defaults: plain SGD (no momentum, constant rate) on the
full space is stable for lr < 2/20 = 0.1 and diverges above it.
"""

import math

import polars as pl
import pytest

import idbench.data
from idbench.cell import run_spec
from idbench.config import MeasureConfig
from idbench.measurement import measure
from idbench.rows import run_row
from idbench.store import RunStore
from idbench.train import MAX_RETRIES, RunSpec, run


@pytest.fixture(scope="module")
def toy():
    return idbench.data.load("toy-sums")


def sgd_spec(lr: float) -> RunSpec:
    return RunSpec(model="toy-sums", dataset="toy-sums", seed=0, lr=lr, momentum=0.0, steps=300,
                   batch_size=16, schedule="constant", warmup=0.0)


def test_a_rate_above_the_stability_limit_is_retried_at_half_and_solves(toy):
    result = run(sgd_spec(0.15), toy)  # 0.15 > 0.1 diverges; 0.075 < 0.1 converges
    assert not result.diverged and result.val_score == 1.0
    assert result.retries == 1 and result.lr_final == pytest.approx(0.075)
    row = run_row(sgd_spec(0.15), result, cell="c", suite=None, role="probe",
                  metric=toy.metric, device="cpu")
    assert row.retries == 1 and row.lr_final == pytest.approx(0.075) and row.lr == 0.15
    assert row.run_key == sgd_spec(0.15).key()  # the key keeps the nominal rate


def test_only_divergence_at_every_rate_scores_zero(toy):
    result = run(sgd_spec(100.0), toy)  # 100, 50, ..., 100 / 2**8 = 0.39: all above 0.1
    assert result.diverged and result.val_score == 0.0 and math.isinf(result.val_loss)
    assert result.retries == MAX_RETRIES == 8
    assert result.lr_final == pytest.approx(100.0 / 2**8)


def test_a_rate_carried_x100_above_the_limit_is_halved_until_stable(toy):
    """What a probe far from its tuning point meets: 10 = 100 x the stability limit; halvings reach
    10 / 2**7 = 0.078 < 0.1 and solve the problem (three halvings stopped at 1.25 and scored 0)."""
    result = run(sgd_spec(10.0), toy)
    assert not result.diverged and result.val_score == 1.0
    assert result.retries == 7 and result.lr_final == pytest.approx(10.0 / 2**7)


def test_a_stable_rate_is_not_retried(toy):
    result = run(sgd_spec(0.05), toy)
    assert result.retries == 0 and result.lr_final == 0.05 and result.val_score == 1.0


def test_tuning_trials_are_not_retried(toy):
    result = run(sgd_spec(0.15), toy, max_retries=0)
    assert result.diverged and result.retries == 0


class _Remote:
    """Trains like a Dask executor (runs come back whole, tuning runs included) in this process."""

    name, slots, in_process = "remote", 1, False

    def map(self, fn, items):
        return [fn(item) for item in items]

    def cancel(self) -> None: ...

    def close(self) -> None: ...


def test_tuning_runs_are_not_retried_on_workers_either(tmp_path):
    """Equal keys, equal rows: a tuning run that diverges is stored diverged, not retried, whether
    it trained here or on a worker (a retried run's lower-rate history would reach the pruner)."""
    config = MeasureConfig(draws=1, model="toy-sums", dataset="toy-sums", projection="dense", seeds=1,
                           optimizer="sgd", momentum=0.0, schedule="constant", warmup=0.0,
                           steps=300, batch_size=16, grid=(10,), tune_trials=4,
                           lr_range=(0.01, 1.0))  # grid rates 0.18, 0.56 diverge
    tables = {}
    for name, executor in (("local", None), ("remote", _Remote())):
        measure(config, out=tmp_path / name, device="cpu", executor=executor)
        runs = RunStore(tmp_path / name).table().filter(pl.col("role") == "tune")
        tables[name] = runs.select("run_key", "diverged", "retries", "val_score").sort("run_key")
    assert tables["remote"]["diverged"].sum() >= 2 and tables["remote"]["retries"].sum() == 0
    assert tables["remote"].equals(tables["local"])


# collapse to chance without a NaN


@pytest.fixture(scope="module")
def digits():
    return idbench.data.load("digits")


def fc_spec(lr: float) -> RunSpec:
    """The full FC on digits, 3 epochs: at lr 3 SGD collapses it to chance with a finite loss."""
    return RunSpec(model="fc[depth=1,width=32]", dataset="digits", seed=0, lr=lr, epochs=3)


def test_at_chance_is_no_better_than_the_uniform_prediction(digits, toy):
    ln10 = math.log(10)
    assert digits.at_chance(0.10, ln10) and digits.at_chance(0.11, 50.0)
    assert not digits.at_chance(0.10, ln10 - 0.02)  # the loss has learned something
    assert not digits.at_chance(0.46, 4000.0)  # a wild run that still predicts
    assert not toy.at_chance(0.0, 1e6)  # regression: divergence is a NaN there


def test_a_run_collapsed_to_chance_without_nan_is_retried_at_half_the_rate(digits):
    collapsed = run(fc_spec(3.0), digits, max_retries=0)  # what the first attempt gives alone
    assert not collapsed.diverged and math.isfinite(collapsed.val_loss)
    assert digits.at_chance(collapsed.val_score, collapsed.val_loss)
    result = run(fc_spec(3.0), digits)
    assert result.retries >= 1 and result.lr_final == pytest.approx(3.0 / 2**result.retries)
    assert not result.diverged and result.val_score > collapsed.val_score + 0.1
    assert not digits.at_chance(result.val_score, result.val_loss)


def test_chance_at_every_rate_keeps_the_first_model(digits, monkeypatch):
    """A run at chance at every rate is scored as its nominal-rate attempt (a real model at
    chance, not 0), with every retry counted."""
    import idbench.train as train_module

    real_train, rates = train_module.train, []

    def at_chance_always(model, data, spec, **kwargs):
        result = real_train(model, data, spec, **kwargs)
        rates.append(spec.lr)
        result.val_score, result.val_loss = 0.1 + 0.001 * len(rates), 2.4  # chance, no NaN
        return result

    monkeypatch.setattr(train_module, "train", at_chance_always)
    result = run(fc_spec(0.1), digits)
    assert rates == pytest.approx([0.1 / 2**k for k in range(MAX_RETRIES + 1)])
    assert result.val_score == pytest.approx(0.101) and result.lr_final == 0.1
    assert result.retries == MAX_RETRIES and not result.diverged


def test_a_stored_run_at_chance_without_retries_is_trained_again(tmp_path, digits):
    """Runs stored before collapse was retried are not reused as they are: the measurement trains
    them again (same key), so its result does not depend on when its runs were stored."""
    config = MeasureConfig(draws=1, model="fc[depth=1,width=32]", dataset="digits", seeds=1, epochs=3,
                           lr=3.0, tune_trials=0, grid=(50,), projection="fastfood")
    store = RunStore(tmp_path)
    spec = fc_spec(3.0)
    stale = run(spec, digits, max_retries=0)  # at chance, as an older idbench stored it
    assert digits.at_chance(stale.val_score, stale.val_loss)
    store.put(run_row(spec, stale, cell="old", suite=None, role="baseline",
                      metric=digits.metric, device="cpu"))
    measure(config, out=tmp_path, device="cpu")
    again = store.get(spec.key())
    assert again.retries >= 1 and again.cell != "old"
    assert again.val_score > stale.val_score + 0.1


def test_a_stored_run_diverged_after_fewer_retries_is_trained_again(tmp_path, toy):
    """A run stored diverged after 3 halvings (before idbench made 8) is trained again with the
    halvings run() makes now, and its score replaces the stored 0."""
    config = MeasureConfig(draws=1, model="toy-sums", dataset="toy-sums", projection="dense", seeds=1,
                           optimizer="sgd", momentum=0.0, schedule="constant", warmup=0.0,
                           steps=300, batch_size=16, grid=(10,), tune_trials=0, lr=10.0)
    spec = run_spec(config, seed=0, lr=10.0)  # the baseline run: full space, 100 x the limit
    stale = run(spec, toy, max_retries=3)
    assert stale.diverged and stale.retries == 3
    store = RunStore(tmp_path)
    store.put(run_row(spec, stale, cell="old", suite=None, role="baseline",
                      metric=toy.metric, device="cpu"))
    measure(config, out=tmp_path, device="cpu")
    again = store.get(spec.key())
    assert not again.diverged and again.retries == 7 and again.cell != "old"
    assert again.val_score == 1.0
