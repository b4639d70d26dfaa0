"""Training-path metrics: known answers on synthetic paths, and exact tracking of real runs."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import idbench.data
import idbench.paths as paths_module
from idbench.errors import IdbenchError
from idbench.paths import PathTracker, TrainingPaths, random_walk_psi, sgd_steps_known
from idbench.rows import run_row
from idbench.subspace import SubspaceModel
from idbench.train import RunSpec, build_model, run, train


def test_a_straight_line_has_psi_one():
    start = torch.randn(30, dtype=torch.float64)
    direction = torch.randn(30, dtype=torch.float64)
    tracker = PathTracker(start, window=10)
    for t in range(1, 101):
        tracker.add(start + (t + t * t / 50) * direction)  # uneven step sizes, one direction
    stats = tracker.summary()
    assert stats["psi"] == pytest.approx(1.0, abs=1e-12)
    assert stats["displacement"] == pytest.approx(float(direction.norm()) * 300, rel=1e-12)
    assert stats["path_length"] == pytest.approx(stats["displacement"], rel=1e-12)
    assert tracker.window_psi() == pytest.approx([1.0] * 10, abs=1e-12)


def test_a_random_walk_has_psi_one_over_sqrt_t():
    """Isotropic Gaussian steps: psi ~ 1/sqrt(T) (whole run) and 1/sqrt(N) (windows of N), and the
    path length is T sigma sqrt(2) G(n) with G(n) = Gamma((n+1)/2) / Gamma(n/2)."""
    n, steps, window, sigma, walks = 50, 400, 25, 0.3, 40
    gen = torch.Generator().manual_seed(0)
    psi, windows, lengths = [], [], []
    for _ in range(walks):
        points = (sigma * torch.randn(steps, n, generator=gen, dtype=torch.float64)).cumsum(0)
        tracker = PathTracker(torch.zeros(n, dtype=torch.float64), window=window)
        for point in points:
            tracker.add(point)
        stats = tracker.summary()
        psi.append(stats["psi"])
        lengths.append(stats["path_length"])
        windows += tracker.window_psi()
    assert len(windows) == walks * steps // window
    assert sum(psi) / walks == pytest.approx(random_walk_psi(steps), rel=0.05)
    assert sum(windows) / len(windows) == pytest.approx(random_walk_psi(window), rel=0.05)
    g = math.exp(math.lgamma((n + 1) / 2) - math.lgamma(n / 2))
    assert sum(lengths) / walks == pytest.approx(steps * sigma * math.sqrt(2) * g, rel=0.01)


def test_psi_is_undefined_for_a_path_that_does_not_move_and_before_a_window_ends():
    tracker = PathTracker(torch.ones(3), window=2)
    tracker.add(torch.ones(3))
    stats = tracker.summary()
    assert stats["path_length"] == 0
    assert stats["psi"] is None and stats["psi_window"] is None
    tracker.add(torch.zeros(3))
    assert tracker.summary()["psi_window"] == pytest.approx(1.0)


@pytest.mark.parametrize("window", [0, -3, 2.5, True])
def test_a_bad_window_raises(window):
    with pytest.raises(IdbenchError, match="window"):
        PathTracker(torch.zeros(2), window=window)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))


def _reference(points: list[torch.Tensor], window: int) -> dict[str, float]:
    """The metrics computed directly from a list of points (brute force)."""
    x = torch.stack(points).double()
    steps = (x[1:] - x[:-1]).norm(dim=1)
    last = (len(points) - 1) // window * window
    return {
        "displacement": float((x[-1] - x[0]).norm()),
        "path_length": float(steps.sum()),
        "psi_window": float(
            (x[last] - x[last - window]).norm() / steps[last - window : last].sum()
        ),
    }


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("compartments", [None, "layer"])
def test_subspace_run_paths_are_exact(optimizer, compartments):
    """z and theta paths of a real subspace run, with evaluations in between, match the metrics
    computed from theta0 + P z after every step (L-BFGS: several forward passes per step)."""
    model = SubspaceModel(_net(), d=3, projection="fastfood", seed=1, compartments=compartments)
    x, y = torch.randn(32, 6, generator=torch.Generator().manual_seed(1)), torch.arange(32) % 3
    opt = {
        "sgd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
        "adam": lambda p: torch.optim.Adam(p, lr=0.05),
        "lbfgs": lambda p: torch.optim.LBFGS(p, lr=0.1, max_iter=3),  # 3 forward passes a step
    }[optimizer]([model.z])
    paths = TrainingPaths(model, window=4)
    zs, thetas = [model.z.detach().clone()], [model.theta().detach().clone()]

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    for step in range(1, 19):
        opt.step(closure)
        paths.after_step()
        zs.append(model.z.detach().clone())
        with torch.no_grad():
            thetas.append(model.theta().clone())
        if step in (5, 6, 13):  # an evaluation forward pass, then a summary
            with torch.no_grad():
                model(x)
            paths.summary()
    stats = paths.summary()
    for space, points in (("z", zs), ("theta", thetas)):
        for key, value in _reference(points, 4).items():
            assert stats[f"{space}_{key}"] == pytest.approx(value, rel=1e-5), (space, key)
        assert stats[f"{space}_psi"] == pytest.approx(
            stats[f"{space}_displacement"] / stats[f"{space}_path_length"])
    assert paths.z.steps == paths.theta.steps == 18


def test_full_space_run_has_only_a_theta_path():
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = torch.randn(16, 6), torch.arange(16) % 3
    paths = TrainingPaths(net, window=3)
    points = [torch.cat([p.detach().reshape(-1).clone() for p in net.parameters()])]
    for _ in range(7):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
        paths.after_step()
        points.append(torch.cat([p.detach().reshape(-1).clone() for p in net.parameters()]))
    stats = paths.summary()
    assert not any(k.startswith("z_") for k in stats)
    for key, value in _reference(points, 3).items():
        assert stats[f"theta_{key}"] == pytest.approx(value, rel=1e-5)


@pytest.mark.parametrize("momentum,weight_decay", [(0.9, 0.01), (0.0, 0.0)])
def test_full_space_sgd_steps_come_from_the_update_with_copies_only_at_window_ends(
    monkeypatch, momentum, weight_decay
):
    """With plain SGD the step lengths are lr * ||update||: the same metrics as the points give,
    and the parameters are flattened only when a window ends and for the summary."""
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=momentum, weight_decay=weight_decay)
    x, y = torch.randn(16, 6, generator=torch.Generator().manual_seed(2)), torch.arange(16) % 3
    copies = []
    flat = paths_module._flat_parameters
    monkeypatch.setattr(paths_module, "_flat_parameters", lambda m: copies.append(1) or flat(m))
    paths = TrainingPaths(net, window=3, optimizer=opt)
    points = [flat(net).clone()]
    for _ in range(7):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
        paths.after_step()
        points.append(flat(net).clone())
    assert len(copies) == 1 + 2  # the start, then the ends of windows 1 and 2 (steps 3 and 6)
    stats = paths.summary()
    for key, value in _reference(points, 3).items():
        assert stats[f"theta_{key}"] == pytest.approx(value, rel=1e-5)
    assert paths.windows()["theta"] == pytest.approx(
        [float((points[3] - points[0]).norm() / sum((points[i] - points[i - 1]).norm()
                                                    for i in range(1, 4))),
         float((points[6] - points[3]).norm() / sum((points[i] - points[i - 1]).norm()
                                                    for i in range(4, 7)))], rel=1e-5)


@pytest.mark.parametrize("optimizer", [
    lambda p: torch.optim.Adam(p, lr=0.1),
    lambda p: torch.optim.SGD(p, lr=0.1, nesterov=True, momentum=0.9),
    lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.1),  # the step needs the old parameters
])
def test_other_optimisers_are_not_read_for_step_lengths(optimizer):
    assert not sgd_steps_known(optimizer(_net().parameters()))


def test_every_training_run_records_its_path():
    """A subspace run reports theta- and z-space metrics, whole-run in ``path_metrics`` and at every
    evaluation in its history; theta's displacement is ||P z|| at the end; a baseline has theta's."""
    digits = idbench.data.load("digits")
    spec = RunSpec(model="fc[depth=1,width=16]", dataset="digits", seed=0, lr=0.3, epochs=3,
                   projection="fastfood", d=40, path_window=5)
    model = build_model(spec, digits)
    result = train(model, digits, spec)
    metrics = result.path_metrics
    with torch.no_grad():
        assert metrics["theta_displacement"] == pytest.approx(float(model.offset().norm()), rel=1e-4)
        assert metrics["z_displacement"] == pytest.approx(float(model.z.norm()), rel=1e-4)
    for space in ("z", "theta"):
        assert 0 < metrics[f"{space}_psi"] <= 1 and 0 < metrics[f"{space}_psi_window"] <= 1
        assert [h[f"{space}_psi"] is not None for h in result.history] == [True] * 3
        assert result.history[-1][f"{space}_path_length"] == metrics[f"{space}_path_length"]
    windows = result.steps // 5  # path_window = 5 steps
    assert [len(result.path_windows[space]) for space in ("z", "theta")] == [windows, windows]
    assert result.path_windows["z"][-1] == metrics["z_psi_window"]
    baseline = run(spec.replace(projection=None, d=None), digits)
    assert 0 < baseline.path_metrics["theta_psi"] <= 1
    assert not any(key.startswith("z_") for key in baseline.path_metrics)
    assert list(baseline.path_windows) == ["theta"]


def test_run_rows_carry_the_path_metrics_and_the_window():
    digits = idbench.data.load("digits")
    spec = RunSpec(model="fc[depth=1,width=16]", dataset="digits", seed=0, lr=0.3, epochs=1,
                   projection="fastfood", d=20, path_window=4)
    result = run(spec, digits)
    row = run_row(spec, result, cell="c", suite=None, role="probe", metric="accuracy",
                  device="cpu")
    assert row.path_window == 4
    assert len(result.path_metrics) == 8  # theta_ and z_: displacement, length, psi, window
    for key, value in result.path_metrics.items():
        assert value is not None and getattr(row, key) == value
    for space in ("theta", "z"):
        windows = json.loads(getattr(row, f"{space}_psi_windows"))
        assert windows == result.path_windows[space] and len(windows) == result.steps // 4
