"""Training-path metrics (Tuddenham's thesis, ch. 3): how straight a run's path through space is.

For the points x_0, x_1, ..., x_T a run passes through (the trainable point before the first step
and after every step) with steps s_i = x_i - x_{i-1}:

    displacement   D_t = ||x_T - x_0||
    path length    D_s = sum_i ||s_i||
    directedness   psi = D_t / D_s, in [0, 1]

psi = 1 is a straight line; a random walk of isotropic Gaussian steps has E[D_t] / E[D_s] =
1 / sqrt(T) (:func:`random_walk_psi`), so psi well above 1 / sqrt(T) means a directed run. The
windowed psi_N is the same ratio over consecutive windows of N steps (default :data:`WINDOW` = 250,
Tuddenham's choice), which shows how directed training is at each stage (e.g. after a rate drop).
psi is None (undefined) for a path of length zero, psi_window also before a first window ends.

:class:`TrainingPaths` tracks a run in theta-space (the D parameters) always and in z-space (the
subspace coordinates) for subspace runs. Everything per step is a tensor op on the device (a
difference, a norm, a running sum): no per-step host synchronisation. For a subspace run, theta
after step t is the theta the model computes in its next forward pass, which the
:class:`~idbench.subspace.SubspaceModel` keeps on request (keyed by the version counter of z, so it
is theta at exactly that z); tracking theta then costs no extra projection product per step. For
a full-space run with plain SGD, the length of each step is read from the optimiser's update
(lr times its momentum buffer) and the parameters are copied only where a window ends, not after
every step.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from idbench.errors import IdbenchError
from idbench.subspace import SubspaceModel

WINDOW = 250  # steps per window of the windowed directedness (Tuddenham)


def random_walk_psi(steps: int) -> float:
    """E[D_t] / E[D_s] after ``steps`` i.i.d. isotropic Gaussian steps: 1 / sqrt(steps).

    With s_i ~ N(0, sigma^2 I_n), E||s_i|| = sigma sqrt(2) G(n) and x_T - x_0 ~ N(0, T sigma^2 I_n),
    so E[D_t] = sigma sqrt(2T) G(n) and E[D_s] = T sigma sqrt(2) G(n), G(n) = Gamma((n+1)/2) /
    Gamma(n/2), whatever the dimension n and scale sigma.
    """
    return 1.0 / math.sqrt(steps)


class PathTracker:
    """Displacement, path length and directedness (whole path and windowed) of a path of points."""

    def __init__(self, start: torch.Tensor, *, window: int = WINDOW) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise IdbenchError(
                f"the path window must be a positive number of steps, got {window!r}"
            )
        self.window, self.steps = window, 0
        self._start = start.detach().flatten().clone()
        self._last = self._window_start = self._start
        self._length = self._start.new_zeros(())
        self._window_length = self._start.new_zeros(())
        self._window_psi: list[torch.Tensor] = []  # one 0-d device tensor per completed window

    def add(self, point: torch.Tensor) -> None:
        """Append the next point of the path (device ops only, no host synchronisation).

        The tracker keeps a reference to ``point``, not a copy: pass a tensor that nothing
        modifies in place afterwards (a fresh one)."""
        point = point.detach().flatten()
        self._advance(torch.dist(point, self._last), point)
        self._last = point

    def add_step(self, length: torch.Tensor, current: Callable[[], torch.Tensor]) -> None:
        """Append the next point by the length of the step to it (a 0-d tensor), without the
        point itself: ``current()`` returns it (a fresh tensor) and is called only when a window
        ends. :meth:`summary` then needs ``current`` too."""
        self._advance(length, current)
        self._last = None

    def _advance(self, step: torch.Tensor, point: torch.Tensor | Callable[[], torch.Tensor]) -> None:
        self._length += step
        self._window_length += step
        self.steps += 1
        if self.steps % self.window == 0:
            point = point if isinstance(point, torch.Tensor) else point().detach().flatten()
            self._window_psi.append(torch.dist(point, self._window_start) / self._window_length)
            self._window_start = point
            self._window_length = self._start.new_zeros(())

    def window_psi(self) -> list[float | None]:
        """psi of every completed window of ``window`` steps, in order (None for a window without
        motion), with one host sync."""
        values = torch.stack(self._window_psi).tolist() if self._window_psi else []
        return [None if math.isnan(v) else v for v in values]

    def summary(self, current: Callable[[], torch.Tensor] | None = None) -> dict[str, float | None]:
        """Whole-path displacement, path length and psi, and psi of the last completed window
        (None before the first window completes), as floats (one host sync). ``current``: as
        for :meth:`add_step`, when the points came by their step lengths."""
        last = self._last if self._last is not None else current().detach().flatten()
        displacement = torch.dist(last, self._start)
        values = torch.stack([displacement, self._length, *self._window_psi[-1:]]).tolist()
        disp, length = values[:2]
        return {
            "displacement": disp,
            "path_length": length,
            "psi": disp / length if length > 0 else None,
            "psi_window": values[2] if len(values) > 2 and not math.isnan(values[2]) else None,
        }


def _flat_parameters(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def sgd_steps_known(optimizer: torch.optim.Optimizer | None) -> bool:
    """Whether :func:`sgd_step_length` can tell ``optimizer``'s steps: plain SGD (no Nesterov, no
    dampening), with momentum or without weight decay, so that every step is -lr * (momentum
    buffer), or -lr * grad."""
    if not isinstance(optimizer, torch.optim.SGD):
        return False
    return all(not g["nesterov"] and not g["maximize"] and g["dampening"] == 0
               and (g["momentum"] != 0 or g["weight_decay"] == 0) for g in optimizer.param_groups)


def sgd_step_length(optimizer: torch.optim.SGD) -> torch.Tensor:
    """The length of the step ``optimizer`` just took, from its update (lr times the momentum
    buffer, or the gradient), without a copy of the parameters before it. Equal to the distance
    between the parameters before and after the step up to float rounding of the step itself
    (p - lr * u rounds each coordinate to the precision of p)."""
    lengths = []
    for group in optimizer.param_groups:
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            continue
        updates = ([optimizer.state[p]["momentum_buffer"] for p in params] if group["momentum"]
                   else [p.grad for p in params])
        lengths.append(group["lr"] * torch.stack(torch._foreach_norm(updates)).norm())
    return lengths[0] if len(lengths) == 1 else torch.stack(lengths).norm()


class TrainingPaths:
    """The path of one training run in theta-space, and in z-space when ``model`` is a subspace.

    Call :meth:`after_step` after every optimiser step and :meth:`summary` after an evaluation or
    at the end. For a :class:`~idbench.subspace.SubspaceModel`, theta after step t is picked up
    from the model's next forward pass (the one of step t + 1, or an evaluation): the theta path
    runs one point behind the z path until :meth:`summary` catches it up (with the theta the last
    evaluation computed, or one projection product if there was none). For a full-space run whose
    ``optimizer`` is one :func:`sgd_steps_known` accepts, step lengths come from its updates and the
    parameters are copied only when a window ends (and for a summary); otherwise after every step.
    """

    def __init__(self, model: nn.Module, *, window: int = WINDOW,
                 optimizer: torch.optim.Optimizer | None = None) -> None:
        self.window = window
        self._model = model
        self._subspace = model if isinstance(model, SubspaceModel) else None
        if self._subspace is not None:
            self.z: PathTracker | None = PathTracker(self._subspace.z, window=window)
            self.theta = PathTracker(self._subspace.theta0, window=window)  # theta at z = 0
            self._subspace.keep_theta_at = None
        else:
            self.z = None
            self.theta = PathTracker(_flat_parameters(model), window=window)
        self._optimizer = optimizer if sgd_steps_known(optimizer) else None

    def after_step(self) -> None:
        """Record the point after one optimiser step."""
        sub = self._subspace
        if sub is None:
            if self._optimizer is not None:
                self.theta.add_step(sgd_step_length(self._optimizer), self._current_parameters)
            else:
                self.theta.add(_flat_parameters(self._model))
            return
        self.z.add(sub.z.detach().clone())  # z itself changes in place at the next step
        if sub.keep_theta_at is not None:  # theta after the previous step is owed
            if sub.kept_theta is not None:  # computed by this step's forward pass at that z
                self.theta.add(sub.kept_theta)
            else:  # no forward pass at that z (no step rule here does this): close the gap now
                self._catch_up()
                return
        sub.keep_theta_at, sub.kept_theta = sub.z._version, None

    def _current_parameters(self) -> torch.Tensor:
        return _flat_parameters(self._model)

    def _catch_up(self) -> None:
        """Add theta at the current z, if the theta path is behind the z path."""
        sub = self._subspace
        if sub is None or sub.keep_theta_at is None:
            return
        if sub.kept_theta is not None and sub.keep_theta_at == sub.z._version:
            self.theta.add(sub.kept_theta)
        else:
            with torch.no_grad():
                self.theta.add(sub.theta())
        sub.keep_theta_at, sub.kept_theta = None, None

    def windows(self) -> dict[str, list[float | None]]:
        """psi of every completed window, by space: ``theta`` and, for a subspace run, ``z``."""
        self._catch_up()
        out = {"theta": self.theta.window_psi()}
        if self.z is not None:
            out["z"] = self.z.window_psi()
        return out

    def summary(self) -> dict[str, float | None]:
        """``theta_displacement``, ``theta_path_length``, ``theta_psi``, ``theta_psi_window`` and,
        for a subspace run, the same four with ``z_``; the theta path is caught up first."""
        self._catch_up()
        out = {f"theta_{k}": v for k, v in self.theta.summary(self._current_parameters).items()}
        if self.z is not None:
            out.update({f"z_{k}": v for k, v in self.z.summary().items()})
        return out
