"""Dense random projection: P has i.i.d. entries, then each column scaled to exactly unit norm.

``distribution`` picks the entries before normalisation: ``gaussian`` N(0, 1) (the default, Li et
al. 2018), ``uniform`` U[-1, 1] or ``bernoulli`` (zero-mean: +-1 with probability 1/2 each), the
three bases Gressmann et al. 2020 compare for random bases descent. Whatever the distribution, every
column is normalised to unit norm, so the entries have mean 0 and mean square 1/D.

The cost is reading D x d numbers per product, so the matrix is bound by memory bandwidth and holds
D * d * 4 bytes (float32): 0.8 GB for D = 199,210, d = 1000. It is generated in row chunks, each
from its own derived seed, so that

* building needs one pass of random number generation and one chunk of scratch memory, and
* ``regenerate=True`` drops the matrix and rebuilds the chunks for each product (memory
  O(chunk + d), time dominated by the random number generation): the same P up to floating-point
  rounding. The column norms are then computed by the first product, in the same pass when that
  product is an adjoint. An adjoint's chunks are kept for the one product that follows it when
  they fit in ``KEEP_BYTES``: a basis used once for P^T g and then once for P c (a random bases
  descent step) is generated once, with the very same numbers as when generated twice.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch

from idbench.errors import IdbenchError
from idbench.projections.base import PROJECTIONS, Projection
from idbench.seeding import cpu_generator

_CHUNK_ELEMENTS = 1 << 22  # 16 MB of float32 per generated chunk
KEEP_BYTES = 1 << 28  # an adjoint's regenerated chunks up to 256 MB serve the next product too
DISTRIBUTIONS = ("gaussian", "uniform", "bernoulli")


@PROJECTIONS.register("dense")
class DenseProjection(Projection):
    name = "dense"

    def __init__(
        self, *, D: int, d: int, seed: int, dtype: torch.dtype = torch.float32,
        regenerate: bool = False, distribution: str = "gaussian",
    ) -> None:
        super().__init__(D=D, d=d, seed=seed, dtype=dtype)
        if distribution not in DISTRIBUTIONS:
            raise IdbenchError(
                f"unknown dense distribution {distribution!r}; "
                f"choose from {', '.join(DISTRIBUTIONS)}"
            )
        self.regenerate, self.distribution = bool(regenerate), distribution
        self.chunk_rows = max(1, _CHUNK_ELEMENTS // d)
        self.register_buffer("inv_norms", torch.zeros(d, dtype=dtype))
        self._norms_ready = False
        self._kept: list[tuple[int, torch.Tensor]] | None = None  # an adjoint's chunks, see KEEP_BYTES
        self._squares: torch.Tensor | None = None  # scratch of _sq_norms
        if not self.regenerate:
            matrix = torch.empty(D, d, dtype=dtype)
            sq_norms = torch.zeros(d, dtype=torch.float64)
            for r0, chunk in self._raw_chunks():
                matrix[r0 : r0 + chunk.shape[0]] = chunk
                sq_norms += self._sq_norms(chunk)
            self._set_norms(sq_norms)
            self.register_buffer("matrix", matrix.mul_(self.inv_norms))

    def _draw(self, out: torch.Tensor, index: int) -> torch.Tensor:
        """Fill ``out`` with chunk ``index`` of the unnormalised entries (float32, on the CPU)."""
        if self.distribution == "gaussian":  # the seed key of the original Gaussian-only version
            return out.normal_(generator=cpu_generator(self.seed, "dense", self.d, index))
        gen = cpu_generator(self.seed, "dense", self.distribution, self.d, index)
        if self.distribution == "uniform":
            return out.uniform_(-1.0, 1.0, generator=gen)
        return out.random_(0, 2, generator=gen).mul_(2).sub_(1)

    def _raw_chunks(self, keep: bool = False) -> Iterator[tuple[int, torch.Tensor]]:
        """(first row, unnormalised chunk) pairs regenerated from the seed on the CPU. Each chunk
        reuses one scratch buffer, so it is only valid until the next one is drawn; with ``keep``
        every chunk gets its own buffer and the list is kept for the next product."""
        scratch = None if keep else torch.empty(min(self.chunk_rows, self.D), self.d)
        kept = [] if keep else None
        for index, r0 in enumerate(range(0, self.D, self.chunk_rows)):
            rows = min(self.chunk_rows, self.D - r0)
            chunk = self._draw(torch.empty(rows, self.d) if keep else scratch[:rows], index)
            if kept is not None:
                kept.append((r0, chunk))
            yield r0, chunk
        self._kept = kept

    def _chunks_for_product(self) -> Iterator[tuple[int, torch.Tensor]]:
        """The chunks a product reads: those its preceding adjoint kept (once), else regenerated."""
        kept, self._kept = self._kept, None
        return iter(kept) if kept is not None else self._raw_chunks()

    def _sq_norms(self, chunk: torch.Tensor) -> torch.Tensor:
        """Squared column norms of one raw chunk (computed on the CPU: the same on every device).
        The squares go to one reused buffer: a fresh chunk-sized one costs its page faults."""
        entries = chunk.to(self.dtype)
        if self._squares is None:
            self._squares = torch.empty(min(self.chunk_rows, self.D), self.d, dtype=self.dtype)
        squares = self._squares[: entries.shape[0]]
        return torch.mul(entries, entries, out=squares).sum(0).double()

    def _set_norms(self, sq_norms: torch.Tensor) -> None:
        self.inv_norms.copy_(sq_norms.rsqrt())
        self._norms_ready = True

    def _matvec(self, z: torch.Tensor) -> torch.Tensor:
        if not self.regenerate:
            return z @ self.matrix.T
        if not self._norms_ready:  # a product before any adjoint: one extra pass for the norms
            sq_norms = torch.zeros(self.d, dtype=torch.float64)
            for _, chunk in self._raw_chunks():
                sq_norms += self._sq_norms(chunk)
            self._set_norms(sq_norms)
        scaled = z * self.inv_norms
        out = z.new_empty(*z.shape[:-1], self.D)
        for r0, chunk in self._chunks_for_product():
            rows = chunk.shape[0]
            out[..., r0 : r0 + rows] = scaled @ chunk.to(device=z.device, dtype=self.dtype).T
        return out

    def _rmatvec(self, g: torch.Tensor) -> torch.Tensor:
        if not self.regenerate:
            return g @ self.matrix
        sq_norms = None if self._norms_ready else torch.zeros(self.d, dtype=torch.float64)
        out = g.new_zeros(*g.shape[:-1], self.d)
        for r0, chunk in self._raw_chunks(keep=self.D * self.d * 4 <= KEEP_BYTES):
            rows = chunk.shape[0]
            out += g[..., r0 : r0 + rows] @ chunk.to(device=g.device, dtype=self.dtype)
            if sq_norms is not None:
                sq_norms += self._sq_norms(chunk)
        if sq_norms is not None:
            self._set_norms(sq_norms)
        return out * self.inv_norms

    def options(self) -> dict[str, Any]:
        return {"regenerate": self.regenerate, "distribution": self.distribution}
