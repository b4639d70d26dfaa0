"""Where theta0 comes from (idbench.theta0): init, a burn-in, a checkpoint; keys, rows, errors."""

import shutil

import pytest
import torch

import idbench.data
import idbench.models
from idbench.cell import run_spec
from idbench.config import MeasureConfig
from idbench.errors import IdbenchError
from idbench.rows import run_row
from idbench.subspace import FlatLayout
from idbench.theta0 import parse
from idbench.train import RunSpec, build_model, burn_in_spec, run, start_network, train

pytestmark = pytest.mark.usefixtures("one_thread")

BASE = dict(model="fc[depth=1,width=16]", dataset="digits", seed=3, lr=0.1, steps=12,
            eval_every=6)


@pytest.fixture(scope="module")
def digits():
    return idbench.data.load("digits")


def save_net(path, *, num_classes=10, width=16, seed=7):
    """A network other than any run's initialisation, saved as a state dict."""
    torch.manual_seed(seed)
    net = idbench.models.create(f"fc[depth=1,width={width}]", input_shape=(1, 8, 8),
                                num_classes=num_classes)
    torch.save(net.state_dict(), path)
    return net


def flat(model):
    return FlatLayout.of(model).flatten(model)


def test_a_checkpoint_theta0_gives_the_checkpoints_predictions_before_any_step(tmp_path, digits):
    saved = save_net(tmp_path / "net.pt").eval()
    expected = saved(digits.x_val)
    for subspace in ({}, {"projection": "fastfood", "d": 20}, {"projection": "dense", "d": 20,
                                                                "said": True}):
        spec = RunSpec(**BASE, **subspace, theta0=f"checkpoint[path={tmp_path / 'net.pt'}]")
        model = build_model(spec, digits).eval()
        assert torch.equal(model(digits.x_val), expected), subspace
    assert not torch.equal(build_model(RunSpec(**BASE), digits).eval()(digits.x_val), expected)


def test_a_burn_in_of_no_steps_is_init_with_its_key_and_numbers(digits):
    init = RunSpec(**BASE, projection="dense", d=16)
    for zero in ("burn-in[steps=0,lr=0.5]", "burn-in[epochs=0,lr=0.5]", "burn-in[epochs=0.0]"):
        spec = RunSpec(**BASE, projection="dense", d=16, theta0=zero)
        assert str(spec.theta0) == "init" and spec.key() == init.key()
    a, b = run(init, digits), run(RunSpec(**BASE, projection="dense", d=16,
                                          theta0="burn-in[steps=0,lr=0.5]"), digits)
    assert (a.val_score, a.val_loss, a.history) == (b.val_score, b.val_loss, b.history)
    config = MeasureConfig(model="fc", dataset="digits")
    assert MeasureConfig(model="fc", dataset="digits", theta0="burn-in[steps=0,lr=1]").key() == \
        config.key()


def test_a_burn_in_starts_from_the_runs_own_full_space_training(digits):
    spec = RunSpec(**BASE, projection="dense", d=16, theta0="burn-in[steps=5,lr=0.2]")
    burn = burn_in_spec(spec, len(digits.x_train))
    assert (burn.steps, burn.lr, burn.seed, burn.projection, burn.said) == (5, 0.2, 3, None, False)
    trained = build_model(burn, digits)
    train(trained, digits, burn)
    sub = build_model(spec, digits)
    assert torch.equal(sub.theta0, flat(trained))  # exactly the burn-in's final parameters
    baseline, _ = start_network(spec.replace(projection=None, d=None), digits)
    assert torch.equal(flat(baseline), sub.theta0)  # the baseline starts there too
    assert not torch.equal(flat(build_model(RunSpec(**BASE), digits)), sub.theta0)
    assert spec.key() != RunSpec(**BASE, projection="dense", d=16).key()
    epochs = RunSpec(**BASE, theta0="burn-in[epochs=0.5,lr=0.2]")
    assert burn_in_spec(epochs, len(digits.x_train)).steps == round(0.5 * 11)  # 1294 / 128


def test_a_burn_in_longer_than_the_budget_is_refused(digits):
    with pytest.raises(IdbenchError, match="burn-in of 13 steps is longer than the run's budget "
                                           "of 12 steps"):
        run(RunSpec(**BASE, theta0="burn-in[steps=13,lr=0.1]"), digits)


def test_a_burn_in_that_diverges_is_an_error_not_a_start_from_nan(digits):
    with pytest.raises(IdbenchError, match="the burn-in diverged at lr=1e\\+12"):
        run(RunSpec(**BASE, theta0="burn-in[steps=12,lr=1e12]"), digits)


def test_a_head_of_other_classes_is_reinitialised_and_recorded(tmp_path, digits):
    saved = save_net(tmp_path / "five.pt", num_classes=5)
    spec = RunSpec(**BASE, theta0=f"checkpoint[path={tmp_path / 'five.pt'}]")
    net, head = start_network(spec, digits)
    init, _ = start_network(RunSpec(**BASE), digits)
    assert head == "reinitialised"
    assert torch.equal(net.hidden[0].weight, saved.hidden[0].weight)
    assert torch.equal(net.classifier.weight, init.classifier.weight)
    result = run(spec, digits)
    row = run_row(spec, result, cell="c", suite=None, role="baseline", metric="accuracy",
                  device="cpu")
    assert (row.theta0, row.theta0_head, row.said) == (str(spec.theta0), "reinitialised", False)
    assert len(row.theta0_sha256) == 64
    save_net(tmp_path / "ten.pt")
    assert start_network(spec.replace(theta0=f"checkpoint[path={tmp_path / 'ten.pt'}]"),
                         digits)[1] == "kept"


def test_tensors_that_do_not_fit_are_listed_by_name_and_shape(tmp_path, digits):
    save_net(tmp_path / "w8.pt", width=8)
    spec = RunSpec(**BASE, theta0=f"checkpoint[path={tmp_path / 'w8.pt'}]")
    with pytest.raises(IdbenchError, match=r"hidden.0.weight \(8, 64\) vs model \(16, 64\); "
                                           r"hidden.0.bias \(8,\) vs model \(16,\)"):
        start_network(spec, digits)
    state = torch.load(tmp_path / "w8.pt")
    torch.save({"extra": state["classifier.bias"]}, tmp_path / "odd.pt")
    with pytest.raises(IdbenchError, match="hidden.0.weight missing.*extra not in the model"):
        start_network(spec.replace(theta0=f"checkpoint[path={tmp_path / 'odd.pt'}]"), digits)


def test_a_checkpoint_is_keyed_by_its_content_not_its_place(tmp_path):
    save_net(tmp_path / "a.pt")
    shutil.copy(tmp_path / "a.pt", tmp_path / "b.pt")
    save_net(tmp_path / "c.pt", seed=8)
    key = {name: RunSpec(**BASE, theta0=f"checkpoint[path={tmp_path / name}]").key()
           for name in ("a.pt", "b.pt", "c.pt")}
    assert key["a.pt"] == key["b.pt"] != key["c.pt"]
    assert key["a.pt"] != RunSpec(**BASE).key()
    cell = {name: MeasureConfig(model="fc", dataset="digits",
                                theta0=f"checkpoint[path={tmp_path / name}]").key()
            for name in ("a.pt", "b.pt", "c.pt")}
    assert cell["a.pt"] == cell["b.pt"] != cell["c.pt"]
    stored = {store: RunSpec(**BASE, theta0=f"checkpoint[run=k1,store={store}]").key()
              for store in ("x", "y")}  # a stored run's model: keyed by its run key
    assert stored["x"] == stored["y"] != RunSpec(**BASE, theta0="checkpoint[run=k2]").key()


def test_the_baseline_and_the_probes_of_a_cell_share_its_theta0():
    config = MeasureConfig(model="fc", dataset="digits", theta0="burn-in[steps=4,lr=0.1]",
                           said=True)
    base, probe = run_spec(config, seed=0, lr=0.1), run_spec(config, seed=0, lr=0.1, d=20)
    assert str(base.theta0) == str(probe.theta0) == "burn-in[steps=4,lr=0.1]"
    assert (base.said, probe.said) == (False, True)  # SAID scales a subspace only


@pytest.mark.parametrize("text, phrase", [
    ("warm", "unknown theta0 'warm'"),
    ("burn-in[steps=3]", "give the burn-in's learning rate"),
    ("burn-in[steps=2.5,lr=1]", "whole number of steps"),
    ("burn-in[steps=3,epochs=1,lr=1]", "one"),
    ("checkpoint[path=a.pt,run=k]", "either path=FILE or run=KEY"),
    ("checkpoint[file=a.pt]", "takes no option file"),
])
def test_a_bad_theta0_is_one_clear_error(text, phrase):
    with pytest.raises(IdbenchError, match=phrase):
        parse(text)
    with pytest.raises(IdbenchError, match="theta0"):
        MeasureConfig.build(model="fc", dataset="digits", theta0=text)
