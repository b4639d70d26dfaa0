"""Dense random projection: P has i.i.d. entries, then each column scaled to exactly unit norm.

``distribution`` picks the entries before normalisation: ``gaussian`` N(0, 1) (the default, Li et
al. 2018), ``uniform`` U[-1, 1] or ``bernoulli`` (zero-mean: +-1 with probability 1/2 each), the
three bases Gressmann et al. 2020 compare for random bases descent. Whatever the distribution, every
column is normalised to unit norm, so the entries have mean 0 and mean square 1/D.

The entries come from a counter-based generator (:mod:`idbench.projections.random_matrix`): entry
(i, j) depends only on the seed, i and j, so any row can be drawn alone. The cost is reading
D x d numbers per product, so the stored matrix is bound by memory bandwidth and holds D * d * 4
bytes (float32): 0.8 GB for D = 199,210, d = 1000. On the CPU (float32) the compiled kernels
stream it once per product, row by row, in a fixed order (the same bits at any thread count),
and add theta0 in the same pass; elsewhere torch multiplies.

``regenerate=True`` stores nothing and draws the entries again for each product: the same P up to
floating-point rounding, in O(d) memory, with time spent drawing numbers. On the CPU (float32)
the compiled kernel draws each row and multiplies it in one pass, over torch's threads, and the
first adjoint computes the column norms in the same pass (a product before any adjoint takes one
pass of its own for them). Elsewhere (CUDA, float64, no compiler) the rows are drawn in chunks on
the CPU (by the kernel, or by its torch twin where no compiler built it) and multiplied by torch
on the projection's device. On either path an adjoint's rows are kept for the one product that
follows it when they fit in ``KEEP_BYTES``, so a random bases descent step (P^T g, then P c)
draws its basis once, with the very same numbers as when drawn twice: reading them back costs
a fraction of drawing them. The kernel keeps them in one buffer per thread, reused from step to
step (a fresh one would cost its page faults every step); a product uses them only if no other
projection's adjoint has written that buffer since.
"""

from __future__ import annotations

import threading
from typing import Any, Iterator

import torch

from idbench import kernels
from idbench.errors import IdbenchError
from idbench.projections.base import PROJECTIONS, Projection, batch_base
from idbench.projections.random_matrix import DISTRIBUTIONS, draw_rows, matrix_key

_CHUNK_ELEMENTS = 1 << 22  # 16 MB of float32 per generated chunk
KEEP_BYTES = 1 << 28  # an adjoint's regenerated chunks up to 256 MB serve the next product too
_BLOCK = 32  # the kernel draws columns in blocks of 32: its kept rows are d rounded up to this


class _KeptRows(threading.local):
    """The compiled path's buffer of kept rows (one per thread) and the token of its last writer."""

    buffer: torch.Tensor | None = None
    token: object | None = None


_KEPT_ROWS = _KeptRows()


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
        self.key = matrix_key(seed, "dense", distribution, d)
        self.chunk_rows = max(1, _CHUNK_ELEMENTS // d)
        self.register_buffer("inv_norms", torch.zeros(d, dtype=dtype))
        self._norms_ready = False
        self._kept: list[tuple[int, torch.Tensor]] | None = None  # an adjoint's chunks, see KEEP_BYTES
        self._kept_token: object | None = None  # the compiled path's kept rows, see _KeptRows
        self._kept_shape = (D, -(-d // _BLOCK) * _BLOCK)
        self._squares: torch.Tensor | None = None  # scratch of _sq_norms
        if not self.regenerate:
            matrix = torch.empty(D, d, dtype=dtype)
            sq_norms = torch.zeros(d, dtype=torch.float64)
            for r0, chunk in self._raw_chunks():
                matrix[r0 : r0 + chunk.shape[0]] = chunk
                sq_norms += self._sq_norms(chunk)
            self._set_norms(sq_norms)
            self.register_buffer("matrix", matrix.mul_(self.inv_norms))

    def _draw(self, out: torch.Tensor, first_row: int) -> torch.Tensor:
        """Fill ``out`` with the unnormalised entries of rows ``first_row ..`` (float32, CPU)."""
        return draw_rows(self.key, first_row, out.shape[0], self.d, self.distribution, out=out)

    def _raw_chunks(self, keep: bool = False) -> Iterator[tuple[int, torch.Tensor]]:
        """(first row, unnormalised chunk) pairs regenerated from the seed on the CPU. Each chunk
        reuses one scratch buffer, so it is only valid until the next one is drawn; with ``keep``
        every chunk gets its own buffer and the list is kept for the next product."""
        size = min(self.chunk_rows, self.D)
        scratch = None if keep else torch.empty(size, self.d, dtype=torch.float32)
        kept = [] if keep else None
        for r0 in range(0, self.D, self.chunk_rows):
            rows = min(self.chunk_rows, self.D - r0)
            buffer = torch.empty(rows, self.d, dtype=torch.float32) if keep else scratch[:rows]
            chunk = self._draw(buffer, r0)
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

    def _compiled(self, x: torch.Tensor):
        """The compiled kernels where they serve ``x`` (float32 on the CPU), else None."""
        if x.dtype != torch.float32 or self.dtype != torch.float32:
            return None
        return kernels.for_tensor(x)

    def _stored_product(self, z: torch.Tensor, base: torch.Tensor | None) -> torch.Tensor:
        """[base +] P z with the stored matrix: the kernel's one pass, else torch's product."""
        compiled = self._compiled(z)
        if compiled is None:
            out = z @ self.matrix.T
            return out if base is None else base + out
        batch = z.shape[:-1]
        flat = z.reshape(-1, self.d).contiguous()
        out = flat.new_empty(flat.shape[0], self.D)
        compiled.matrix_product(self.matrix, flat,
                                None if base is None else batch_base(base, batch, self.D), out)
        return out.view(*batch, self.D)

    def _keep_rows(self) -> torch.Tensor:
        """This thread's buffer for the rows the kernel's adjoint draws, marked as this
        projection's (empty where they exceed ``KEEP_BYTES``: then nothing is kept)."""
        rows, width = self._kept_shape
        self._kept_token = None
        if rows * width * 4 > KEEP_BYTES:
            return torch.empty(0)
        if _KEPT_ROWS.buffer is None or _KEPT_ROWS.buffer.numel() < rows * width:
            _KEPT_ROWS.buffer = None  # freed before its successor is allocated
            _KEPT_ROWS.buffer = torch.empty(rows * width, dtype=torch.float32)
        self._kept_token = _KEPT_ROWS.token = object()
        return _KEPT_ROWS.buffer[: rows * width].view(rows, width)

    def _take_kept_rows(self) -> torch.Tensor | None:
        """The rows this projection's last adjoint kept, once, if no other adjoint overwrote them."""
        token, self._kept_token = self._kept_token, None
        if token is None or token is not _KEPT_ROWS.token:
            return None
        rows, width = self._kept_shape
        return _KEPT_ROWS.buffer[: rows * width].view(rows, width)

    def _fused_adjoint(self, compiled, g: torch.Tensor) -> torch.Tensor:
        """P^T g (g: (m, D), m >= 0) by the kernel, setting the column norms on its first call and
        keeping the drawn rows for the next product."""
        out = g.new_empty(g.shape[0], self.d)
        squares = torch.empty(self.d, dtype=torch.float64)
        compiled.random_adjoint(*self.key, DISTRIBUTIONS.index(self.distribution), g, out, squares,
                                self._keep_rows())
        if not self._norms_ready:
            self._set_norms(squares)
        return out * self.inv_norms

    def _matvec_add(self, base: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        # base + P z (used by SubspaceModel for theta0 + P z): in the stored product's one pass
        return self._stored_product(z, base) if not self.regenerate else base + self._matvec(z)

    def _matvec(self, z: torch.Tensor) -> torch.Tensor:
        if not self.regenerate:
            return self._stored_product(z, None)
        compiled = self._compiled(z)
        if compiled is not None:
            if not self._norms_ready:  # a product before any adjoint: one pass for the norms
                self._fused_adjoint(compiled, z.new_empty(0, self.D))
            scaled = (z * self.inv_norms).reshape(-1, self.d).contiguous()
            out = z.new_empty(scaled.shape[0], self.D)
            kept = self._take_kept_rows()
            if kept is not None:
                compiled.kept_product(kept, scaled, out)
            else:
                compiled.random_product(*self.key, DISTRIBUTIONS.index(self.distribution), scaled, out)
            return out.view(*z.shape[:-1], self.D)
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
        compiled = self._compiled(g)
        if not self.regenerate:
            if compiled is None:
                return g @ self.matrix
            flat = g.reshape(-1, self.D).contiguous()
            out = g.new_empty(flat.shape[0], self.d)
            compiled.matrix_adjoint(self.matrix, flat, out)
            return out.view(*g.shape[:-1], self.d)
        if compiled is not None:
            out = self._fused_adjoint(compiled, g.reshape(-1, self.D).contiguous())
            return out.view(*g.shape[:-1], self.d)
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
