"""The code after issue 10's refactoring measures what the code before it measured.

``tests/fixtures/pre-refactor/`` holds a small suite (every protocol option pinned, no tuning), the
run store idbench wrote for it at commit e31009f (before the refactoring) and its leaderboard.
The first test measures the suite's cells again with the current code and compares the numbers that decide
d_int: the probed d, the score of every seed at every probe, the bracket and the baseline. Scores
are fractions of the 144 validation examples, compared exactly; the baseline mean to 1e-12.
The second test opens the committed store with the current code and finds every run under the key
the current code computes for it: run keys of existing stores do not change.

The dense projection has drawn its entries from a counter-based generator since the fixture was
written (another random matrix of the same distribution): its cell is compared by its baseline,
exactly, and by its d_int90, within the noise of one draw (x1.25).
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
        assert not new["censored"]
        if projection == "dense":  # another draw of P (see above)
            assert 1 / 1.25 <= new["d_hi"] / old["d_hi"] <= 1.25
            continue
        assert (new["d_lo"], new["d_hi"]) == (old["d_lo"], old["d_hi"])
        old_probes = {p["d"]: p["scores"] for p in json.loads(old["probes"])}
        new_probes = {p["d"]: p["scores"] for p in json.loads(new["probes"])}
        assert new_probes == old_probes  # the same d probed, the same score for every seed
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
