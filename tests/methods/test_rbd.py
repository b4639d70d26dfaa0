"""Random bases descent: reduces to SGD with a complete orthonormal basis, is deterministic,
regenerates each step's basis bit for bit for the update, records its compartments, and beats
fixed projection descent on Fashion-MNIST at d = 250 (the ordering of Gressmann et al. 2020)."""

from pathlib import Path

import pytest
import torch

import idbench.data
import idbench.methods as methods
import idbench.projections as projections
import idbench.projections.dense as dense
from idbench.errors import IdbenchError
from idbench.projections import PROJECTIONS, Projection
from idbench.projections.random_matrix import matrix_key
from idbench.seeding import cpu_generator, derive_seed
from idbench.train import RunSpec, build_model, run

FASHION = Path("/usr/share/datasets/fashion-mnist")
MODEL = "fc[depth=1,width=16]"
D = 64 * 16 + 16 + 16 * 10 + 10  # fc[depth=1,width=16] on 8x8 digits


class OrthogonalProjection(Projection):
    """Test-only basis: Q of the QR factorisation of a seeded Gaussian D x d matrix (orthonormal
    columns), so that with d = D, P P^T = I exactly up to rounding."""

    name = "orthogonal-test"

    def __init__(self, *, D: int, d: int, seed: int, dtype: torch.dtype = torch.float32) -> None:
        super().__init__(D=D, d=d, seed=seed, dtype=dtype)
        gauss = torch.randn(D, d, generator=cpu_generator(seed, "qr"), dtype=torch.float64)
        self.register_buffer("q", torch.linalg.qr(gauss)[0].to(dtype))

    def _matvec(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.q.T

    def _rmatvec(self, g: torch.Tensor) -> torch.Tensor:
        return g @ self.q


@pytest.fixture
def orthogonal(monkeypatch):
    monkeypatch.setitem(PROJECTIONS._factories, OrthogonalProjection.name, OrthogonalProjection)


@pytest.fixture(scope="module")
def digits():
    return idbench.data.load("digits")


def spec(**overrides) -> RunSpec:
    base = dict(model=MODEL, dataset="digits", seed=0, lr=0.1, steps=10, schedule="constant",
                momentum=0.0)
    base.update(overrides)
    return RunSpec(**base)


def flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def trajectories(specs: list[RunSpec], data, steps: int = 10):
    """Step every spec's method on the same batches; yield each model's theta after every step."""
    models = [build_model(s, data) for s in specs]
    rules = [methods.create(s.method, model=m, run_spec=s) for s, m in zip(specs, models)]
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(len(data.x_train), (64,), generator=gen)
        xb, yb = data.x_train[idx], data.y_train[idx]
        for rule, s in zip(rules, specs):
            rule.step(lambda m: data.loss(m(xb), yb), s.lr)
        yield [flat(m) for m in models]


@pytest.mark.parametrize("compartments", [None, 2])
def test_complete_orthonormal_basis_reduces_to_sgd(digits, orthogonal, compartments):
    d = D if compartments is None else D // 2
    sgd = spec()  # the full-space baseline rule: plain SGD (momentum 0)
    rbd = spec(method="rbd", projection=OrthogonalProjection.name, d=d, compartments=compartments)
    start = flat(build_model(sgd, digits))
    for theta_sgd, theta_rbd in trajectories([sgd, rbd], digits):
        assert torch.allclose(theta_rbd, theta_sgd, atol=2e-6)
    assert (theta_sgd - start).norm() > 0.05  # the runs did move


def one_step(digits, lr=0.5, d=40):
    """(rule, theta0 before, the full-batch-of-64 gradient there, the step taken / lr) of one rbd
    step with a dense basis; ``step_again()`` takes the next one."""
    s = spec(method="rbd", projection="dense", d=d, lr=lr)
    model = build_model(s, digits)
    rule = methods.create(s.method, model=model, run_spec=s)
    xb, yb = digits.x_train[:64], digits.y_train[:64]
    theta0 = flat(model).double()
    grad = torch.func.grad(
        lambda th: digits.loss(
            torch.func.functional_call(model, rule.layout.unflatten(th), (xb.double(),)), yb
        )
    )(theta0)
    rule.step(lambda m: digits.loss(m(xb), yb), lr)
    step = (theta0 - flat(model).double()) / lr
    return rule, grad, step, lambda: rule.step(lambda m: digits.loss(m(xb), yb), lr)


def seeded_step(grad, seed, d=40):
    """lr^-1 x the rbd step for gradient ``grad`` with the unit-column Gaussian basis of ``seed``."""
    basis = projections.create("dense", D=D, d=d, seed=seed, dtype=torch.float64)
    return basis(basis.adjoint(grad))


def test_step_is_the_gradient_projected_on_the_seeded_basis(digits, compiled):
    """On the CPU the kernel draws the basis row by row for P^T g and again for P c: nothing is
    stored, and the step is lr P P^T g for the basis of that step's seed."""
    rule, grad, step, step_again = one_step(digits)
    assert torch.allclose(step, seeded_step(grad, derive_seed(0, "rbd", 0, 0)), rtol=1e-4,
                          atol=1e-6)
    assert not any(isinstance(value, Projection) for value in vars(rule).values())
    # the next step draws a new basis, from the next seed
    before = flat(rule.model).double()
    step_again()
    assert not torch.allclose((before - flat(rule.model).double()) / 0.5,
                              seeded_step(grad, derive_seed(0, "rbd", 0, 0)), atol=1e-3)


@pytest.mark.parametrize("kept", [True, False])
def test_without_kernels_the_basis_is_drawn_once_or_twice_with_the_same_bits(digits, monkeypatch,
                                                                              kept):
    """CUDA and machines without a compiler multiply drawn chunks: the adjoint's chunks are kept
    for the update, or (too large to keep) drawn again bit for bit."""
    monkeypatch.setattr(dense.DenseProjection, "_compiled", lambda self, x: None)
    monkeypatch.setattr(dense, "_CHUNK_ELEMENTS", 4000)  # 1210 rows in chunks of 100
    if not kept:
        monkeypatch.setattr(dense, "KEEP_BYTES", 0)
    drawn: list[tuple[tuple[int, int], int, torch.Tensor]] = []
    original = dense.DenseProjection._draw

    def recording(self, out, first_row):
        chunk = original(self, out, first_row)
        drawn.append((self.key, first_row, chunk.clone()))
        return chunk

    monkeypatch.setattr(dense.DenseProjection, "_draw", recording)
    rule, grad, step, _ = one_step(digits)
    chunks = len(range(0, D, 100))
    assert len(drawn) == (1 if kept else 2) * chunks
    seed = derive_seed(0, "rbd", 0, 0)
    assert {entry[0] for entry in drawn} == {matrix_key(seed, "dense", "gaussian", 40)}
    for (_, i, first), (_, j, again) in zip(drawn[:chunks], drawn[chunks:]):
        assert i == j and torch.equal(first, again)
    assert torch.allclose(step, seeded_step(grad, seed), rtol=1e-4, atol=1e-6)


def test_every_way_of_drawing_the_basis_trains_alike(digits, monkeypatch, compiled):
    """Kept rows and rows drawn twice give the same bits (the kernel's and torch's paths alike);
    the kernel's fused products add in another order than torch's, so its run agrees to float
    rounding over 30 steps."""
    s = spec(method="rbd", projection="dense", d=30, lr=5.0, steps=30, eval_every=10)
    fused = run(s, digits)
    with monkeypatch.context() as patch:
        patch.setattr(dense, "KEEP_BYTES", 0)
        fused_again = run(s, digits)
    assert fused.history == fused_again.history and fused.test_score == fused_again.test_score
    monkeypatch.setattr(dense.DenseProjection, "_compiled", lambda self, x: None)
    kept = run(s, digits)
    monkeypatch.setattr(dense, "KEEP_BYTES", 0)
    again = run(s, digits)
    assert kept.history == again.history and kept.test_score == again.test_score
    for a, b in zip(fused.history, kept.history):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-3)


@pytest.mark.parametrize("projection", ["dense", "fastfood"])
def test_fixed_seed_is_deterministic(digits, projection):
    a, b, c = (run(spec(method="rbd", projection=projection, d=30, lr=5.0, steps=40,
                        eval_every=10, seed=seed), digits) for seed in (0, 0, 1))
    assert a.history == b.history and a.test_score == b.test_score
    assert a.history != c.history
    assert a.history[-1]["val_score"] > 0.6  # and it learns


def test_compartments_record_per_compartment_and_total_directions(digits):
    layers = len({n.rpartition(".")[0] for n, _ in build_model(spec(), digits).named_parameters()})
    for method in ("rbd", "fpd"):
        equal = run(spec(method=method, projection="fastfood", d=20, compartments=3, steps=3),
                    digits)
        built = equal.info.subspace
        assert (built.directions, equal.d_total, built.n_compartments) == ((20,) * 3, 60, 3)
        layer = run(spec(method=method, projection="dense", d=8, compartments="layer", steps=3),
                    digits)
        assert layer.info.subspace.n_compartments == layers == 2  # weight and bias together
        # per layer, d is the total: split equally here (both layers hold more than 4)
        assert layer.info.subspace.directions == (4, 4)
        assert layer.d_total == 8 and layer.info.subspace.compartments == "layer"


def test_describe_records_method_and_basis(digits):
    result = run(spec(method="rbd[distribution=uniform]", projection="dense", d=20, steps=3),
                 digits)
    info = result.info
    assert info.method_options == {"distribution": "uniform", "grad_cosine": False}
    assert info.subspace.projection == "dense" and info.subspace.normalisation == "unit-column"
    assert info.subspace.projection_options == {"distribution": "uniform", "regenerate": True}
    assert result.D == D and info.grad_cosine is None
    assert (info.optimiser.name, info.optimiser.momentum) == ("sgd", 0.0)


def test_grad_cosine_diagnostic(digits, orthogonal):
    # a complete orthonormal basis steps along the gradient itself
    full = run(spec(method="rbd[grad_cosine=true]", projection=OrthogonalProjection.name, d=D),
               digits)
    assert full.info.grad_cosine == pytest.approx(1.0, abs=1e-5)
    # d random unit directions catch about sqrt(d / D) of the gradient's direction
    part = run(spec(method="rbd[grad_cosine=true]", projection="dense", d=D // 10, steps=20),
               digits)
    assert part.info.grad_cosine == pytest.approx((1 / 10) ** 0.5, abs=0.06)


@pytest.mark.parametrize(
    "overrides,match",
    [
        (dict(method="rbdd", projection="dense", d=10),
         "unknown method 'rbdd'. Did you mean 'rbd'"),
        (dict(method="rbd[distribution=cauchy]", projection="dense", d=10),
         "unknown distribution 'cauchy'; choose from gaussian, uniform, bernoulli"),
        (dict(method="rbd[distribution=uniform]", projection="fastfood", d=10),
         "needs the dense projection"),
        (dict(method="rbd", projection="dense[distribution=uniform]", d=10), "set it once"),
        (dict(method="rbd[step=3]", projection="dense", d=10), "does not take option"),
        (dict(method="rbd", projection="fastfod", d=10), "unknown projection 'fastfod'"),
        (dict(method="rbd", projection="dense", d=10, compartments=5000),
         "compartments = 5000 is more than the 1210 parameters"),
        (dict(method="rbd", projection="dense", d=2000), "d = 2000 is larger than compartment 0"),
        (dict(method="rbd", projection="dense", d=1, compartments="layer"),
         "d = 1 directions cannot be split across 2 layer compartments"),
        (dict(method="rbd"), "give a projection and d"),
    ],
)
def test_bad_input_is_one_clear_error(digits, overrides, match):
    with pytest.raises(IdbenchError, match=match):
        run(spec(**overrides), digits)


@pytest.mark.skipif(not FASHION.is_dir(), reason=f"{FASHION} absent")
def test_rbd_beats_fpd_on_fashion_mnist_at_d250():
    """Short, seeded version of the study's comparison (benchmarks/rbd_vs_fpd.py is the long one):
    FC-128 (D = 101,770), fastfood bases, d = 250, 200 steps, each method at the best of a
    half-decade learning-rate grid around its own optimum."""
    data = idbench.data.load("fashion-mnist", download=False)

    def best(method: str, lrs: tuple[float, ...]) -> float:
        return max(
            run(RunSpec(model="fc[depth=1,width=128]", dataset="fashion-mnist", seed=0, lr=lr,
                        steps=200, projection="fastfood", d=250, method=method,
                        schedule="constant"), data).val_score
            for lr in lrs
        )

    fpd = best("fpd", (1.0, 3.0, 10.0))
    rbd = best("rbd", (3.0, 10.0, 30.0))
    assert fpd > 0.65  # fpd did train
    assert rbd > fpd + 0.02
