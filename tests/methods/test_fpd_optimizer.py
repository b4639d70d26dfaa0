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
