"""What every projection is: a fixed random linear map P from d coordinates to D parameters.

A projection is an ``nn.Module`` whose buffers hold its random state (so ``.to(device)`` moves it).
Subclasses implement two plain tensor functions, ``_matvec`` (z -> P z) and ``_rmatvec``
(g -> P^T g), on inputs with any leading batch shape; the base class turns them into a
differentiable map whose backward pass *is* the adjoint. That keeps autograd from recording (and
storing) the intermediate steps of a structured transform, and makes ``gradcheck`` a direct test
that ``_rmatvec`` is the true adjoint of ``_matvec``.

Normalisation convention (recorded as ``normalisation``): every column of P has unit L2 norm, exactly
for dense and sparse, in expectation for the structured ones, so a step of size s in z moves theta
by about s whatever d and the projection are.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from idbench.errors import IdbenchError
from idbench.registry import Registry

NORMALISATION = "unit-column"


# each projection module registers its class; callers supply D, d, seed and dtype
PROJECTIONS: "Registry[Projection]" = Registry("projection", context=("D", "d", "seed", "dtype"))


class _ProjectFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z: torch.Tensor, projection: "Projection") -> torch.Tensor:
        ctx.projection = projection
        return projection._matvec(z)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return ctx.projection._rmatvec(grad), None


def batch_base(base: torch.Tensor, batch: torch.Size, width: int) -> torch.Tensor:
    """The ``base`` of ``base + P z`` for a batch of products: one contiguous row shared by
    every product (``base`` 1-d) or one row per product (``base`` of shape (*batch, width))."""
    return (base if base.dim() == 1 else base.expand(*batch, width).reshape(-1, width)).contiguous()


class Projection(nn.Module):
    """Base class: validates (D, d, seed) and provides the differentiable ``forward``."""

    name: ClassVar[str]

    def __init__(self, *, D: int, d: int, seed: int, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        for label, value in (("D", D), ("d", d), ("seed", seed)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise IdbenchError(f"{label} must be an integer, got {value!r}")
        if D < 1:
            raise IdbenchError(f"D (number of parameters) must be >= 1, got {D}")
        if not 1 <= d <= D:
            raise IdbenchError(
                f"d must be between 1 and D = {D} (a subspace cannot have more directions than "
                f"the parameter space), got d = {d}"
            )
        if seed < 0:
            raise IdbenchError(f"seed must be a non-negative integer, got {seed}")
        if dtype not in (torch.float32, torch.float64):
            raise IdbenchError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.D, self.d, self.seed, self.dtype = D, d, seed, dtype

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """P z for z of shape (..., d); returns (..., D). Differentiable in z."""
        if z.shape[-1] != self.d:
            raise ValueError(f"{self.name} projection expects (..., {self.d}), got {tuple(z.shape)}")
        return _ProjectFn.apply(z, self)

    def adjoint(self, g: torch.Tensor) -> torch.Tensor:
        """P^T g for g of shape (..., D); returns (..., d)."""
        if g.shape[-1] != self.D:
            raise ValueError(f"{self.name} adjoint expects (..., {self.D}), got {tuple(g.shape)}")
        return self._rmatvec(g)

    def _matvec(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _rmatvec(self, g: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        """The projection's own options (beyond D, d, seed) that determine the basis."""
        return {}

    def state_numel(self) -> int:
        """Number of stored elements (buffers): O(D) for structured projections."""
        return sum(b.numel() for b in self.buffers())

    def describe(self) -> dict[str, Any]:
        """Everything that determines the basis, for result rows."""
        return {
            "projection": self.name,
            "projection_options": self.options(),
            "normalisation": NORMALISATION,
            "D": self.D,
            "d": self.d,
            "seed": self.seed,
        }

    def extra_repr(self) -> str:
        return f"D={self.D}, d={self.d}, seed={self.seed}"
