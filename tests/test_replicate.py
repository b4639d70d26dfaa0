"""Independent re-measurement (``replicate``): what it redraws and what the rows record; and the
threshold a baseline at chance cannot define."""

import json

import polars as pl
import pytest

from idbench.config import REPLICATE_STRIDE, MeasureConfig
from idbench.errors import IdbenchError
from idbench.lr.tuner import TUNE_SEED
from idbench.measurement import measure
from idbench.store import RunStore


def config(**overrides) -> MeasureConfig:
    base = dict(model="fc[depth=1,width=8]", dataset="digits", projection="sparse", draws=1, seeds=3,
                epochs=1, tune_trials=2, tune_seeds=1, d_min=16, d_max=512, resolution=0.3,
                batch_size=128)
    return MeasureConfig(**{**base, **overrides})


def test_replicate_zero_is_todays_cell_and_another_replicate_shares_no_run(tmp_path):
    assert config(replicate=0).key() == config().key()
    assert config(replicate=1).key() != config().key()
    first = measure(config(), out=tmp_path, device="cpu")
    other = measure(config(replicate=1), out=tmp_path, device="cpu")
    assert (first.replicate, other.replicate) == (0, 1)
    assert not set(json.loads(first.run_keys)) & set(json.loads(other.run_keys))
    runs = RunStore(tmp_path).table()
    mine = runs.filter(pl.col("run_key").is_in(json.loads(other.run_keys)))
    measured = set(mine.filter(pl.col("role") != "tune")["seed"].to_list())
    tuned = set(mine.filter(pl.col("role") == "tune")["seed"].to_list())
    assert measured == {REPLICATE_STRIDE + s for s in range(3)}
    assert tuned == {REPLICATE_STRIDE + TUNE_SEED}  # one tuning unit, tune_seeds 1
    assert first.ci_covers == "seeds, baseline seeds (not the tuner's draw)"


def test_a_baseline_at_chance_is_refused_before_any_subspace_run(tmp_path):
    chance = config(tune_trials=0, lr=1e-9, seeds=1)
    with pytest.raises(IdbenchError, match="ends at chance"):
        measure(chance, out=tmp_path, device="cpu")
    runs = RunStore(tmp_path).table()
    assert set(runs["role"].to_list()) == {"baseline"}  # no probe trained
