"""Evolution-strategies gradient estimate on random bases (``nes``), the comparison baseline of
Gressmann et al. 2020 ("Improving neural network training in low dimensional random bases").

Each step uses the same fresh bases as ``rbd`` (same per-step seeds, see
:mod:`idbench.methods.bases`) but estimates the coordinates from antithetic loss differences
instead of the exact gradient projection: for every basis direction eps_i (unit norm),

    c_i = (L(theta + sigma eps_i) - L(theta - sigma eps_i)) / (2 sigma),
    theta <- theta - lr * sum_i c_i eps_i = theta - lr * P c,

so "the same number of directions" means d directions per compartment, i.e. d antithetic pairs
and 2 d perturbed evaluations of the batch loss (any d, odd included). The central difference is
the directional derivative <g, eps_i> up to O(sigma^2), so for small sigma nes takes rbd's step;
the estimate needs no backward pass but 2 d forward passes.

``sigma`` (default 0.01) is the length of each perturbation in parameter space, since the
directions have unit norm: small enough that the difference quotient is the directional derivative
for ordinary networks, large enough that float32 rounding of the loss (~1e-7) stays far below the
loss differences it divides (~sigma * |g| / sqrt(D / d)). The perturbed losses are evaluated
without autograd, batched with ``torch.func.vmap`` over chunks of antithetic pairs (memory bounded
by _PERTURBED_ELEMENTS), with one dropout mask per chunk, so both members of a pair see the same
mask (common random numbers), and with copies of the buffers, so BatchNorm statistics are updated
only by the one ordinary forward pass at theta that gives the reported loss.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.func import vmap

from idbench.errors import IdbenchError
from idbench.methods.base import METHODS, LossFn
from idbench.methods.bases import RandomBasesMethod, Reparametrised
from idbench.projections import Projection

_PERTURBED_ELEMENTS = 1 << 24  # parameters held by one batch of perturbed copies of theta


@METHODS.register("nes")
class EvolutionStrategies(RandomBasesMethod):
    name = "nes"

    def __init__(
        self, model: nn.Module, run_spec: Any, *, sigma: float = 0.01,
        distribution: str = "gaussian", grad_cosine: bool = False,
    ) -> None:
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not (
            sigma > 0 and math.isfinite(sigma)
        ):
            raise IdbenchError(f"nes sigma must be a positive number, got {sigma!r}")
        super().__init__(
            model, run_spec, distribution=distribution, grad_cosine=grad_cosine,
            options={"sigma": float(sigma)},
        )
        self.sigma = float(sigma)

    def step(self, loss_fn: LossFn, lr: float) -> torch.Tensor:
        if self.method_options["grad_cosine"]:  # the diagnostic needs the true gradient
            loss, grad = self.loss_and_grad(loss_fn)
        else:
            with torch.no_grad():
                loss, grad = loss_fn(self.model), None
        with torch.no_grad():
            direction = torch.empty_like(self.theta)
            for k in range(len(self.bounds)):
                basis = self.basis(k)
                direction[slice(*self.bounds[k])] = basis(self.coordinates(loss_fn, basis, k))
        self.apply(direction, lr, grad)
        return loss.detach()

    def coordinates(self, loss_fn: LossFn, basis: Projection, k: int) -> torch.Tensor:
        """c_i = (L(theta + sigma eps_i) - L(theta - sigma eps_i)) / (2 sigma) for the d columns
        eps_i of compartment k's basis, in chunks of directions."""
        start, end = self.bounds[k]
        theta, d = self.theta, basis.d  # the compartment's own number of directions
        chunk = max(1, _PERTURBED_ELEMENTS // (2 * theta.numel()))
        coords = theta.new_empty(d)
        for i0 in range(0, d, chunk):
            m = min(chunk, d - i0)
            unit = theta.new_zeros(m, d)
            unit[torch.arange(m), torch.arange(i0, i0 + m)] = 1.0
            columns = basis(unit) * self.sigma  # (m, size_k): sigma eps_i
            perturbed = theta.repeat(2 * m, 1)
            perturbed[:m, start:end] += columns
            perturbed[m:, start:end] -= columns
            losses = self.losses(loss_fn, perturbed)
            coords[i0 : i0 + m] = (losses[:m] - losses[m:]) / (2 * self.sigma)
        return coords

    def losses(self, loss_fn: LossFn, thetas: torch.Tensor) -> torch.Tensor:
        """Batch loss at each row of ``thetas``, the module's buffers copied per row."""
        buffers = {
            name: b.expand(len(thetas), *b.shape).clone()
            for name, b in self.model.named_buffers()
        }

        def loss_at(theta: torch.Tensor, bufs: dict[str, torch.Tensor]) -> torch.Tensor:
            return loss_fn(Reparametrised(self.model, {**self.layout.unflatten(theta), **bufs}))

        return vmap(loss_at, randomness="same")(thetas, buffers)
