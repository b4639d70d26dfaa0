"""The top curvature of the training loss inside a subspace: lambda_max(P^T H P) at theta0.

Why: a learning rate carried across d must stay below the stability limit ~2 / lambda_max of the
subspace problem. With unit-norm columns, lambda_max(P^T H P) shrinks like d / D only while d is
above the Hessian's effective rank; below it, it stops shrinking, so a rate carried as
``lr * d_ref / d`` overshoots at small d. Measuring lambda_max at each d gives the carrying rule
``lr_d = lr_ref * lambda_ref / lambda_d`` (``lr_scaling: curvature``).

How: Lanczos iteration (with full reorthogonalisation, Rayleigh-Ritz on the stored products) on
Hessian-vector products, a few dozen of them, on one fixed training batch. The products are exact: ``torch.func.vjp`` of ``torch.func.grad``
(reverse over reverse; H is symmetric, so the pullback of v is H v) of the loss as a function of
the flat parameter vector theta, run through ``functional_call``; the gradient's graph is built
once and pulled back for every v. (Forward over reverse, ``jvp`` of ``grad``, fails on some
models: torch raises "ZeroTensors are immutable" on the toy's expand-then-sum.) In a subspace the product is P^T (H (P v)); the projection is applied outside
the transforms, with its own structured products, so no D x d matrix is ever built. The largest
Ritz value of k Lanczos steps approaches lambda_max from below and is exact once k reaches the
dimension.

A product that is not finite (a loss already NaN at theta0, an overflow) makes the estimate NaN;
the caller decides what to fall back to.

Example::

    lam = lambda_max_of_run(spec, data)          # spec: a RunSpec (subspace or baseline)
    lam = lambda_max(model, lambda m: data.loss(m(xb), yb))
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn
from torch.func import grad, vjp

from idbench.methods.bases import Reparametrised
from idbench.seeding import cpu_generator
from idbench.subspace import FlatLayout, SubspaceModel
from idbench.train import build_model

LossFn = Callable[[nn.Module], torch.Tensor]
LANCZOS_STEPS = 20  # Hessian-vector products per estimate
CURVATURE_BATCH = 512  # training samples of the fixed batch


def hessian_vector_product(
    module: nn.Module, loss_fn: LossFn, theta: torch.Tensor
) -> Callable[[torch.Tensor], torch.Tensor]:
    """v -> H v, H the Hessian of ``loss_fn`` in the flat parameters of ``module`` at ``theta``.

    Buffers are the module's own (BatchNorm in training mode normalises by the batch, as in
    training, but its running statistics must not be updated inside the transform: the
    estimate is meant for models without BatchNorm or in evaluation mode)."""
    layout = FlatLayout.of(module)

    def loss_at(flat: torch.Tensor) -> torch.Tensor:
        return loss_fn(Reparametrised(module, layout.unflatten(flat)))

    _, pullback = vjp(grad(loss_at), theta)  # the gradient's graph, built once, pulled back per v
    return lambda v: pullback(v)[0]


def lanczos_max(
    matvec: Callable[[torch.Tensor], torch.Tensor], n: int, *, steps: int = LANCZOS_STEPS,
    seed: int = 0, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
) -> float:
    """Largest eigenvalue of the symmetric n x n operator ``matvec`` by ``min(steps, n)`` Lanczos
    steps from a seeded random start; NaN if any product is not finite.

    The Krylov basis Q is kept orthonormal (full reorthogonalisation, twice), and the estimate is
    the top Ritz value of Q^T (A Q) computed from the stored products rather than of the
    three-term recurrence's tridiagonal matrix: in float32, once the Krylov space is exhausted
    (A of low rank, as the toy's Hessian), the recurrence's coefficients are rounding noise,
    while Q^T A Q stays a compression of A, so its top eigenvalue never exceeds A's.
    """
    start = torch.randn(n, generator=cpu_generator(seed, "lanczos", n), dtype=torch.float64)
    q = (start / start.norm()).to(device=device, dtype=dtype)
    tiny = 10 * torch.finfo(dtype).eps
    basis, products = [q], []
    for k in range(min(steps, n)):
        w = matvec(basis[k])
        if not bool(torch.isfinite(w).all()):
            return math.nan
        products.append(w)
        if k + 1 == min(steps, n):
            break
        stacked = torch.stack(basis)
        scale = float(w.norm())
        w = w - stacked.T @ (stacked @ w)
        w = w - stacked.T @ (stacked @ w)
        beta = float(w.norm())
        if beta <= tiny * scale:
            break  # the Krylov space is invariant: its Ritz values are eigenvalues
        basis.append(w / beta)
    Q = torch.stack(basis[: len(products)]).double()
    compressed = Q @ torch.stack(products).double().T
    return float(torch.linalg.eigvalsh((compressed + compressed.T) / 2)[-1])


def lambda_max(model: nn.Module, loss_fn: LossFn, *, steps: int = LANCZOS_STEPS, seed: int = 0
               ) -> float:
    """Top eigenvalue of the loss Hessian at the model's current point.

    For a :class:`SubspaceModel`, of P^T H P (the Hessian in z; at theta0 while z = 0); for any
    other module, of the full Hessian H (d = D, the reference).
    """
    if isinstance(model, SubspaceModel):
        module = model.module
        with torch.no_grad():
            theta = model.theta().detach()
        hvp = hessian_vector_product(module, loss_fn, theta)

        def matvec(v: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                parts = v.split(model.directions)
                pv = torch.cat([p(vk) for p, vk in zip(model.projections, parts)])
                hpv = hvp(pv)
                return torch.cat([p.adjoint(hpv[start:end])
                                  for p, (start, end) in zip(model.projections, model.bounds)])

        return lanczos_max(matvec, model.d_total, steps=steps, seed=seed, dtype=theta.dtype,
                           device=theta.device)
    theta = FlatLayout.of(model).flatten(model)
    hvp = hessian_vector_product(model, loss_fn, theta)
    return lanczos_max(lambda v: hvp(v).detach(), theta.numel(), steps=steps, seed=seed,
                       dtype=theta.dtype, device=theta.device)


def lambda_max_of_run(spec: Any, data: Any, *, batch: int = CURVATURE_BATCH,
                      steps: int = LANCZOS_STEPS) -> float:
    """lambda_max at the initialisation of the run ``spec`` (a RunSpec), on a fixed training batch
    of ``batch`` samples drawn with the run's seed (model in training mode, no augmentation)."""
    model = build_model(spec, data)
    model.train()
    order = torch.randperm(len(data.x_train), generator=cpu_generator(spec.seed, "curvature"))
    idx = order[:batch].to(data.x_train.device)
    xb, yb = data.x_train[idx], data.y_train[idx]
    return lambda_max(model, lambda m: data.loss(m(xb), yb), steps=steps, seed=spec.seed)
