"""The fast Walsh-Hadamard transform shared by the Fastfood and FastJL projections.

H_n (n = 2^k, entries +-1, unnormalised, Sylvester ordering) factors as a Kronecker product of small
Hadamard matrices, H_n = H_a (x) H_b (x) ..., so the transform of a batch of vectors is a handful of
small dense matmuls, one per factor, each along one axis of the vector reshaped to (a, b, ...).
That costs O(n log n) flops like the butterfly, but runs through BLAS instead of k Python-level
passes, and every matmul reads and writes contiguous memory, which is what makes it fast on the CPU.

H is symmetric and H H = n I, so the transform is its own adjoint: the backward pass of ``fwht`` is
``fwht`` of the incoming gradient, with no rescaling (autograd derives exactly that through the
matmuls).

Example::

    x = torch.randn(4, 1024)
    y = fwht(x)                    # == x @ hadamard_matrix(1024)
    torch.allclose(fwht(y), 1024 * x, atol=1e-3)
"""

from __future__ import annotations

import functools

import torch

_MAX_FACTOR_LOG2 = 6  # factors of at most 64 x 64: small enough to be cheap, big enough for BLAS


def is_power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


def next_power_of_two(n: int) -> int:
    """Smallest power of two >= n (n >= 1)."""
    return 1 << max(0, (n - 1).bit_length())


@functools.lru_cache(maxsize=64)
def _sylvester(log2n: int) -> torch.Tensor:
    h = torch.ones(1, 1)
    for _ in range(log2n):
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


@functools.lru_cache(maxsize=64)
def _factor(log2n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    # cached per dtype and device: moving a factor to a GPU on every transform would copy each time
    return _sylvester(log2n).to(dtype=dtype, device=device)


def hadamard_matrix(n: int, *, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """The dense n x n Sylvester Hadamard matrix (for tests and small factors only).

    Factors of at most 2^_MAX_FACTOR_LOG2 are cached and shared: treat the result as read-only.
    """
    if not is_power_of_two(n):
        raise ValueError(f"Hadamard size must be a power of two, got {n}")
    log2n = n.bit_length() - 1
    if log2n <= _MAX_FACTOR_LOG2:
        return _factor(log2n, dtype, torch.device(device if device is not None else "cpu"))
    return _sylvester(log2n).to(dtype=dtype, device=device)


def _factor_logs(log2n: int) -> list[int]:
    """Split log2 n into near-equal parts of at most _MAX_FACTOR_LOG2 each."""
    parts = max(1, -(-log2n // _MAX_FACTOR_LOG2))
    base, extra = divmod(log2n, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


@functools.lru_cache(maxsize=64)
def _plan(n: int) -> tuple[int, ...]:
    """The Kronecker factor sizes of H_n, in the order fwht applies them."""
    return tuple(1 << k for k in _factor_logs(n.bit_length() - 1))


def fwht(x: torch.Tensor) -> torch.Tensor:
    """Unnormalised Walsh-Hadamard transform along the last axis (length a power of two).

    Equivalent to ``x @ hadamard_matrix(n)``; differentiable; works for any leading batch shape.
    """
    n = x.shape[-1]
    if not is_power_of_two(n):
        raise ValueError(f"fwht needs a power-of-two length, got {n}")
    if n == 1:
        return x
    *middle, last = _plan(n)
    y = x.reshape(-1, n)
    outer, inner = y.shape[0], n
    for f in middle:
        # H_f on a middle axis: (outer, f, inner) -> H_f @ block, one batched matmul (bmm on the
        # expanded factor directly: the same kernel as matmul's broadcasting, less dispatch)
        inner //= f
        h = hadamard_matrix(f, dtype=x.dtype, device=x.device)
        y = torch.bmm(h.expand(outer, f, f), y.view(outer, f, inner))
        outer *= f
    y = torch.mm(y.reshape(-1, last), hadamard_matrix(last, dtype=x.dtype, device=x.device))
    return y.view(x.shape)
