"""What a run reports about how it trained: :class:`RunInfo` (its subspace, method and optimiser).

One typed record shared by the builders of a run (:meth:`idbench.subspace.SubspaceModel.info`, the
methods of :mod:`idbench.methods`), the trainer (``RunResult.info``) and the row builder
(:func:`idbench.rows.run_row`), so each column of a run row has exactly one source: what was built,
not what was asked for.

Example::

    result = idbench.train.run(spec, data)
    result.info.subspace.d_total, result.info.subspace.directions, result.info.optimiser.name
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SubspaceInfo:
    """The subspace a run trained in, as built: projection, normalisation, compartments and the
    directions of each compartment (the total number of directions is their sum)."""

    projection: str  # projection name, e.g. "fastfood"
    projection_options: dict[str, Any]  # every option that determines the basis
    normalisation: str  # basis normalisation convention, "unit-column"
    compartments: str  # "1", "K" or "layer", as asked
    directions: tuple[int, ...]  # directions of each compartment
    D: int  # parameters of the network
    said_scales: int = 0  # SAID's trainable per-layer scalars, counted in d (0: SAID off)

    @property
    def n_compartments(self) -> int:
        return len(self.directions)

    @property
    def d_total(self) -> int:
        return sum(self.directions) + self.said_scales


@dataclass(frozen=True)
class Optimiser:
    """The optimiser that really updated the run (rbd and nes take plain SGD steps whatever the
    run spec names)."""

    name: str
    momentum: float
    weight_decay: float


@dataclass(frozen=True)
class RunInfo:
    """What one run reports beyond its scores: D, its subspace (None for a full-space run), the
    optimiser really used, the method's options and the rbd/nes gradient-cosine diagnostic."""

    D: int
    subspace: SubspaceInfo | None
    optimiser: Optimiser
    method_options: dict[str, Any] = field(default_factory=dict)
    grad_cosine: float | None = None
