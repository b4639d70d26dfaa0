"""What ``rbd`` and ``nes`` share: the network as one flat parameter vector, and a fresh random
basis per compartment at every step (Gressmann et al. 2020, "Improving neural network training in
low dimensional random bases"); compartment k has d_k directions (d each, or, per layer, d in all
split across the layers: :meth:`idbench.subspace.FlatLayout.compartments`).

The module's parameters become views of one flat vector theta (once, at construction), so an
update is one in-place vector operation and the trainer's evaluation sees it at once. At step t the
basis of compartment k is

    projections.create(projection, D=size_k, d=d_k, seed=derive_seed(run_seed, "rbd", t, k))

built from its seed when needed and dropped after the step, never stored. ``rbd`` and ``nes`` use
the same key, so for one run seed they draw the very same bases and differ only in how the
coordinates are estimated. A dense basis is built as ``dense[regenerate=true]``: its rows are
drawn by the adjoint P^T g and kept for the update P c when they fit in ``dense.KEEP_BYTES``
(one reused buffer), else drawn again, so memory stays bounded whatever D x d is
(``dense[regenerate=false]`` builds each step's whole matrix instead).

Subclasses implement :meth:`RandomBasesMethod.step` and call :meth:`~RandomBasesMethod.apply` with
the step direction; the update is plain SGD on theta (the trainer's schedule sets ``lr``; the run
spec's optimizer, momentum and weight decay are not used). Studies of these methods use
``schedule="constant"``, as Gressmann et al. did.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.func import functional_call

import idbench.projections as projections
from idbench.errors import IdbenchError
from idbench.methods.base import LossFn, Method
from idbench.projections.dense import DISTRIBUTIONS
from idbench.registry import Spec
from idbench.runinfo import Optimiser, SubspaceInfo
from idbench.seeding import derive_seed
from idbench.subspace import FlatLayout


class Reparametrised(nn.Module):
    """``module`` run with ``params`` (name -> tensor) in place of its own parameters."""

    def __init__(self, module: nn.Module, params: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.inner, self.params = module, params

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return functional_call(self.inner, self.params, args, kwargs)


def basis_spec(projection: Spec, distribution: str) -> Spec:
    """The projection spec of the per-step bases: the run's projection, with the distribution of
    a dense basis set and dense regeneration on unless the spec says otherwise."""
    if distribution not in DISTRIBUTIONS:
        raise IdbenchError(
            f"unknown distribution {distribution!r}; choose from {', '.join(DISTRIBUTIONS)}"
        )
    name, options = projection.name, projection.options
    if name != "dense":
        if distribution != "gaussian":
            raise IdbenchError(
                f"distribution={distribution} needs the dense projection; {name!r} bases have "
                "their own construction (use projection 'dense' or the default distribution)"
            )
        return projection
    if options.get("distribution", distribution) != distribution:
        raise IdbenchError(
            f"the projection says distribution={options['distribution']} and the method "
            f"distribution={distribution}: set it once, as the method option"
        )
    return Spec(name, {"regenerate": True, **options, "distribution": distribution})


class RandomBasesMethod(Method):
    """Base of the step rules that draw a fresh basis every step and update the plain network."""

    uses_subspace_model = False
    uses_optimizer = False

    def __init__(
        self, model: nn.Module, run_spec: Any, *, distribution: str, grad_cosine: bool,
        options: dict[str, Any],
    ) -> None:
        super().__init__(model, run_spec)
        if run_spec.projection is None or run_spec.d is None:
            raise IdbenchError(
                f"method {self.name!r} trains in random bases: give a projection and d"
            )
        self.layout = FlatLayout.of(model)
        self.d = run_spec.d
        self.bounds, self.directions = self.layout.compartments(run_spec.compartments, self.d)
        self.basis_spec = basis_spec(run_spec.projection, distribution)
        self.method_options = {
            "distribution": distribution, "grad_cosine": bool(grad_cosine), **options,
        }
        self.theta = self.layout.flatten(model).clone()
        params = self.layout.unflatten(self.theta)
        for name, param in model.named_parameters():  # once: parameters become views of theta
            param.data = params[name]
        self.t = 0  # steps taken: the per-step seeds derive from it
        self.cosine_sum = torch.zeros((), dtype=torch.float64, device=self.theta.device)
        self.basis_info = self.basis(0).describe()  # a bad spec fails here, before training

    def basis(self, k: int) -> projections.Projection:
        """Compartment k's basis of the current step, rebuilt from its seed."""
        start, end = self.bounds[k]
        return projections.create(
            self.basis_spec, D=end - start, d=self.directions[k],
            seed=derive_seed(self.spec.seed, "rbd", self.t, k), device=self.theta.device,
            dtype=self.theta.dtype,
        )

    def loss_and_grad(self, loss_fn: LossFn) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch loss and its gradient with respect to theta (one flat vector)."""
        leaf = self.theta.detach().requires_grad_()
        loss = loss_fn(Reparametrised(self.model, self.layout.unflatten(leaf)))
        (grad,) = torch.autograd.grad(loss, leaf)
        return loss.detach(), grad

    @torch.no_grad()
    def apply(self, direction: torch.Tensor, lr: float, grad: torch.Tensor | None) -> None:
        """theta -= lr * direction; with the diagnostic on, also adds cos(direction, grad)."""
        if self.method_options["grad_cosine"]:
            denom = (direction.norm() * grad.norm()).clamp_min(torch.finfo(grad.dtype).tiny)
            self.cosine_sum += (direction @ grad / denom).double()
        self.theta.sub_(direction, alpha=lr)
        self.t += 1

    def describe(self) -> dict[str, Any]:
        """The method's options (``distribution``, ``grad_cosine`` and the subclass's own)."""
        return dict(self.method_options)

    def optimiser(self) -> Optimiser:
        """The update is plain SGD on theta, whatever optimiser the run spec names."""
        return Optimiser(name="sgd", momentum=0.0, weight_decay=0.0)

    def subspace_info(self) -> SubspaceInfo:
        """The per-step bases: the run's projection (as built), compartments and directions."""
        basis = self.basis_info
        return SubspaceInfo(
            projection=basis["projection"], projection_options=basis["projection_options"],
            normalisation=basis["normalisation"], compartments=str(self.spec.compartments or 1),
            directions=self.directions, D=self.layout.D,
        )

    def grad_cosine(self) -> float | None:
        """With ``grad_cosine=true``: the mean cosine between step direction and gradient."""
        if not self.method_options["grad_cosine"] or not self.t:
            return None
        return float(self.cosine_sum) / self.t
