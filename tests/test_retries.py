"""A diverged run is retried at half the rate (up to 3 times); only divergence at every rate scores 0.

The toy's loss (1/k) ||S theta - t||^2 has the Hessian (2/k) S^T S in theta, whose top eigenvalue
is 2 * group_size / groups = 20 at the defaults: plain SGD (no momentum, constant rate) on the
full space is stable for lr < 2/20 = 0.1 and diverges above it.
"""

import math

import polars as pl
import pytest

import idbench.data
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
    result = run(sgd_spec(10.0), toy)  # 10, 5, 2.5, 1.25: all far above 0.1
    assert result.diverged and result.val_score == 0.0 and math.isinf(result.val_loss)
    assert result.retries == MAX_RETRIES == 3
    assert result.lr_final == pytest.approx(10.0 / 2**3)


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
    config = MeasureConfig(model="toy-sums", dataset="toy-sums", projection="dense", seeds=1,
                           optimizer="sgd", momentum=0.0, schedule="constant", warmup=0.0,
                           steps=300, batch_size=16, grid=(10,), tune_trials=4,
                           lr_range=(0.01, 1.0), lr_window=None)  # grid rates 0.18, 0.56 diverge
    tables = {}
    for name, executor in (("local", None), ("remote", _Remote())):
        measure(config, out=tmp_path / name, device="cpu", executor=executor)
        runs = RunStore(tmp_path / name).table().filter(pl.col("role") == "tune")
        tables[name] = runs.select("run_key", "diverged", "retries", "val_score").sort("run_key")
    assert tables["remote"]["diverged"].sum() >= 2 and tables["remote"]["retries"].sum() == 0
    assert tables["remote"].equals(tables["local"])
