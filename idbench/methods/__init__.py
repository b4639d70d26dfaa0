"""Training methods (step rules), created by name: ``fpd`` (fixed projection descent; also the
full-space baseline's rule), ``rbd`` (random bases descent: a fresh basis every step, Gressmann et
al. 2020) and ``nes`` (evolution-strategies estimate on the same bases, the comparison baseline).
``rbd`` and ``nes`` take their options in brackets, e.g. ``rbd[distribution=uniform]`` or
``nes[sigma=0.01,grad_cosine=true]``, and update the plain network
(``uses_subspace_model = False``).

    method = idbench.methods.create("fpd", model=model, spec=run_spec)
    loss = method.step(lambda m: data.loss(m(xb), yb), lr)
"""

from __future__ import annotations

from typing import Any

from torch import nn

# each module registers its method with METHODS (a decorator on its class)
from idbench.methods import fpd, nes, rbd  # noqa: F401
from idbench.methods.base import METHODS, LossFn, Method
from idbench.registry import Spec


def method_class(spec: str | Spec) -> type[Method]:
    """The class registered under ``spec`` (raises with a suggestion when unknown)."""
    factory, _, _ = METHODS.resolve(spec)
    return factory


def create(spec: str | Spec, *, model: nn.Module, run_spec: Any) -> Method:
    """Build the step rule ``spec`` for ``model`` as ``run_spec`` (a RunSpec) says."""
    return METHODS.create(spec, model=model, run_spec=run_spec)


def list(pattern: str = "*") -> list[str]:  # noqa: A001 - mirrors timm.list_models
    """Registered method names matching a wildcard."""
    return METHODS.list(pattern)


__all__ = ["METHODS", "LossFn", "Method", "create", "list", "method_class"]
