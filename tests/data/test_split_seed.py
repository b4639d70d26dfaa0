"""``split_seed`` reaches data loading: it redraws the validation split, never the test split."""

import torch

import idbench.cell as measurement  # execute and load_data live in idbench.cell
from idbench.train import RunSpec


def test_two_split_seeds_give_different_validation_sets_and_the_same_test_set():
    a = measurement.load_data("digits", "cpu", 0.1, 0)
    b = measurement.load_data("digits", "cpu", 0.1, 1)
    assert len(a.x_val) == len(b.x_val) == 144
    assert not torch.equal(a.x_val, b.x_val)
    # the same test images, normalised with each split's own train statistics
    pixels_a, pixels_b = (ds.x_test * ds.std[0] + ds.mean[0] for ds in (a, b))
    assert a.mean != b.mean
    torch.testing.assert_close(pixels_a, pixels_b)
    assert torch.equal(a.y_test, b.y_test)


def test_a_run_trains_on_the_split_of_its_split_seed(monkeypatch):
    """execute() (every probe and baseline run) loads the data with the spec's split_seed."""
    loaded = []
    monkeypatch.setattr(measurement, "load_data", lambda *args: loaded.append(args) or "data")
    monkeypatch.setattr(measurement, "run", lambda spec, data, **_: (spec.split_seed, data))
    spec = RunSpec(model="fc", dataset="digits", seed=0, lr=0.1, split_seed=7)
    assert measurement.execute((spec, "cpu"))[0] == (7, "data")
    assert [(str(name), *rest) for name, *rest in loaded] == [("digits", "cpu", 0.1, 7)]
