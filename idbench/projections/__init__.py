"""Random projections P (D x d) from subspace coordinates to parameters, created by name.

    import idbench.projections
    P = idbench.projections.create("fastfood", D=199_210, d=1000, seed=0, device="cpu")
    theta = theta0 + P(z)            # differentiable in z; P.adjoint(g) maps gradients back
    idbench.projections.list()       # ['dense', 'fastfood', 'fastjl', 'kron', 'kron_sparse', 'sparse']

All follow the unit-column normalisation of the design notes and are deterministic in their seed;
options go in brackets (``sparse[density=0.01]``, ``fastjl[nnz_per_row=8]``, ``dense[regenerate=true]``).
"""

from __future__ import annotations

import torch

# each module registers its projections with PROJECTIONS (a decorator on each class)
from idbench.projections import dense, fastfood, fastjl, kron, sparse  # noqa: F401
from idbench.projections.base import NORMALISATION, PROJECTIONS, Projection


def create(
    spec: str, *, D: int, d: int, seed: int, device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Projection:
    """Build the projection named by ``spec`` (random state drawn on the CPU, then moved)."""
    return PROJECTIONS.create(spec, D=D, d=d, seed=seed, dtype=dtype).to(device)


def list(pattern: str = "*") -> list[str]:  # noqa: A001 - mirrors timm.list_models
    """Registered projection names matching a wildcard."""
    return PROJECTIONS.list(pattern)


__all__ = ["NORMALISATION", "PROJECTIONS", "Projection", "create", "list"]
