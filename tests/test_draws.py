"""One measurement pooled from independent draws (idbench.draws): what each draw is, the pooled
estimate and interval, and what the pooled row lists."""

import json
import math
import threading

import pytest
from scipy.stats import t as student_t

from idbench.config import REPLICATE_STRIDE, MeasureConfig
from idbench.draws import draw_config, pool
from idbench.errors import IdbenchError
from idbench.estimate import pooled, pooled_ratio
from idbench.executors import LocalExecutor
from idbench.measurement import measure
from idbench.runinfo import Optimiser, RunInfo
from idbench.runner import plan
from idbench.store import RunStore
from idbench.suites import load_suite
from idbench.train import RunResult

pytestmark = pytest.mark.usefixtures("one_thread")


def config(**overrides) -> MeasureConfig:
    base = dict(model="fc[depth=1,width=16]", dataset="digits", projection="sparse", seeds=1,
                epochs=4, tune_trials=2, tune_seeds=1, d_min=8, d_max=1200, resolution=0.3,
                draws=3)
    return MeasureConfig(**{**base, **overrides})


def test_pooled_is_the_geometric_mean_with_a_t_interval_on_log_d():
    d, low, high = pooled([100.0, 200.0, 400.0])
    assert d == pytest.approx(200.0)
    half = student_t.ppf(0.975, 2) * math.log(2) / math.sqrt(3)  # the logs' sd is log 2
    assert (low, high) == pytest.approx((200 * math.exp(-half), 200 * math.exp(half)))


def test_the_ratio_of_pooled_estimates_is_welchs():
    value, low, high = pooled_ratio([100.0, 200.0, 400.0], [100.0, 200.0, 400.0])
    assert value == pytest.approx(1.0) and low < 1 < high
    value, low, high = pooled_ratio([200.0, 210.0, 190.0], [100.0, 105.0, 95.0])
    assert value == pytest.approx(2.0) and 1.7 < low < 2 < high < 2.3
    # equal spreads and sizes: Welch's degrees of freedom are 2(n - 1)
    a, b = [1.0, 2.0, 4.0], [2.0, 4.0, 8.0]
    _, low, high = pooled_ratio(a, b)
    half = student_t.ppf(0.975, 4) * math.sqrt(2 * math.log(2) ** 2 / 3)
    assert (low, high) == pytest.approx((0.5 * math.exp(-half), 0.5 * math.exp(half)))


def test_draw_i_is_replicate_r_times_R_plus_i_with_one_draw():
    pooled_config = config(replicate=2, draws=4)
    draws = [draw_config(pooled_config, i) for i in range(4)]
    assert [(c.replicate, c.draws) for c in draws] == [(8, 1), (9, 1), (10, 1), (11, 1)]
    assert config(draws=1).key() != config(draws=3).key() != config(draws=4).key()


def test_a_pooled_measurement_is_its_draws_pooled_and_lists_all_their_runs(tmp_path):
    row = measure(config(), out=tmp_path, device="cpu")
    draws = [measure(draw_config(config(), i), out=tmp_path, device="cpu") for i in range(3)]
    assert all(d.timestamp < row.timestamp for d in draws)  # stored first, read back here
    estimates = [d.d_int for d in draws]
    assert None not in estimates and len(set(estimates)) == 3  # found, and each its own
    assert json.loads(row.draw_d_ints) == estimates
    assert (row.d_int, row.ci_low, row.ci_high) == pytest.approx(pooled(estimates))
    assert (row.draws, row.replicate) == (3, 0)
    assert row.n_runs == sum(d.n_runs for d in draws)
    listed = set(json.loads(row.run_keys))
    assert listed == set().union(*(json.loads(d.run_keys) for d in draws))
    assert len(listed) == row.n_runs  # no run shared between draws
    assert row.ci_covers == "seeds, baseline seeds, the tuner's draw (3 draws)"
    scores = json.loads(row.baseline_scores)
    assert scores == [s for d in draws for s in json.loads(d.baseline_scores)]
    assert row.threshold_score == pytest.approx(0.9 * sum(scores) / 3)
    stored = set(RunStore(tmp_path).measurements()["cell"])
    assert stored == {row.cell, *(d.cell for d in draws)}  # each draw a row of its own


def test_a_censored_draw_makes_the_pooled_row_censored():
    base = dict(d_int=100.0, censored=False, d_lo=64, d_hi=128, baseline_scores="[0.9]",
                baseline_mean=0.9, lr_baseline=0.1, lr_subspace=1.0, n_runs=10, run_keys='["a"]',
                probes="[]", flags="", wall_s=1.0)
    rows = [_row(**base), _row(**{**base, "d_int": None, "censored": True, "d_hi": None,
                                  "run_keys": '["b"]'})]
    found = pool(config(draws=2), rows, "key")
    assert (found.censored, found.d_int, found.ci_low, found.d_hi) == (True, None, None, None)
    assert json.loads(found.draw_d_ints) == [100.0, None] and found.n_runs == 20


def _row(**fields):
    """A measurement row holding only what pooling reads (not validated: the rest is unused)."""
    from idbench.schema import MeasurementRow

    return MeasurementRow.model_construct(**fields)


def test_a_draw_without_a_bracket_does_not_make_the_pooled_row_pass_at_d_min():
    """A draw whose fitted curve crosses while its largest probes fail has no bracket (d_lo and
    d_hi None): the pooled bracket is the other draws', not "passed at d_min" (shown "≤ d_hi")."""
    from idbench.leaderboard.tables import fmt_d_int

    base = dict(d_int=100.0, censored=False, d_lo=64, d_hi=128, baseline_scores="[0.9]",
                baseline_mean=0.9, lr_baseline=0.1, lr_subspace=1.0, n_runs=10, run_keys='["a"]',
                probes="[]", flags="", wall_s=1.0, d_max=1024)
    bracketless = {**base, "d_int": 81.0, "d_lo": None, "d_hi": None, "run_keys": '["b"]'}
    found = pool(config(draws=2), [_row(**base), _row(**bracketless)], "key")
    assert (found.d_lo, found.d_hi, found.d_int) == (64, 128, 90.0)
    assert fmt_d_int(found.model_dump()) == "90"
    alone = pool(config(draws=2), [_row(**bracketless), _row(**bracketless)], "key")
    assert (alone.d_lo, alone.d_hi) == (None, None) and fmt_d_int(alone.model_dump()) == "81"


def test_a_shared_curve_that_falls_between_draws_is_flagged_with_one_seed_each():
    """With one seed per draw no draw can tell a falling curve from noise; the probes every draw
    shares can: here every draw's score drops by 0.2 from d = 64 to 128."""
    probes = [{"d": 32, "scores": [0.5]}, {"d": 64, "scores": [0.95]}, {"d": 128, "scores": [0.75]}]
    rows = [_row(d_int=40.0 + i, censored=False, d_lo=32, d_hi=64, baseline_scores="[0.9]",
                 baseline_mean=0.9 + 0.01 * i, lr_baseline=0.1, lr_subspace=1.0, n_runs=5,
                 run_keys=f'["{i}"]', wall_s=1.0, flags="",
                 probes=json.dumps([{**p, "scores": [p["scores"][0] + 0.01 * i]} for p in probes]))
            for i in range(3)]
    assert pool(config(draws=3), rows, "key").flags == "falls"
    steady = [r.model_copy(update={"probes": json.dumps(probes[:2])}) for r in rows]
    assert pool(config(draws=3), steady, "key").flags == ""


def test_a_dry_run_counts_the_runs_of_a_pooled_cells_draws(tmp_path):
    suite = tmp_path / "pooled.yaml"
    suite.write_text('name: pooled\nversion: "1"\ndefaults: {draws: 2, epochs: 1, tune_trials: 0, '
                     'grid: [8]}\ngrids: [{models: ["fc[depth=1,width=8]"], datasets: [digits]}]\n')
    assert plan(suite, out=tmp_path / "out")[0]["stored_runs"] == 0
    row = measure(load_suite(suite).cells()[0].config, out=tmp_path / "out", device="cpu")
    planned = plan(suite, out=tmp_path / "out")[0]
    assert (planned["stored_runs"], planned["measured"]) == (row.n_runs, True) == (4, True)


class _Workers(LocalExecutor):
    """A distributed executor's stand-in that trains nothing: a made-up score rising with d (the
    baseline 0.9). Each thread's first batch of runs waits until ``parties`` threads have one, so
    draws measured one after the other break the barrier. With ``fail_replicate``, that draw's
    runs raise and every other draw's runs wait for ``cancel``."""

    in_process = False
    slots = 2

    def __init__(self, parties: int, fail_replicate: int | None = None) -> None:
        self.barrier = threading.Barrier(parties, timeout=60)
        self.fail_replicate = fail_replicate
        self.cancelled = threading.Event()
        self.released_by_cancel: list[bool] = []
        self.threads: set[int] = set()
        self.lock = threading.Lock()

    def map(self, fn, items):
        specs = [spec for spec, _ in items]
        with self.lock:
            first = threading.get_ident() not in self.threads
            self.threads.add(threading.get_ident())
        if first:
            self.barrier.wait()
        if self.fail_replicate is not None:
            if specs[0].seed // REPLICATE_STRIDE == self.fail_replicate:
                raise RuntimeError(f"draw {self.fail_replicate} failed")
            released = self.cancelled.wait(timeout=60)
            with self.lock:
                self.released_by_cancel.append(released)
            raise IdbenchError("cancelled")
        info = RunInfo(D=1210, subspace=None, optimiser=Optimiser("sgd", 0.9, 0.0))
        score = [0.9 if s.d is None else min(0.95, 0.2 + 0.1 * math.log2(s.d)) for s in specs]
        return [(RunResult(val_score=v, val_loss=1 - v, test_score=v, train_loss=1 - v, steps=1,
                           wall_s=0.0, info=info), "cpu") for v in score]

    def cancel(self) -> None:
        self.cancelled.set()


def test_a_distributed_executor_measures_the_draws_at_once_and_pools_them(tmp_path):
    workers = _Workers(parties=3)
    row = measure(config(tune_trials=0), out=tmp_path, device="cpu", executor=workers)
    assert len(workers.threads) == 3  # a thread per draw, all three training at once
    draws = [measure(draw_config(config(tune_trials=0), i), out=tmp_path, device="cpu")
             for i in range(3)]  # each stored as a draw, so read back here
    assert json.loads(row.draw_d_ints) == [d.d_int for d in draws]
    assert row.d_int == pytest.approx(pooled([d.d_int for d in draws])[0])


def test_a_failing_draw_cancels_the_others_and_its_error_is_raised(tmp_path):
    workers = _Workers(parties=3, fail_replicate=1)
    with pytest.raises(RuntimeError, match="draw 1 failed"):
        measure(config(tune_trials=0), out=tmp_path, device="cpu", executor=workers)
    assert workers.released_by_cancel == [True, True]  # the other draws stopped by the cancel
    assert not [t for t in threading.enumerate() if t.name.startswith("idbench-draw")]
    assert RunStore(tmp_path).measurements().height == 0  # no draw finished, none stored
