"""One definition of the options and one content hash: keys of stored runs and cells never move."""

from typing import ClassVar

import pytest
from pydantic import Field

from idbench.cell import run_spec
from idbench.lr.tuner import study_name
from idbench.config import MeasureConfig
from idbench.errors import IdbenchError
from idbench.keys import key_fields, stable_key
from idbench.measurement import RECORDED_AS, RENAMED, config_columns
from idbench.options import TrainOptions
from idbench.registry import Spec
from idbench.schema import MeasurementRow
from idbench.train import RunSpec

# the measurement defaults when those keys were stored (one draw of 3 seeds, 2 a tuning trial)
DEFAULTS_THEN = dict(seeds=3, tune_seeds=2, draws=1)
CONFIGS = [
    dict(model="fc", dataset="digits"),
    dict(model="fc[depth=2,width=200]", dataset="fashion-mnist", projection="sparse[density=0.01]",
         lr=1e-5, lr_range=(1e-5, 3.0), grid=(10, 100), compartments="layer", epochs=1,
         tune_every_probe=True, d_ref=300, baseline="global:0.9"),
    dict(model="lenet", dataset="cifar10", method="rbd", optimizer="adam", steps=100, epochs=None,
         compartments=4, seeds=5, lr_subspace=3.0000000000000004e-7),
    dict(model="fc", dataset="digits", tune_every_probe=True),
    dict(model="fc", dataset="digits", tune_trials=0),
]
SPECS = [
    dict(model="fc", dataset="digits", seed=0, lr=0.1),
    dict(model="fc", dataset="digits", seed=3, lr=1e-5, projection="fastfood", d=100,
         compartments="layer", method="rbd[distribution=uniform]", optimizer="adam", epochs=1.5,
         steps=7, eval_every=3, patience=2, split_seed=4, weight_decay=1e-4),
]
# computed by idbench at commit e31009f, before the options were defined once (the last two at
# 7d640c6, before lr_retune_factor)
CELL_KEYS = ["5916358d67d198a8", "8b889510573680a0", "ec3b871c61d28554", "cc1028e0121ca8c0",
             "7f98c1a7d3f56c4e"]
RUN_KEYS = ["4d89803b184c42f8c822", "40ef1d69f03efdf6b1c3"]


def test_cell_and_run_keys_are_those_of_the_code_before_the_refactoring():
    """Every key is unchanged except those with layer compartments, whose d changed meaning
    (per layer before, the total now), those of cells whose rate the bracket protocol tunes,
    whose re-tuning rule changed (x2, now lr_retune_factor; and where the search restarts,
    retune_restart), and those tuned at every probe, whose tunings now move their window
    (WINDOW_MOVES): they must not find runs or measurements stored under the old meaning."""
    configs = [MeasureConfig(**{**DEFAULTS_THEN, **c}) for c in CONFIGS]
    moved = [c.compartments == "layer" or c.retunes_at_bracket or c.tune_every_probe
             for c in configs]
    assert [c.key() == old for c, old in zip(configs, CELL_KEYS)] == [not x for x in moved]
    assert not all(moved)  # an unchanged cell key is exercised
    layer = [s.get("compartments") == "layer" for s in SPECS]
    runs = [RunSpec(**s).key() for s in SPECS]
    assert [k == old for k, old in zip(runs, RUN_KEYS)] == [not x for x in layer]
    assert any(layer)  # the layer case is exercised


def test_the_retune_factor_keys_the_cells_it_decides_and_no_others():
    bracket, every, untuned, grid = (dict(model="fc", dataset="digits", **o) for o in (
        {}, {"tune_every_probe": True}, {"tune_trials": 0}, {"grid": (8, 16)}))
    for options, decides in ((bracket, True), (every, False), (untuned, False), (grid, False)):
        keys = {MeasureConfig(**options, lr_retune_factor=f).key() for f in (1.5, 2.0, 3.0)}
        assert len(keys) == (3 if decides else 1)


# computed by idbench at 86805a8, before lr_protocol, retune_restart, lr_window, tune_pick and
# tune_redraw were removed (each at the value that remains)
BEFORE_REMOVAL = [({}, "6898ce9f99c8ab1e"), ({"grid": (8, 16)}, "8d2a26f5a2ee634a"),
                  ({"lr_scaling": "none", "optimizer": "adam"}, "13e613bb54cda081")]


@pytest.mark.parametrize("options, key", BEFORE_REMOVAL)
def test_removing_options_kept_the_keys_of_the_cells_they_left_alone(options, key):
    assert MeasureConfig(model="fc", dataset="digits", **DEFAULTS_THEN, **options).key() == key


@pytest.mark.parametrize("option, value", [("lr_protocol", "reference"), ("lr_window", None),
                                           ("retune_restart", "half"), ("tune_pick", "best"),
                                           ("tune_redraw", "all")])
def test_a_removed_option_is_named_with_what_replaced_it(option, value):
    with pytest.raises(IdbenchError, match=f"option {option} was removed: .+; drop it") as caught:
        MeasureConfig.build(model="fc", dataset="digits", **{option: value})
    assert "\n" not in str(caught.value)
    with pytest.raises(IdbenchError, match="lr_scaling curvature was removed"):
        MeasureConfig.build(model="fc", dataset="digits", lr_scaling="curvature")


def test_a_field_added_later_changes_no_key_at_its_default_and_keys_when_set():
    class Later(RunSpec):
        label_smoothing: float = Field(0.0, description="added after stores were written")
        KEY_FIELDS: ClassVar[tuple[str, ...]] = RunSpec.KEY_FIELDS

    assert Later(**SPECS[0]).key() == RUN_KEYS[0]
    assert Later(**SPECS[0], label_smoothing=0.1).key() != RUN_KEYS[0]
    assert "label_smoothing" in key_fields(Later(**SPECS[0], label_smoothing=0.1),
                                           RunSpec.KEY_FIELDS)


def test_stable_key_is_order_free_in_json_style_and_length_is_respected():
    assert stable_key({"a": 1, "b": 2}, 12) == stable_key({"b": 2, "a": 1}, 12)
    assert len(stable_key([1, 2], 20)) == 20
    assert stable_key({"a": 1, "b": 2}, 12, style="pydantic") != stable_key(
        {"b": 2, "a": 1}, 12, style="pydantic")


def test_run_specs_take_every_training_option_of_the_config():
    config = MeasureConfig(model="fc", dataset="digits", weight_decay=1e-4, eval_every=3,
                           split_seed=2, momentum=0.5, batch_size=32)
    spec = run_spec(config, seed=1, lr=0.2, d=10)
    for name in TrainOptions.model_fields:
        assert getattr(spec, name) == getattr(config, name), name
    assert (spec.projection, spec.d, spec.method) == (Spec("dense"), 10, Spec("fpd"))
    assert run_spec(config, seed=1, lr=0.2).projection is None


def test_every_option_has_help_and_bad_values_raise_one_idbench_error():
    for model in (TrainOptions, MeasureConfig, RunSpec):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no help text"
    with pytest.raises(IdbenchError, match="unknown optimizer 'newton'; choose from sgd, adam"):
        RunSpec(**SPECS[0], optimizer="newton")
    with pytest.raises(IdbenchError, match="positive budget"):
        MeasureConfig.build(model="fc", dataset="digits", epochs=0)
    with pytest.raises(IdbenchError, match="positive budget"):
        RunSpec(**SPECS[0], epochs=0)


def test_every_config_field_is_recorded_in_the_measurement_row():
    row_fields = set(MeasurementRow.model_fields)
    for name in MeasureConfig.model_fields:
        column = RENAMED.get(name, RECORDED_AS.get(name, name))
        assert column in row_fields, f"MeasureConfig.{name} is recorded in no MeasurementRow column"
    columns = config_columns(MeasureConfig(model="fc[depth=1]", dataset="digits",
                                           projection="sparse[density=0.1]", steps=5))
    assert (columns["projection"], columns["model"], columns["steps_budget"]) == (
        "sparse", "fc[depth=1]", 5)
    assert columns["lr_range"] == "[0.001, 10.0]"


def test_specs_are_parsed_once_and_keys_hash_them_as_written():
    """Spec fields hold typed Specs; dumps and keys keep the text as written (stored keys hold)."""
    text = "fc[width=20, depth=1]"
    config = MeasureConfig(model=text, dataset="digits", projection="sparse[density=0.5]")
    assert config.model == Spec("fc", {"depth": 1, "width": 20})
    assert config.projection.options == {"density": 0.5}
    assert config.model_dump()["model"] == text and config.method == Spec("fpd")
    reordered = MeasureConfig(model="fc[depth=1,width=20]", dataset="digits",
                              projection="sparse[density=0.5]")
    assert reordered.model == config.model and reordered.key() != config.key()
    assert MeasureConfig(**config.model_dump()).key() == config.key()
    spec = run_spec(config, seed=0, lr=0.1, d=10)
    assert spec.model is config.model and RunSpec(**spec.model_dump()).key() == spec.key()
    with pytest.raises(IdbenchError, match="model: cannot parse 'fc\\['"):
        MeasureConfig.build(model="fc[", dataset="digits")


# computed by idbench at 0456d97 (CellRuns._study_name, before study_name was public): a study
# whose name moved would orphan the Optuna journal of every stored measurement
STUDY_NAMES = {
    (): ("subspace-b0c42db239f747ff", "baseline-06e73953ef2423b2"),
    (("tune_seeds", 4),): ("subspace-1762fd45a438e800", "baseline-e208fad12c549dc3"),
    (("tune_draw", 1),): ("subspace-8a0116dbdf63bbd6", "baseline-ef47919f6f60a30c"),
    (("tune_trials", 6),): ("subspace-e6de94c48761f229", "baseline-75227b8f7ecb39db"),
}


@pytest.mark.parametrize("tuning", list(STUDY_NAMES))
def test_study_names_never_move_and_follow_how_the_study_tunes(tuning):
    config = MeasureConfig.build(model="fc[depth=1,width=16]", dataset="digits",
                                 projection="fastfood", **{**DEFAULTS_THEN, **dict(tuning)})
    names = (study_name(config, "subspace", 40, (1e-3, 1.0)),
             study_name(config, "baseline", None, (1e-3, 1.0)))
    assert names == STUDY_NAMES[tuning]
    assert study_name(config, "subspace", 41, (1e-3, 1.0)) != names[0]
    assert study_name(config, "subspace", 40, (1e-3, 2.0)) != names[0]
