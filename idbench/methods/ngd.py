"""Natural gradient in the subspace: the damped empirical-Fisher step of SENG (Yang et al.).

For the trainable vector w of a run (z of a subspace run, n = d_total; theta of a full-space run,
n = D) the direction of a step is

    F^{-1} g,      F = U^T U / b + lambda I_n,

with g the mini-batch gradient and U (b x n) the per-example gradients u_i = P^T grad_theta l_i of
b examples of the batch (the first b: the batch is already a random draw). By the
Sherman-Morrison-Woodbury identity

    F^{-1} g = (g - U^T (lambda b I_b + U U^T)^{-1} U g) / lambda,

one Cholesky solve of a b x b system (in float64): no n x n matrix, whatever n is. The direction
then goes through SGD with the run's momentum and weight decay, as in SENG, so lr, schedule and
momentum mean what they mean for ``sgd``; lambda sets how far the step departs from g / lambda
(lambda large: plain SGD at rate lr / lambda).

The per-example gradients are ``torch.func.vmap`` over the b examples of ``torch.func.grad`` of the
loss as a function of the flat theta (the network run with views of theta as its parameters), with
the network in eval mode: BatchNorm statistics of a single example are not defined, and dropout
would make the sketch noisier for nothing. That gives a (b, D) matrix; a subspace run maps it to
(b, d) with one batched adjoint product per compartment, so every projection and compartments
work. U (and its b x b factor) is recomputed every ``refresh`` steps (SENG refreshes every 200 to
800 iterations); in between a step costs two b x n products more than an SGD step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from idbench.methods.base import BatchLoss
from idbench.subspace import FlatLayout, SubspaceModel


@dataclass(frozen=True)
class FisherSketch:
    """The damped empirical Fisher U^T U / b + lambda I of b per-example gradients (rows of U),
    held as U and the Cholesky factor of the b x b matrix lambda b I + U U^T."""

    U: torch.Tensor  # (b, n)
    cholesky: torch.Tensor  # (b, b), float64
    damping: float

    @classmethod
    def of(cls, U: torch.Tensor, damping: float) -> "FisherSketch":
        wide = U.double()
        gram = wide @ wide.T
        gram.diagonal().add_(damping * U.shape[0])
        # positive definite by construction (damping > 0): cholesky_ex skips the error check and
        # with it a device synchronisation
        return cls(U, torch.linalg.cholesky_ex(gram).L, damping)

    def solve(self, g: torch.Tensor) -> torch.Tensor:
        """(U^T U / b + lambda I)^{-1} g, by Sherman-Morrison-Woodbury."""
        rhs = (self.U.double() @ g.double()).unsqueeze(-1)
        coefficients = torch.cholesky_solve(rhs, self.cholesky).squeeze(-1).to(g.dtype)
        return (g - coefficients @ self.U) / self.damping


class NaturalGradient:
    """Replaces the gradient of the trainable tensors of ``model`` by F^{-1} g (module docstring).

    ``precondition(batch)`` is called after the batch loss's backward pass, before the optimiser
    step; every ``refresh``-th call recomputes U from the first ``samples`` examples of ``batch``.
    The options are checked where they are defined (:class:`idbench.options.TrainOptions`).
    """

    def __init__(self, model: nn.Module, *, samples: int, damping: float, refresh: int) -> None:
        self.samples, self.damping, self.refresh = samples, float(damping), refresh
        self.model = model
        self.subspace = model if isinstance(model, SubspaceModel) else None
        self.net = self.subspace.module if self.subspace is not None else model
        self.layout = self.subspace.layout if self.subspace is not None else FlatLayout.of(model)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.calls = 0
        self.sketch: FisherSketch | None = None

    def _theta(self) -> torch.Tensor:
        if self.subspace is not None:
            return self.subspace.theta().detach()
        return self.layout.flatten(self.net)

    def per_example_gradients(self, batch: BatchLoss) -> torch.Tensor:
        """U: the gradients in the trainable coordinates of the first ``samples`` examples'
        losses, one row each (the network in eval mode)."""
        x, y = batch.x[: self.samples], batch.y[: self.samples]

        def example_loss(params: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor):
            out = functional_call(self.net, params, (xi.unsqueeze(0),))
            return batch.loss(out, yi.unsqueeze(0))

        was_training = self.net.training
        self.net.eval()
        try:  # gradients by parameter tensor (a flat-theta argument would cost a (b, D) scatter)
            per_tensor = vmap(grad(example_loss), in_dims=(None, 0, 0))(
                self.layout.unflatten(self._theta()), x, y
            )
        finally:
            self.net.train(was_training)
        G = torch.cat([per_tensor[name].flatten(1) for name in self.layout.names], dim=1)  # (b, D)
        if self.subspace is None:
            return G
        parts = [
            projection.adjoint(G[:, start:end])
            for projection, (start, end) in zip(self.subspace.projections, self.subspace.bounds)
        ]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def precondition(self, batch: BatchLoss) -> None:
        """Replace the ``.grad`` of the trainable tensors (the batch gradient g) by F^{-1} g."""
        if self.calls % self.refresh == 0:
            self.sketch = FisherSketch.of(self.per_example_gradients(batch), self.damping)
        self.calls += 1
        grads = [p.grad for p in self.params]
        direction = self.sketch.solve(torch.cat([g.reshape(-1) for g in grads]))
        for g, part in zip(grads, direction.split([g.numel() for g in grads])):
            g.copy_(part.view_as(g))
