"""The code after issue 10's refactoring measures what the code before it measured.

``tests/fixtures/pre-refactor/`` holds a small suite (every protocol option pinned, no tuning), the
run store idbench wrote for it at commit e31009f (before the refactoring) and its leaderboard.
The first test measures the suite's cells again with the current code and compares the numbers that decide
d_int: the probed d, the score of every seed at every probe, the bracket and the baseline. Scores
are fractions of the 144 validation examples, compared exactly; the baseline mean to 1e-12.
The second test opens the committed store with the current code and finds every run under the key
the current code computes for it: run keys of existing stores do not change.

The dense and Fastfood projections have drawn their entries from a counter-based generator since
the fixture was written (other random matrices of the same distributions): their cells are
compared by the baseline, exactly, and by the mean score at every d both probed, within the noise
of one draw (0.05 on average); the dense cell's d_int90 too (x1.25). The Fastfood cell's
d_int90 is not compared: under the suite's fixed subspace rate a draw can fail at d = 512 and
1,000 after passing at 256, and the monotone fit then pools those probes below the threshold.
"""

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from idbench.cell import run_spec
from idbench.measurement import cell_key, measure
from idbench.store import RunStore
from idbench.suites import load_suite

FIXTURE = Path(__file__).parent / "fixtures" / "pre-refactor"


def _by_projection(measurements: pl.DataFrame) -> dict[str, dict]:
    return {row["projection"]: row for row in measurements.iter_rows(named=True)}


@pytest.fixture(scope="module")
def old_store(tmp_path_factory) -> RunStore:
    copy = tmp_path_factory.mktemp("old") / "store"
    shutil.copytree(FIXTURE / "store", copy)
    return RunStore(copy)


def test_current_code_measures_what_the_code_before_the_refactoring_measured(tmp_path, old_store):
    suite = load_suite(FIXTURE / "suite.yaml")
    rows = [measure(cell.config, out=tmp_path / "out", suite=suite.name, device="cpu")
            for cell in suite.cells()]
    before = _by_projection(pl.read_parquet(FIXTURE / "leaderboard" / "measurements.parquet"))
    after = {row.projection: row.model_dump() for row in rows}
    assert set(after) == set(before) == {"dense", "fastfood"}
    for projection, old in before.items():
        new = after[projection]
        assert new["baseline_mean"] == pytest.approx(old["baseline_mean"], abs=1e-12)
        # another draw of P (see above): the same curve within one draw's noise
        old_means = {p["d"]: sum(p["scores"]) / 3 for p in json.loads(old["probes"])}
        new_means = {p["d"]: sum(p["scores"]) / 3 for p in json.loads(new["probes"])}
        shared = sorted(set(old_means) & set(new_means))
        assert len(shared) >= 5
        assert sum(abs(old_means[d] - new_means[d]) for d in shared) / len(shared) <= 0.05
        if projection == "dense":
            assert not new["censored"]
            assert 1 / 1.25 <= new["d_hi"] / old["d_hi"] <= 1.25
    # the stored measurements of the old run agree with its published leaderboard
    assert {k: v["d_hi"] for k, v in _by_projection(old_store.measurements()).items()} == {
        k: v["d_hi"] for k, v in before.items()}


def test_committed_store_finds_every_run_under_the_key_of_the_current_code(old_store):
    suite = load_suite(FIXTURE / "suite.yaml")
    stored = old_store.table()
    assert stored.height == 54
    expected: set[str] = set()
    for cell in suite.cells():
        config = cell.config
        measurement = old_store.get_measurement(cell_key(config))
        assert measurement is not None, f"no measurement under the cell key of {config.projection}"
        rows = stored.filter(pl.col("cell") == measurement.cell)
        for row in rows.iter_rows(named=True):
            d = row["d"]
            lr = config.lr if d is None else config.lr_subspace
            spec = run_spec(config, seed=row["seed"], lr=lr, d=d)
            assert spec.key() == row["run_key"], row
            assert old_store.get(spec.key()) is not None
            expected.add(spec.key())
    assert expected == set(stored["run_key"])
