"""fpd's optimiser choice: LBFGS solves the ill-conditioned small subspaces of the toy exactly, and
it is refused with the methods that take their own steps."""

import pytest

import idbench.data
from idbench.config import MeasureConfig
from idbench.errors import IdbenchError
from idbench.methods.fpd import LBFGS_MAX_ITER, OPTIMIZERS
from idbench.train import RunSpec, run


@pytest.fixture(scope="module")
def toy():
    return idbench.data.load("toy-sums")


def lbfgs_spec(**overrides) -> RunSpec:
    base = dict(model="toy-sums", dataset="toy-sums", seed=0, lr=1.0, optimizer="lbfgs", steps=10,
                batch_size=16, schedule="constant", warmup=0.0)
    base.update(overrides)
    return RunSpec(**base)


@pytest.mark.parametrize("projection", ["dense", "sparse", "fastfood", "fastjl"])
def test_lbfgs_solves_the_toy_at_exactly_its_answer(toy, projection):
    """d = 10 (the answer) is solved to float precision; d = 9 cannot be."""
    solved = run(lbfgs_spec(projection=projection, d=10), toy)
    assert solved.val_score == 1.0 and solved.val_loss < 1e-8
    short = run(lbfgs_spec(projection=projection, d=9), toy)
    assert short.val_score < 1.0 and short.val_loss > 1e-3
    assert solved.info.method_options["lbfgs_max_iter"] == LBFGS_MAX_ITER


def test_lbfgs_trains_the_full_space_baseline(toy):
    assert run(lbfgs_spec(), toy).val_score == 1.0


@pytest.mark.parametrize("method", ["rbd", "nes[sigma=0.1]"])
def test_lbfgs_with_a_method_that_takes_its_own_steps_is_one_clear_error(method):
    with pytest.raises(IdbenchError, match="lbfgs.*takes its own steps.*use method fpd"):
        MeasureConfig.build(model="toy-sums", dataset="toy-sums", method=method,
                            optimizer="lbfgs")


def test_unknown_optimizer_names_every_choice():
    with pytest.raises(IdbenchError, match="lbfgs"):
        lbfgs_spec(optimizer="newton")
    assert OPTIMIZERS == ("sgd", "adam", "lbfgs", "ngd")


def test_lbfgs_stops_once_a_whole_step_no_longer_moves_the_loss(toy):
    """Solved (d = 10) or stuck at the best a too-small subspace allows (d = 9), the run stops
    early with the result it would have reached at its full budget."""
    for d, score in ((10, 1.0), (9, None)):
        short, full = (run(lbfgs_spec(projection="dense", d=d, steps=steps), toy)
                       for steps in (100, 10_000))
        assert short.stopped_early and full.stopped_early and short.steps == full.steps < 100
        assert short.val_loss == full.val_loss
        assert score is None or short.val_score == score


def test_first_order_runs_use_their_whole_budget(toy):
    result = run(lbfgs_spec(optimizer="adam", lr=0.01, projection="dense", d=10, steps=50), toy)
    assert not result.stopped_early and result.steps == 50
