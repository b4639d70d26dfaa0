"""The fast Walsh-Hadamard transform shared by the Fastfood and FastJL projections.

H_n (n = 2^k, entries +-1, unnormalised, Sylvester ordering) is applied as the radix-2 butterfly:
k stages, stage h (h = 1, 2, 4, ..., n / 2) replacing every pair (x_j, x_{j+h}) of a block of 2h
by (x_j + x_{j+h}, x_j - x_{j+h}). That is n log2 n additions, done in place. On CPU tensors the
compiled kernel of ``kernels`` runs it (every vector in cache, several vectors per thread);
elsewhere ``butterfly`` runs the same stages as torch operations, with bit-identical results.

H is symmetric and H H = n I, so the transform is its own adjoint: the backward pass of ``fwht`` is
``fwht`` of the incoming gradient, with no rescaling.

Example::

    x = torch.randn(4, 1024)
    y = fwht(x)                    # == x @ hadamard_matrix(1024)
    torch.allclose(fwht(y), 1024 * x, atol=1e-3)
"""

from __future__ import annotations

import torch

from idbench import kernels


def is_power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


def next_power_of_two(n: int) -> int:
    """Smallest power of two >= n (n >= 1)."""
    return 1 << max(0, (n - 1).bit_length())


def hadamard_matrix(n: int, *, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """The dense n x n Sylvester Hadamard matrix (a reference for tests; O(n^2) memory)."""
    if not is_power_of_two(n):
        raise ValueError(f"Hadamard size must be a power of two, got {n}")
    h = torch.ones(1, 1, dtype=dtype, device=device)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def butterfly(x: torch.Tensor) -> torch.Tensor:
    """The transform along the last axis as torch operations, stage by stage (the twin of the
    compiled kernel: the same additions in the same order). Overwrites ``x``, which must be
    contiguous: its memory is one of the two buffers the stages alternate between."""
    n = x.shape[-1]
    src, dst = x, torch.empty_like(x)
    h = 1
    while h < n:
        a, b = src.view(-1, 2, h).unbind(1)
        out = dst.view(-1, 2, h)
        torch.add(a, b, out=out[:, 0])
        torch.sub(a, b, out=out[:, 1])
        src, dst, h = dst, src, 2 * h
    return src


def tree_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over the second-to-last axis as a pairwise tree, level by level, the last row of an odd
    level carried up unchanged: an order that the compiled Fastfood adjoint follows exactly, so
    both paths add in the same order."""
    while x.shape[-2] > 1:
        pairs = x.shape[-2] // 2
        summed = x[..., 0 : 2 * pairs : 2, :] + x[..., 1 : 2 * pairs : 2, :]
        x = torch.cat((summed, x[..., 2 * pairs :, :]), -2) if x.shape[-2] % 2 else summed
    return x.squeeze(-2)


def _transform(x: torch.Tensor) -> torch.Tensor:
    """H x along the last axis, in a new tensor (compiled kernel on the CPU, else ``butterfly``)."""
    y = x.contiguous().clone()
    compiled = kernels.for_tensor(y)
    if compiled is None:
        return butterfly(y)
    compiled.fwht_(y)
    return y


class _Fwht(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return _transform(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return _transform(grad)  # H is symmetric: its adjoint is itself


def fwht(x: torch.Tensor) -> torch.Tensor:
    """Unnormalised Walsh-Hadamard transform along the last axis (length a power of two).

    Equivalent to ``x @ hadamard_matrix(n)``; differentiable; works for any leading batch shape.
    """
    n = x.shape[-1]
    if not is_power_of_two(n):
        raise ValueError(f"fwht needs a power-of-two length, got {n}")
    return _Fwht.apply(x)
