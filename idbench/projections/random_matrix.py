"""Counter-based random entries (the dense projection's matrices, Fastfood's diagonals and
permutations): any row is drawn alone, with no generator state.

Entry (i, j) of a D x d matrix depends only on a 64-bit key, i and j. Philox4x32-10 (Salmon et
al. 2011, the generator of cuRAND and JAX) maps the counter (8 * (j // 32) + j % 8, i mod 2^32,
i // 2^32, 0) and the key to four 32-bit words, and entry j takes word k = (j % 32) // 8:

* ``gaussian``: Box-Muller on the pairs (w0, w1) -> k = 0, 1 and (w2, w3) -> k = 2, 3, with
  u1 = ((w >> 8) + 1) 2^-24 in (0, 1], u2 = (w >> 8) 2^-24 in [0, 1), r = sqrt(-2 log u1) and the
  angle 2 pi u2 taken as a quarter turn plus t in [-pi/4, pi/4) (Cephes' float polynomials for
  log, sin t and cos t, accurate to about one unit in the last place);
* ``uniform``: (2 (w >> 9) + 1) 2^-23 - 1, symmetric in (-1, 1);
* ``bernoulli``: +1 or -1 by the top bit of w.

Because rows need no generator state, random bases descent draws a fresh basis every step without
storing a matrix beyond the step, the products run in parallel over rows, and the result does not
depend on chunking or thread count. On the CPU the compiled kernel
(``random_matrix.cpp``) draws and multiplies in one pass; ``draw_rows_torch`` is its twin in torch
operations, bit for bit the same entries, for machines without a compiler. Entries are always
drawn on the CPU (a CUDA run moves the drawn rows to its device).

:func:`draw_chi` draws chi-distributed entries from these streams by rejection.

Example::

    key = matrix_key(3, "dense", "gaussian", 250)    # from any seed parts
    rows = draw_rows(key, first=0, rows=4, d=250, distribution="gaussian")   # (4, 250)
"""

from __future__ import annotations

import math

import numpy as np
import torch

from idbench import kernels
from idbench.seeding import derive_seed

DISTRIBUTIONS = ("gaussian", "uniform", "bernoulli")
_MASK = 0xFFFFFFFF
_MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)
_WEYL = (0x9E3779B9, 0xBB67AE85)


def matrix_key(*parts: object) -> tuple[int, int]:
    """The generator's key (two 32-bit halves) derived from any seed parts."""
    seed = derive_seed(*parts)
    return seed & _MASK, seed >> 32


def draw_rows(key: tuple[int, int], first: int, rows: int, d: int, distribution: str,
              out: torch.Tensor | None = None) -> torch.Tensor:
    """Rows ``first .. first + rows - 1`` of the matrix (float32, CPU), into ``out`` if given."""
    out = torch.empty(rows, d, dtype=torch.float32) if out is None else out
    compiled = kernels.for_tensor(out)
    if compiled is None:
        return out.copy_(draw_rows_torch(key, first, rows, d, distribution))
    compiled.random_rows(key[0], key[1], first, DISTRIBUTIONS.index(distribution), out)
    return out


def _mulhilo(a: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(hi, lo) 32-bit halves of a * m for a < 2^32, in int64 without overflow."""
    low, high = m * (a & 0xFFFF), m * (a >> 16)  # each < 2^48
    mid = low + ((high & 0xFFFF) << 16)
    return (high >> 16) + (mid >> 32), mid & _MASK


def _philox(counter: torch.Tensor, row: torch.Tensor, key: tuple[int, int]) -> list[torch.Tensor]:
    """Philox4x32-10 words of the counters (counter, row mod 2^32, row // 2^32, 0), int64, for
    ``counter`` (1, c) and ``row`` (r, 1): (r, c) words each."""
    x0, x1 = counter.expand(row.shape[0], -1), (row & _MASK).expand(-1, counter.shape[1])
    x2, x3 = (row >> 32).expand(-1, counter.shape[1]), torch.zeros_like(x0)
    k0, k1 = key
    for _ in range(10):
        hi0, lo0 = _mulhilo(x0, _MULTIPLIERS[0])
        hi1, lo1 = _mulhilo(x2, _MULTIPLIERS[1])
        x0, x1, x2, x3 = hi1 ^ x1 ^ k0, lo1, hi0 ^ x3 ^ k1, lo0
        k0, k1 = (k0 + _WEYL[0]) & _MASK, (k1 + _WEYL[1]) & _MASK
    return [x0, x1, x2, x3]


def _f32(value: float) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float32)


def _log01(x: torch.Tensor) -> torch.Tensor:
    """log x for x in (0, 1], the kernel's float operations in its order (Cephes logf)."""
    m, e = torch.frexp(x)
    small = m < _f32(0.707106781186547524)
    e = e - small.to(e.dtype)
    m = torch.where(small, m + m, m)
    f = m - 1.0
    z = f * f
    fe = e.to(torch.float32)
    y = torch.full_like(f, 7.0376836292e-2)
    for c in (-1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
              -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1):
        y = y * f + _f32(c)
    y = y * f * z
    y = y + fe * _f32(-2.12194440e-4)
    y = y + z * _f32(-0.5)
    return (f + y) + fe * _f32(0.693359375)


def _box_muller(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    u1 = ((a >> 8).to(torch.float32) + 1.0) * _f32(2.0**-24)
    u2 = (b >> 8).to(torch.float32) * _f32(2.0**-24)
    # through float64: torch's float32 sqrt of a large CPU tensor is not correctly rounded
    r = torch.sqrt((_log01(u1) * -2.0).double()).float()
    x = u2 * 4.0
    quadrant = x.to(torch.int64)  # floor: x >= 0
    t = ((x - quadrant.to(torch.float32)) - 0.5) * _f32(1.57079632679489662)
    t2 = t * t
    s = t2 * _f32(-1.9515295891e-4)
    s = ((((s + _f32(8.3321608736e-3)) * t2) + _f32(-1.6666654611e-1)) * t2) * t + t
    c = t2 * _f32(2.443315711809948e-5)
    c = ((((c + _f32(-1.388731625493765e-3)) * t2) + _f32(4.166664568298827e-2)) * t2) * t2
    c = (c - t2 * 0.5) + 1.0
    root_half = _f32(0.707106781186547524)
    cos45, sin45 = (c - s) * root_half, (c + s) * root_half
    odd = (quadrant & 1).bool()
    p, q = torch.where(odd, sin45, cos45), torch.where(odd, cos45, sin45)
    p = torch.where(((quadrant ^ (quadrant >> 1)) & 1).bool(), -p, p)
    q = torch.where((quadrant >> 1).bool(), -q, q)
    return r * p, r * q


def draw_rows_torch(key: tuple[int, int], first: int, rows: int, d: int,
                    distribution: str) -> torch.Tensor:
    """The kernel's twin: the same entries from torch operations (CPU, float32)."""
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {distribution!r}")
    blocks = -(-d // 32)
    counter = torch.arange(8 * blocks, dtype=torch.int64).unsqueeze(0)  # block b, lane l: 8 b + l
    row = torch.arange(first, first + rows, dtype=torch.int64).unsqueeze(1)
    words = [w.view(rows, blocks, 8) for w in _philox(counter, row, key)]
    if distribution == "gaussian":
        entries = [*_box_muller(words[0], words[1]), *_box_muller(words[2], words[3])]
    elif distribution == "uniform":
        entries = [((w >> 9).to(torch.float32) * 2.0 + 1.0) * _f32(2.0**-23) - 1.0 for w in words]
    else:
        entries = [1.0 - 2.0 * (w >> 31).to(torch.float32) for w in words]
    out = torch.stack(entries, dim=2)  # (rows, blocks, 4 words, 8 lanes)
    return out.view(rows, blocks * 32)[:, :d].contiguous()


def draw_chi(key: tuple[int, int], rows: int, n: int, dof: int) -> np.ndarray:
    """(rows, n) chi-distributed entries with ``dof`` degrees of freedom (float64): the square
    root of 2 Gamma(dof / 2), Gamma drawn by Marsaglia and Tsang's rejection (2000: a candidate
    from a normal x, accepted by a uniform u through their cheap squeeze or else their log test;
    with their boost U^(1/a) for a shape a below 1).

    Attempt k of entry (i, j) uses entry (i, j) of its own Gaussian and uniform streams (keys
    derived from ``key`` and k), so every entry depends only on the key and its position. The
    squeeze accepts about 92% of candidates and the log test most of the rest: fewer than 5% of
    the entries need a second attempt (1% at dof = 8, 0.01% at dof = 512). The compiled kernel
    (``gamma_attempt``) runs the attempts entry by entry; its twin, :func:`_gamma_numpy`, runs them
    on whole arrays in numpy (single-threaded). Both do the same float64 operations in the same
    order, then numpy takes the correctly rounded square roots, so the result does not depend on
    the path or torch's thread count; the one function they do not share, log, may differ in its
    last place between glibc and numpy, so a log test within 1e-12 of its boundary (never seen in
    practice) sends the whole draw to numpy.
    """
    shape = dof / 2
    a = shape + 1 if shape < 1 else shape
    dd = a - 1 / 3
    c = 1 / math.sqrt(9 * dd)
    gamma = _gamma_compiled(key, rows, n, c, dd)
    if gamma is None:
        gamma = _gamma_numpy(key, rows, n, c, dd)
    if shape < 1:
        gamma *= _uniform01(matrix_key(*key, "chi-boost"), rows, n) ** (1 / shape)
    gamma *= 2
    return np.sqrt(gamma, out=gamma)


def _uniform01(stream: tuple[int, int], rows: int, n: int) -> np.ndarray:
    """The uniform stream's (rows, n) entries mapped into (0, 1), float64."""
    u = draw_rows(stream, 0, rows, n, "uniform").numpy().astype(np.float64)
    u += 1
    u *= 0.5
    return u


def _gamma_compiled(key: tuple[int, int], rows: int, n: int, c: float, dd: float
                    ) -> np.ndarray | None:
    """Gamma(a) entries by the kernel's attempts, or None where it has no kernels or a log test
    was a close call."""
    compiled = kernels.load()
    if compiled is None:
        return None
    gamma = torch.empty(rows, n, dtype=torch.float64)
    ok = torch.zeros(rows, n, dtype=torch.bool)
    k = 0
    while k == 0 or not bool(ok.all()):
        normal, uniform = matrix_key(*key, "chi-normal", k), matrix_key(*key, "chi-uniform", k)
        if not compiled.gamma_attempt(*normal, *uniform, c, dd, gamma, ok):
            return None
        k += 1
    return gamma.numpy()


def _gamma_numpy(key: tuple[int, int], rows: int, n: int, c: float, dd: float) -> np.ndarray:
    """Gamma(a) entries by the attempts on whole arrays (the kernel's twin)."""

    def candidates(k: int, where: tuple[np.ndarray, ...] | None) -> tuple[np.ndarray, np.ndarray]:
        """Attempt k at the entries ``where`` (all if None): Gamma candidates, accepted."""
        x = draw_rows(matrix_key(*key, "chi-normal", k), 0, rows, n, "gaussian").numpy()
        x = x.astype(np.float64)
        u = _uniform01(matrix_key(*key, "chi-uniform", k), rows, n)
        if where is not None:
            x, u = x[where], u[where]
        v = x * c  # in place from here on: few fresh arrays
        v += 1
        w = v * v
        v *= w  # (1 + c x)^3
        x *= x
        w = x * x  # x^4
        w *= -0.0331
        w += 1
        ok = (u < w) & (v > 0)  # the squeeze
        test = np.nonzero(~ok & (v > 0))
        xt, vt = x[test], v[test]  # x holds x^2 here
        ok[test] = np.log(u[test]) < 0.5 * xt + dd * (1 - vt + np.log(vt))
        v *= dd
        return v, ok

    gamma, ok = candidates(0, None)
    k = 1
    while not ok.all():
        where = np.nonzero(~ok)
        again, accepted = candidates(k, where)
        gamma[where] = np.where(accepted, again, gamma[where])
        ok[where] = accepted
        k += 1
    return gamma
