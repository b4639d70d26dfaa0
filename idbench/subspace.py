"""Train any ``nn.Module`` inside a random affine subspace: theta = theta0 + P z.

:class:`SubspaceModel` freezes the module's own initialisation as theta0 (one flat vector), builds
one projection per compartment, and holds the only trainable tensor, z (zeros at the start). The
forward pass computes theta once and runs the module with views of that flat vector swapped in for
its parameters (what ``torch.func.functional_call`` does), so nothing is copied back into the
module and autograd flows straight from the loss to z through the projection's adjoint. Buffers
(BatchNorm running statistics) are the module's own and keep updating as usual.

Compartments split theta into K contiguous parts (``compartments=K``, near-equal sizes, each with
its own basis of ``d`` directions: K * d in all) or one part per layer (``compartments="layer"``: the
parameters a module owns, a layer's weight and bias together), where ``d`` is the total number of
directions, split across the layers by :func:`split_directions` (equal shares, a layer smaller
than its share training all of its own directions); every compartment has its own basis.

SAID (``said=True``, Aghajanyan et al. 2020) adds one trainable scalar per layer (as layers are
for compartments), 1 at the start, multiplying that layer's part of P z: theta = theta0 +
lambda * P z. The scalars count in ``d`` as in the paper, so z has ``d`` less the number of layers
directions (none at all when ``d`` equals it).

Example::

    net = idbench.models.create("fc", input_shape=(1, 28, 28), num_classes=10)
    sub = SubspaceModel(net, d=1000, projection="fastfood", seed=0)
    opt = torch.optim.SGD([sub.z], lr=0.1)
    loss = F.cross_entropy(sub(x), y); loss.backward(); opt.step()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

import idbench.projections as projections
from idbench.errors import IdbenchError
from idbench.registry import Spec
from idbench.runinfo import SubspaceInfo
from idbench.seeding import derive_seed

Compartments = int | str | None


@dataclass(frozen=True)
class FlatLayout:
    """Where each parameter tensor of a module sits in one flat vector of all D parameters."""

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]
    offsets: tuple[int, ...]
    D: int

    @classmethod
    def of(cls, module: nn.Module) -> "FlatLayout":
        names, shapes, offsets, total = [], [], [], 0
        for name, p in module.named_parameters():
            names.append(name)
            shapes.append(p.shape)
            offsets.append(total)
            total += p.numel()
        if total == 0:
            raise IdbenchError("the model has no parameters to train")
        return cls(tuple(names), tuple(shapes), tuple(offsets), total)

    def flatten(self, module: nn.Module) -> torch.Tensor:
        """The module's parameters concatenated into one detached vector."""
        return torch.cat([p.detach().reshape(-1) for p in module.parameters()])

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views of ``theta`` shaped like the module's parameters, keyed by name."""
        # one split (its backward is one concatenation), not a slice per tensor
        parts = theta.split([shape.numel() for shape in self.shapes])
        return {name: part.view(shape) for name, part, shape in zip(self.names, parts, self.shapes)}

    def compartments(
        self, compartments: Compartments, d: int
    ) -> tuple[list[tuple[int, int]], tuple[int, ...]]:
        """``(bounds, directions)``: the [start, end) bounds of each compartment in the flat
        vector and the directions each one trains, checked: the one place that lays out
        compartments.

        One compartment, or K equal ones: ``d`` directions each (the total is K * d). Per layer:
        ``d`` is the total, split across the layers by :func:`split_directions`.
        """
        bounds = self._compartment_bounds(compartments)
        if compartments == "layer":
            return bounds, split_directions(d, [end - start for start, end in bounds])
        for k, (start, end) in enumerate(bounds):
            if d > end - start:
                raise IdbenchError(
                    f"d = {d} is larger than compartment {k} ({end - start} parameters): lower d "
                    "or use fewer compartments"
                )
        return bounds, (d,) * len(bounds)

    def _compartment_bounds(self, compartments: Compartments) -> list[tuple[int, int]]:
        if compartments in (None, 1):
            return [(0, self.D)]
        if compartments == "layer":
            return self._layer_bounds()
        if isinstance(compartments, bool) or not isinstance(compartments, int) or compartments < 1:
            raise IdbenchError(
                f"compartments must be a positive integer or 'layer', got {compartments!r}"
            )
        if compartments > self.D:
            raise IdbenchError(
                f"compartments = {compartments} is more than the {self.D} parameters of the "
                "model: use at most D compartments"
            )
        base, extra = divmod(self.D, compartments)
        sizes = [base + (1 if k < extra else 0) for k in range(compartments)]
        starts = [sum(sizes[:k]) for k in range(compartments)]
        return [(s, s + n) for s, n in zip(starts, sizes)]

    def _layer_bounds(self) -> list[tuple[int, int]]:
        """One compartment per layer: the parameters a module owns directly (a layer's weight and
        bias together), which ``named_parameters`` lists one after the other."""
        bounds: list[tuple[int, int]] = []
        owner = None
        for name, offset, shape in zip(self.names, self.offsets, self.shapes):
            prefix = name.rpartition(".")[0]
            end = offset + shape.numel()
            if bounds and prefix == owner:
                bounds[-1] = (bounds[-1][0], end)
            else:
                bounds.append((offset, end))
            owner = prefix
        return bounds


def split_directions(d: int, sizes: list[int]) -> tuple[int, ...]:
    """How ``d`` directions in total split across compartments of ``sizes`` parameters.

    Equal shares (the random-bases paper's layer-wise compartments: every layer its own basis of
    equal dimension), except that a compartment smaller than its share trains all of its own
    directions (a full basis of its parameters) and the directions it leaves are shared equally by
    the others, again and again (water-filling from the smallest compartment up). What integer
    division leaves goes one each to the largest compartments. Every compartment gets at least one
    direction and at most its size, and the shares sum to ``d``.
    """
    if not len(sizes) <= d <= sum(sizes):
        raise IdbenchError(
            f"d = {d} directions cannot be split across {len(sizes)} layer compartments of "
            f"{sum(sizes)} parameters: every layer needs at least one direction and at most its "
            f"own size; use {len(sizes)} <= d <= {sum(sizes)} (e.g. --d-min {len(sizes)})"
        )
    order = sorted(range(len(sizes)), key=lambda k: (sizes[k], k))  # smallest first
    shares = [0] * len(sizes)
    left = d
    for i, k in enumerate(order):
        rest = len(order) - i
        if sizes[k] * rest <= left:  # no more than an equal share of what is left: all of it
            shares[k] = sizes[k]
            left -= sizes[k]
            continue
        base, extra = divmod(left, rest)  # every compartment from here on is larger than base
        for j, m in enumerate(reversed(order[i:])):  # largest first get the extra directions
            shares[m] = base + int(j < extra)
        break
    return tuple(shares)


class _Shifted(torch.autograd.Function):
    """base + P z, differentiable in z (the backward pass is the adjoint, as for P alone).

    A projection with a ``_matvec_add(base, z)`` method fuses the addition into its last step (one
    pass over D values less per training step); any other gets ``base + _matvec(z)``.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, base: torch.Tensor, projection: nn.Module) -> torch.Tensor:
        ctx.projection = projection
        fused = getattr(projection, "_matvec_add", None)
        return fused(base, z) if fused is not None else base + projection._matvec(z)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return ctx.projection._rmatvec(grad), None, None


class SubspaceModel(nn.Module):
    """A module whose parameters are theta0 + P z, with z (the directions of every compartment)
    the only trainable tensor (and SAID's per-layer scalars, with ``said``)."""

    def __init__(
        self,
        module: nn.Module,
        *,
        d: int,
        projection: str | Spec = "dense",
        seed: int = 0,
        compartments: Compartments = None,
        said: bool = False,
    ) -> None:
        super().__init__()
        self.module = module.requires_grad_(False)
        self.layout = FlatLayout.of(module)
        self.register_buffer("theta0", self.layout.flatten(module).clone())
        projection = Spec.parse(projection)
        self._init_said(said, d)
        d_z = d - len(self.said_sizes)  # SAID's scalars count in d
        self.bounds, self.directions = (
            self.layout.compartments(compartments, d_z) if d_z else ([], ()))
        self.compartments = compartments if compartments is not None else 1
        device = self.theta0.device
        self.projections = nn.ModuleList(
            projections.create(
                projection, D=end - start, d=d_k, seed=derive_seed(seed, "compartment", k),
                device=device, dtype=self.theta0.dtype,
            )
            for k, ((start, end), d_k) in enumerate(zip(self.bounds, self.directions))
        )
        self.d, self.seed, self.projection = d, seed, projection
        # Where each parameter lives (owning submodule, attribute name, index in the layout), tied
        # weights included. forward() swaps views of theta into these slots directly: the same
        # thing torch.func.functional_call does, without its ~0.1 ms of Python bookkeeping per call.
        index = {id(p): i for i, p in enumerate(module.parameters())}
        self._slots = []
        for name, p in module.named_parameters(remove_duplicate=False):
            prefix, _, leaf = name.rpartition(".")
            self._slots.append((module.get_submodule(prefix), leaf, index[id(p)]))
        self.z = nn.Parameter(
            torch.zeros(sum(self.directions), device=device, dtype=self.theta0.dtype))
        # Path tracking (idbench.paths): forward() keeps its theta when z is at this version, so
        # theta after a step costs no extra projection product.
        self.keep_theta_at: int | None = None
        self.kept_theta: torch.Tensor | None = None

    def _init_said(self, said: bool, d: int) -> None:
        """SAID (Aghajanyan et al. 2020): one trainable scalar per layer (the parameters a module
        owns, as for layer compartments), 1 at the start, multiplying that layer's part of the
        offset P z; off: no scalars."""
        sizes = [end - start for start, end in self.layout._layer_bounds()] if said else []
        if len(sizes) > d:
            raise IdbenchError(f"said: d = {d} is fewer than the {len(sizes)} per-layer scalars "
                               f"it counts in d: use d >= {len(sizes)}")
        self.said_sizes = tuple(sizes)
        self.register_buffer("_said_repeats", torch.tensor(sizes, dtype=torch.long,
                                                           device=self.theta0.device),
                             persistent=False)
        self.register_parameter("scales", nn.Parameter(torch.ones(
            len(sizes), device=self.theta0.device, dtype=self.theta0.dtype)) if said else None)

    @property
    def d_total(self) -> int:
        return self.z.numel() + len(self.said_sizes)

    def _z_parts(self) -> list[torch.Tensor]:
        # one compartment: z itself (a split would add an autograd node for nothing)
        return [self.z] if len(self.bounds) == 1 else list(self.z.split(self.directions))

    def offset(self) -> torch.Tensor:
        """P z, the displacement from theta0 (length D), before SAID's scalars."""
        if not self.projections:  # SAID with d = its scalars: no direction of its own
            return torch.zeros_like(self.theta0)
        parts = [p(zk) for p, zk in zip(self.projections, self._z_parts())]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def theta(self) -> torch.Tensor:
        """The current flat parameter vector theta0 + P z (SAID: each layer's part of P z times
        its scalar)."""
        if self.scales is not None:
            return self.theta0 + self.scales.repeat_interleave(self._said_repeats) * self.offset()
        parts = [
            _Shifted.apply(zk, self.theta0[start:end], p)
            for p, zk, (start, end) in zip(self.projections, self._z_parts(), self.bounds)
        ]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        theta = self.theta()
        if self.keep_theta_at == self.z._version:
            self.kept_theta = theta.detach()
        views = list(self.layout.unflatten(theta).values())
        originals = []
        try:
            for owner, leaf, i in self._slots:
                originals.append(owner._parameters[leaf])
                owner._parameters[leaf] = views[i]
            return self.module(*args, **kwargs)
        finally:
            for (owner, leaf, _), original in zip(self._slots, originals):
                owner._parameters[leaf] = original

    def info(self) -> SubspaceInfo:
        """The choices that determine this subspace, for result rows."""
        first = self.projections[0].describe() if self.projections else {
            "projection_options": {}, "normalisation": projections.NORMALISATION}
        return SubspaceInfo(
            projection=self.projection.name,
            projection_options={**first["projection_options"], **self.projection.options},
            normalisation=first["normalisation"], compartments=str(self.compartments),
            directions=self.directions, D=self.layout.D, said_scales=len(self.said_sizes),
        )
