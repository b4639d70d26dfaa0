"""CellRuns: stored runs are found again when a rate differs from theirs in its last bits."""

import math
import shutil

import pytest

import idbench.cell as cell
import idbench.lr.tuner as tuner
from idbench.measurement import measure

from test_measurement import digits_config


@pytest.mark.parametrize("lr, expected", [
    (0.1 * (1 + 4e-16), 0.1),        # an ulp or two off a stored rate: that rate
    (0.3 * (1 - 5e-10), 0.3),        # within SAME_RATE below
    (0.3 * (1 + 5e-10), 0.3),        # and above
    (0.3 * (1 + 5e-9), 0.3 * (1 + 5e-9)),  # further: a rate of its own
    (1e-4, 1e-4),                    # below every stored rate
    (7.0, 7.0),                      # above every stored rate
])
def test_stored_rate_snaps_only_within_same_rate(lr, expected):
    assert cell.stored_rate(lr, [0.001, 0.1, 0.3, 2.0]) == expected
    assert cell.stored_rate(lr, []) == lr


def test_stored_rate_takes_the_nearer_of_two_near_rates():
    assert cell.stored_rate(1 + 4e-10, [1.0, 1 + 6e-10]) == 1 + 6e-10
    assert cell.stored_rate(1 + 2e-10, [1.0, 1 + 6e-10]) == 1.0


def test_a_measurement_elsewhere_reuses_runs_whose_rates_differ_in_the_last_bits(tmp_path,
                                                                                 monkeypatch):
    """Re-measured from the runs alone (no Optuna journal, as from a published runs.parquet) on a
    machine whose tuner proposes every rate 2 ulps away, the cell trains nothing and matches."""
    reference = measure(digits_config(), out=tmp_path / "ref", device="cpu")
    shutil.copytree(tmp_path / "ref" / "runs", tmp_path / "again" / "runs")

    real_tune_lr = tuner.tune_lr

    def drifting_tune_lr(train_at, **kwargs):
        def drift(p):
            return {**p, "lr": p["lr"] * (1 + 4e-16)}

        best, tried = real_tune_lr(lambda lr, report, **extra: train_at(
            lr * (1 + 4e-16), report, **extra), **kwargs)
        return drift(best), [drift(p) for p in tried]

    trained = []
    real_execute = cell.execute
    monkeypatch.setattr(tuner, "tune_lr", drifting_tune_lr)
    monkeypatch.setattr(cell, "execute", lambda job, **kw: trained.append(job[0].lr)
                        or real_execute(job, **kw))
    again = measure(digits_config(), out=tmp_path / "again", device="cpu")
    assert trained == []
    assert again.lr_baseline != reference.lr_baseline  # the drift reached the tuned rate
    assert math.isclose(again.lr_baseline, reference.lr_baseline, rel_tol=1e-15)
    for field in ("d_int", "d_lo", "d_hi", "baseline_mean", "probes", "ci_low", "ci_high",
                  "n_runs"):
        assert getattr(again, field) == getattr(reference, field), field
