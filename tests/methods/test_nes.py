"""The evolution-strategies estimate: on the same bases as rbd it is rbd's step up to O(sigma^2),
exact on quadratics (antithetic pairs), batched in bounded chunks, and harmless to BatchNorm."""

import copy

import pytest
import torch
from torch import nn

import idbench.data
import idbench.methods as methods
import idbench.methods.nes as nes
from idbench.errors import IdbenchError
from idbench.train import RunSpec, run


@pytest.fixture(scope="module")
def digits():
    return idbench.data.load("digits")


def run_spec(**overrides) -> RunSpec:
    base = dict(model="given", dataset="given", seed=3, lr=0.5, projection="dense", d=7,
                schedule="constant")
    base.update(overrides)
    return RunSpec(**base)


def one_step(method: str, net: nn.Module, spec: RunSpec, loss_fn) -> torch.Tensor:
    """theta of a copy of ``net`` after one step of ``method``."""
    net = copy.deepcopy(net)
    methods.create(method, model=net, run_spec=spec).step(loss_fn, spec.lr)
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()])


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()


def batch(dtype=torch.float64):
    gen = torch.Generator().manual_seed(1)
    return torch.randn(32, 5, generator=gen, dtype=dtype), torch.randint(0, 3, (32,), generator=gen)


@pytest.mark.parametrize("projection,compartments", [("dense", None), ("fastfood", 2)])
def test_small_sigma_takes_rbds_step_on_the_same_bases(projection, compartments):
    net, (x, y) = mlp(), batch()
    spec = run_spec(projection=projection, compartments=compartments)  # d = 7: odd is fine

    def loss_fn(m):
        return nn.functional.cross_entropy(m(x), y)

    start = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    rbd = one_step("rbd", net, spec, loss_fn)
    estimate = one_step("nes[sigma=1e-5]", net, spec, loss_fn)
    assert (rbd - start).norm() > 1e-3
    assert torch.allclose(estimate, rbd, rtol=0, atol=1e-9)
    # a large sigma measures a smoothed loss instead: visibly off
    assert not torch.allclose(one_step("nes[sigma=3.0]", net, spec, loss_fn), rbd, atol=1e-4)


def test_antithetic_pairs_are_exact_on_a_quadratic():
    torch.manual_seed(0)
    net, (x, _) = nn.Linear(5, 2).double(), batch()
    target = torch.randn(32, 2, dtype=torch.float64)

    def loss_fn(m):  # quadratic in the parameters: central differences are exact at any sigma
        return nn.functional.mse_loss(m(x), target)

    spec = run_spec(d=6)
    rbd = one_step("rbd", net, spec, loss_fn)
    assert torch.allclose(one_step("nes[sigma=2.0]", net, spec, loss_fn), rbd, atol=1e-12)


def test_chunked_evaluation_gives_the_same_estimate(monkeypatch):
    net, (x, y) = mlp(), batch()
    spec = run_spec(d=9)

    def loss_fn(m):
        return nn.functional.cross_entropy(m(x), y)

    whole = one_step("nes", net, spec, loss_fn)
    D = sum(p.numel() for p in net.parameters())
    monkeypatch.setattr(nes, "_PERTURBED_ELEMENTS", 2 * 2 * D)  # two pairs per chunk: 5 chunks
    assert torch.allclose(one_step("nes", net, spec, loss_fn), whole, atol=1e-12)


def test_batchnorm_statistics_follow_theta_only():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.2),
                        nn.Linear(8, 3))
    reference = copy.deepcopy(net)
    x, y = batch(torch.float32)
    rule = methods.create("nes", model=net, run_spec=run_spec())
    loss = rule.step(lambda m: nn.functional.cross_entropy(m(x), y), 0.1)
    assert torch.isfinite(loss)
    reference(x)  # one ordinary training forward at the same theta
    assert int(net[1].num_batches_tracked) == 1
    assert torch.allclose(net[1].running_mean, reference[1].running_mean)
    assert torch.allclose(net[1].running_var, reference[1].running_var)


def test_trains_deterministically_and_records_its_options(digits):
    def spec(seed: int) -> RunSpec:
        return RunSpec(model="fc[depth=1,width=16]", dataset="digits", seed=seed, lr=5.0,
                       steps=40, eval_every=20, schedule="constant", projection="fastfood", d=30,
                       method="nes[grad_cosine=true]")

    a, b, c = run(spec(0), digits), run(spec(0), digits), run(spec(1), digits)
    assert a.history == b.history and a.history != c.history
    assert a.val_score > 0.6
    info = a.info
    assert info.method_options == {"distribution": "gaussian", "grad_cosine": True,
                                   "sigma": 0.01}
    assert (info.subspace.directions, info.subspace.d_total, info.subspace.projection) == (
        (30,), 30, "fastfood")
    assert info.grad_cosine == pytest.approx((30 / a.D) ** 0.5, abs=0.08)


@pytest.mark.parametrize(
    "method,overrides,match",
    [
        ("nes[sigma=0]", {}, "sigma must be a positive number"),
        ("nes[sigma=-0.1]", {}, "sigma must be a positive number"),
        ("nes[sigma=big]", {}, "option sigma='big' is not of its type float"),
        ("nes[distribution=normal]", {}, "unknown distribution 'normal'"),
        ("nes", dict(d=100), "d = 100 is larger than compartment 0"),
        ("nes", dict(compartments=500), "compartments = 500 is more than"),
        ("nes[distribution=bernoulli]", dict(projection="fastjl"), "needs the dense projection"),
    ],
)
def test_bad_input_is_one_clear_error(method, overrides, match):
    with pytest.raises(IdbenchError, match=match):
        methods.create(method, model=mlp(), run_spec=run_spec(method=method, **overrides))
