"""Fixed projection descent: an ordinary optimiser on the trainable tensors of the model.

For a :class:`~idbench.subspace.SubspaceModel` that is z alone (Li et al. 2018); for a plain network
(the baseline) every parameter. The optimiser is the run spec's ``optimizer``, built by
:func:`build_optimizer` (the one place that knows the choices):

- ``sgd``: SGD with the spec's momentum and weight decay;
- ``adam``: Adam with the spec's weight decay;
- ``ngd``: natural gradient (:mod:`idbench.methods.ngd`): SGD with the spec's momentum and weight
  decay on the damped empirical-Fisher direction F^{-1} g instead of g (``ngd_samples``,
  ``ngd_damping``, ``ngd_refresh``);
- ``lbfgs``: ``torch.optim.LBFGS`` with a strong-Wolfe line search. Meant for full-batch (or
  large-batch) problems such as the known-answer toys and small models: in a small subspace the
  problem can be badly conditioned (condition numbers of 100 to 3,000 at d = d_int on the toy), and
  a first-order method does not finish in its budget where a quasi-Newton one converges. One
  trainer step is one ``LBFGS.step`` of up to ``LBFGS_MAX_ITER`` iterations on the same batch, so
  a budget of ``steps`` outer steps is up to ``steps * LBFGS_MAX_ITER`` iterations. The scheduled
  learning rate is the line search's first trial step (the search then moves it), so the result
  hardly depends on it; ``lr = 1`` with a constant schedule is the natural choice. Once a whole
  step moves the loss by less than LBFGS's ``tolerance_change``, the run has converged (to the
  solution, or to the best a subspace too small allows) and the trainer stops it there
  (``stopped_early``): the remaining steps would change nothing.

Methods that take their own steps (``rbd``, ``nes``) do not use this optimiser;
:class:`~idbench.config.MeasureConfig` refuses ``lbfgs`` with them before any training.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from idbench.methods.base import METHODS, BatchLoss, Method
from idbench.methods.ngd import NaturalGradient
from idbench.options import OPTIMIZERS  # noqa: F401 - the choices, defined with the options
LBFGS_MAX_ITER = 20  # LBFGS iterations per trainer step
LBFGS_HISTORY = 20  # curvature pairs LBFGS keeps


def build_optimizer(spec: Any, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """The optimiser named by ``spec.optimizer`` (one of :data:`OPTIMIZERS`) over ``params``."""
    if spec.optimizer == "adam":
        return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    if spec.optimizer == "lbfgs":
        return torch.optim.LBFGS(
            params, lr=spec.lr, max_iter=LBFGS_MAX_ITER, history_size=LBFGS_HISTORY,
            line_search_fn="strong_wolfe",
        )
    return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum,  # sgd, and ngd's steps
                           weight_decay=spec.weight_decay)


@METHODS.register("fpd")
class FixedProjectionDescent(Method):
    name = "fpd"

    def __init__(self, model: nn.Module, run_spec: Any) -> None:
        super().__init__(model, run_spec)
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(run_spec, params)
        self.natural = None if run_spec.optimizer != "ngd" else NaturalGradient(
            model, samples=run_spec.ngd_samples, damping=run_spec.ngd_damping,
            refresh=run_spec.ngd_refresh,
        )
        self._last_loss = math.inf  # LBFGS: the loss at the previous step's start
        self._converged = False

    def step(self, loss_fn: BatchLoss, lr: float) -> torch.Tensor:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

        def closure() -> torch.Tensor:
            self.optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(self.model)
            loss.backward()
            if self.natural is not None:
                self.natural.precondition(loss_fn)
            return loss

        # every optimiser takes a closure; LBFGS calls it once per line-search evaluation and
        # returns the loss at the step's start
        loss = self.optimizer.step(closure).detach()
        if isinstance(self.optimizer, torch.optim.LBFGS):
            # converged: the whole previous step (up to LBFGS_MAX_ITER iterations) moved the loss
            # by less than LBFGS's own tolerance on a change of the loss
            tolerance = self.optimizer.param_groups[0]["tolerance_change"]
            value = float(loss)
            self._converged = abs(value - self._last_loss) < tolerance
            self._last_loss = value
        return loss

    def converged(self) -> bool:
        return self._converged

    def describe(self) -> dict[str, Any]:
        if self.spec.optimizer != "lbfgs":
            return {}
        return {"lbfgs_max_iter": LBFGS_MAX_ITER, "lbfgs_history": LBFGS_HISTORY,
                "line_search": "strong_wolfe"}
