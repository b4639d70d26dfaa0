"""Random bases descent (Gressmann et al. 2020, "Improving neural network training in low
dimensional random bases"): every step draws a fresh basis P_t of d directions per compartment,
projects the mini-batch gradient g onto it and steps along the basis combination,

    c_k = P_t,k^T g_k,        theta_k <- theta_k - lr * P_t,k c_k,

so theta moves in a new random d-dimensional subspace at every step (z restarts at 0 each time).
With unit-norm columns E[P P^T] = (d / D) I: the step follows the gradient on average, shrunk by
d / D, so rbd's learning rates are correspondingly larger than SGD's. The basis is never stored:
it is regenerated from its per-step seed for the update (see :mod:`idbench.methods.bases`).

Options: ``distribution`` (gaussian | uniform | bernoulli, dense bases only) and ``grad_cosine``
(record the mean cosine between the step P c and the gradient g on the same batch, the
"gradient correlation with SGD" of the paper). Example::

    RunSpec(model="fc[depth=1,width=128]", dataset="fashion-mnist", seed=0, lr=5.0,
            method="rbd[distribution=uniform]", projection="dense", d=250, schedule="constant")
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from idbench.methods.base import METHODS, LossFn
from idbench.methods.bases import RandomBasesMethod


@METHODS.register("rbd")
class RandomBasesDescent(RandomBasesMethod):
    name = "rbd"

    def __init__(
        self, model: nn.Module, run_spec: Any, *, distribution: str = "gaussian",
        grad_cosine: bool = False,
    ) -> None:
        super().__init__(
            model, run_spec, distribution=distribution, grad_cosine=grad_cosine, options={}
        )

    def step(self, loss_fn: LossFn, lr: float) -> torch.Tensor:
        loss, grad = self.loss_and_grad(loss_fn)
        with torch.no_grad():
            direction = torch.empty_like(grad)
            for k, (start, end) in enumerate(self.bounds):
                basis = self.basis(k)
                direction[start:end] = basis(basis.adjoint(grad[start:end]))
        self.apply(direction, lr, grad)
        return loss
