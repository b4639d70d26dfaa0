import math

import pytest

import idbench.data
import idbench.train
from idbench.errors import IdbenchError
from idbench.train import (EVAL_BATCH, FORWARD_CHUNK, RunSpec, build_model, evaluate, lr_at, run,
                           total_steps, train)


@pytest.fixture(scope="module")
def digits():
    return idbench.data.load("digits")


def spec(**overrides) -> RunSpec:
    base = dict(model="fc[depth=1,width=64]", dataset="digits", seed=0, lr=0.1, epochs=20)
    base.update(overrides)
    return RunSpec(**base)


def test_fc_on_digits_learns_quickly(digits):
    result = run(spec(), digits)
    assert result.val_score > 0.9 and result.test_score > 0.85
    assert not result.diverged
    assert result.steps == 20 * math.ceil(len(digits.x_train) / 128)
    assert len(result.history) == 20 and result.history[-1]["val_score"] == result.val_score
    assert result.D == 64 * 64 + 64 + 64 * 10 + 10


@pytest.mark.parametrize("model", ["lenet", "cnn", "fc[depth=2,width=200]"])
def test_evaluation_in_cache_sized_chunks_gives_the_one_pass_bits(model, monkeypatch):
    data = idbench.data.load("digits[size=28]")
    net = build_model(RunSpec(model=model, dataset="digits[size=28]", seed=3, lr=0.1, epochs=1),
                      data)
    seen: list[int] = []
    net.register_forward_pre_hook(lambda _, args: seen.append(len(args[0])))
    chunked = evaluate(net, data, "test")
    monkeypatch.setattr(idbench.train, "FORWARD_CHUNK", EVAL_BATCH)  # each batch in one pass
    whole = evaluate(net, data, "test")
    n = len(data.x_test)  # fewer than EVAL_BATCH: one batch
    assert n > 2 * FORWARD_CHUNK
    assert seen == [min(FORWARD_CHUNK, n - i) for i in range(0, n, FORWARD_CHUNK)] + [n]
    assert chunked == whole


def test_huge_learning_rate_is_a_diverged_result_not_an_exception(digits):
    result = run(spec(lr=1e12), digits)  # still ~4e9 after the 8 halvings
    assert result.diverged
    assert result.val_score == 0.0 and math.isinf(result.val_loss)
    assert result.steps < 20 * 11


def test_same_seed_is_bit_identical_and_other_seed_differs(digits):
    a = run(spec(projection="fastfood", d=100, epochs=3), digits)
    b = run(spec(projection="fastfood", d=100, epochs=3), digits)
    c = run(spec(projection="fastfood", d=100, epochs=3, seed=1), digits)
    assert a.history == b.history and a.test_score == b.test_score
    assert a.history != c.history


def test_subspace_run_records_its_subspace(digits):
    result = run(spec(projection="sparse", d=50, compartments=2, epochs=2), digits)
    assert result.d_total == 100
    subspace = result.info.subspace
    assert subspace.projection == "sparse" and subspace.n_compartments == 2
    assert subspace.normalisation == "unit-column" and subspace.directions == (50, 50)
    assert result.info.optimiser.name == "sgd" and result.info.D == result.D


def test_early_stop_reports_the_final_model_not_the_best(digits):
    # a constant, far too high Adam rate makes validation loss bounce: patience 1 stops it
    result = run(spec(optimizer="adam", lr=0.5, schedule="constant", epochs=30, patience=1), digits)
    assert result.stopped_early
    assert result.steps < 30 * 11
    assert result.val_score == result.history[-1]["val_score"]
    assert min(h["val_loss"] for h in result.history[:-1]) <= result.history[-1]["val_loss"]


def test_budget_in_steps_overrides_epochs(digits):
    assert total_steps(spec(steps=7), len(digits.x_train)) == 7
    assert run(spec(steps=7, eval_every=3), digits).steps == 7


@pytest.mark.parametrize(
    "overrides,match",
    [
        (dict(projection="dense"), "needs both a projection and d"),
        (dict(optimizer="newton"), "unknown optimizer"),
        (dict(lr=-1.0), "lr must be a positive"),
        (dict(epochs=0), "positive budget"),
        (dict(schedule="step"), "unknown schedule"),
    ],
)
def test_bad_specs(overrides, match):
    with pytest.raises(IdbenchError, match=match):
        spec(**overrides)


def test_spec_key_is_stable_and_sensitive():
    assert spec().key() == spec().key()
    assert spec().key() != spec(seed=1).key()
    assert spec().key() != spec(lr=0.1000001).key()


def test_schedule_warms_up_linearly_then_decays_by_cosine_to_zero():
    cosine = spec(lr=2.0, warmup=0.1)
    assert [lr_at(cosine, step, 100) for step in (0, 4, 9)] == pytest.approx([0.2, 1.0, 2.0])
    assert lr_at(cosine, 10, 100) == pytest.approx(2.0)  # the peak: cos(0)
    assert lr_at(cosine, 55, 100) == pytest.approx(1.0)  # half-way through the decay
    assert lr_at(cosine, 99, 100) == pytest.approx(1 + math.cos(math.pi * 89 / 90))
    constant = spec(lr=2.0, warmup=0.1, schedule="constant")
    assert [lr_at(constant, step, 100) for step in (0, 9, 50, 99)] == pytest.approx(
        [0.2, 2.0, 2.0, 2.0])
    assert lr_at(spec(lr=2.0, warmup=0.0), 0, 100) == pytest.approx(2.0)


def test_step_hook_sees_every_step_with_its_loss(digits):
    seen = []
    run_spec = spec(steps=7, eval_every=3)
    result = train(build_model(run_spec, digits), digits, run_spec,
                   on_step=lambda state, loss: seen.append((state.step, float(loss))))
    assert [step for step, _ in seen] == list(range(1, 8))
    assert all(math.isfinite(loss) for _, loss in seen)
    assert [h["step"] for h in result.history] == [3, 6, 7]
