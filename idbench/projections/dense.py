"""Dense Gaussian projection: P has i.i.d. N(0, 1) entries, then each column scaled to unit norm.

This is the projection of Li et al. 2018. Its cost is reading D x d numbers per product, so it is
bound by memory bandwidth and holds D * d * 4 bytes (float32): 0.8 GB for D = 199,210, d = 1000.
The matrix is generated in row chunks, each from its own derived seed, so that

* building never needs more than one chunk of scratch memory beyond the matrix itself, and
* ``regenerate=True`` can drop the matrix entirely and rebuild the chunks on every product
  (memory O(chunk + d), time dominated by the random number generation): the same P, bit for bit.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch

from idbench.projections.base import Projection
from idbench.seeding import cpu_generator

_CHUNK_ELEMENTS = 1 << 22  # 16 MB of float32 per generated chunk


class DenseProjection(Projection):
    name = "dense"

    def __init__(
        self, *, D: int, d: int, seed: int, dtype: torch.dtype = torch.float32,
        regenerate: bool = False,
    ) -> None:
        super().__init__(D=D, d=d, seed=seed, dtype=dtype)
        self.regenerate = bool(regenerate)
        self.chunk_rows = max(1, _CHUNK_ELEMENTS // d)
        sq_norms = torch.zeros(d, dtype=torch.float64)
        for _, chunk in self._raw_chunks():
            sq_norms += chunk.double().square().sum(0)
        self.register_buffer("inv_norms", sq_norms.rsqrt().to(dtype))
        if not self.regenerate:
            matrix = torch.empty(D, d, dtype=dtype)
            for r0, chunk in self._raw_chunks():
                matrix[r0 : r0 + chunk.shape[0]] = chunk.to(dtype) * self.inv_norms
            self.register_buffer("matrix", matrix)

    def _raw_chunks(self) -> Iterator[tuple[int, torch.Tensor]]:
        """(first row, unnormalised float32 chunk) pairs, regenerated from the seed on the CPU."""
        for i, r0 in enumerate(range(0, self.D, self.chunk_rows)):
            rows = min(self.chunk_rows, self.D - r0)
            gen = cpu_generator(self.seed, "dense", self.d, i)
            yield r0, torch.randn(rows, self.d, generator=gen)

    def _chunks(self, device: torch.device) -> Iterator[tuple[int, torch.Tensor]]:
        if not self.regenerate:
            yield 0, self.matrix
            return
        for r0, chunk in self._raw_chunks():
            yield r0, chunk.to(device=device, dtype=self.dtype) * self.inv_norms

    def _matvec(self, z: torch.Tensor) -> torch.Tensor:
        if not self.regenerate:
            return z @ self.matrix.T
        out = z.new_empty(*z.shape[:-1], self.D)
        for r0, chunk in self._chunks(z.device):
            out[..., r0 : r0 + chunk.shape[0]] = z @ chunk.T
        return out

    def _rmatvec(self, g: torch.Tensor) -> torch.Tensor:
        if not self.regenerate:
            return g @ self.matrix
        out = g.new_zeros(*g.shape[:-1], self.d)
        for r0, chunk in self._chunks(g.device):
            out += g[..., r0 : r0 + chunk.shape[0]] @ chunk
        return out

    def options(self) -> dict[str, Any]:
        return {"regenerate": self.regenerate}
