"""Counter-based entries (the dense projection's, Fastfood's): the kernel and its torch twin draw
the same bits, every entry depends only on (key, row, column), the distributions are what they
claim (chi entries too), and the products that draw rows on the fly equal products with the drawn
matrix."""

import math

import pytest
import torch

import idbench.projections as projections
import idbench.projections.dense as dense
from idbench import kernels
from idbench.projections.random_matrix import (
    DISTRIBUTIONS, draw_chi, draw_rows, draw_rows_torch, matrix_key,
)

KEY = matrix_key(5, "dense", "gaussian", 100)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
@pytest.mark.parametrize("first,rows,d", [(0, 3, 1), (7, 40, 7), (100, 9, 32), (3, 5, 250),
                                          (0, 2, 333), (2**33 + 5, 3, 64)])
def test_the_kernel_and_the_twin_draw_the_same_bits(distribution, first, rows, d, compiled):
    assert torch.equal(draw_rows(KEY, first, rows, d, distribution),
                       draw_rows_torch(KEY, first, rows, d, distribution))


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_an_entry_depends_only_on_the_key_its_row_and_its_column(distribution):
    whole = draw_rows(KEY, 0, 50, 70, distribution)
    # any split of the rows, any narrower width: the same entries
    assert torch.equal(torch.cat([draw_rows(KEY, 0, 13, 70, distribution),
                                  draw_rows(KEY, 13, 37, 70, distribution)]), whole)
    assert torch.equal(draw_rows(KEY, 20, 5, 33, distribution), whole[20:25, :33])
    # another key: other entries (all but a few coincidences for the two-valued Bernoulli)
    other = draw_rows(matrix_key(6, "dense", "gaussian", 100), 0, 50, 70, distribution)
    assert float((other == whole).double().mean()) < (0.6 if distribution == "bernoulli" else 0.01)


def normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1 + torch.erf(x / math.sqrt(2)))


def test_gaussian_entries_are_standard_normal():
    x = draw_rows(KEY, 0, 4000, 250, "gaussian").double().flatten()  # a million entries
    n = x.numel()
    assert abs(float(x.mean())) < 4 / math.sqrt(n)
    assert float(x.var()) == pytest.approx(1.0, abs=4 * math.sqrt(2 / n))
    assert float((x**4).mean()) == pytest.approx(3.0, abs=4 * math.sqrt(96 / n))
    # Kolmogorov-Smirnov distance to N(0, 1): below its 0.1% critical value 1.95 / sqrt(n)
    s = x.sort().values
    cdf = normal_cdf(s)
    k = torch.arange(1, n + 1, dtype=torch.float64)
    assert float(torch.maximum(k / n - cdf, cdf - (k - 1) / n).max()) < 1.95 / math.sqrt(n)
    # entries that share a Box-Muller radius are uncorrelated
    pairs = draw_rows(KEY, 0, 4000, 32, "gaussian").double().view(4000, 4, 8)
    assert abs(float((pairs[:, 0] * pairs[:, 1]).mean())) < 4 / math.sqrt(32_000)


def ks_distance(x: torch.Tensor, cdf) -> float:
    """Kolmogorov-Smirnov distance of the sample ``x`` to a distribution function."""
    s = x.flatten().sort().values
    n, f = s.numel(), cdf(s)
    k = torch.arange(1, n + 1, dtype=torch.float64)
    return float(torch.maximum(k / n - f, f - (k - 1) / n).max())


@pytest.mark.parametrize("dof", [1, 2, 7, 64, 1024])
def test_chi_entries_are_chi_distributed(dof):
    """Marsaglia-Tsang's rejection (with the boost below shape 1): mean and distribution of
    chi(dof), the KS distance below its 0.1% critical value."""
    x = torch.from_numpy(draw_chi(matrix_key(3, "chi", dof), 300, 1000, dof))
    n = x.numel()
    mean = math.sqrt(2) * math.exp(math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2))
    assert float(x.mean()) == pytest.approx(mean, abs=4 * math.sqrt((dof - mean**2) / n))
    cdf = lambda v: torch.special.gammainc(torch.tensor(dof / 2, dtype=v.dtype), v * v / 2)  # noqa: E731
    assert ks_distance(x, cdf) < 1.95 / math.sqrt(n)


def test_a_chi_entry_depends_only_on_the_key_and_its_position(compiled, monkeypatch):
    key = matrix_key(4, "chi")
    whole = draw_chi(key, 40, 64, 16)
    assert (draw_chi(key, 7, 64, 16) == whole[:7]).all()  # retries come from their own streams
    assert (draw_chi(key, 40, 20, 16) == whole[:, :20]).all()
    assert not (draw_chi(matrix_key(5, "chi"), 40, 64, 16) == whole).any()
    monkeypatch.setattr(kernels, "load", lambda: None)  # the twins' draws: the same
    assert (draw_chi(key, 40, 64, 16) == whole).all()


@pytest.mark.parametrize("dof", [1, 2, 3, 8, 16, 128, 256, 1024])
@pytest.mark.parametrize("rows,n", [(37, 100), (3, 513)])
def test_the_kernel_and_numpy_accept_the_same_chi_candidates(dof, rows, n, compiled, monkeypatch):
    keys = [matrix_key(seed, "chi", dof) for seed in range(4)]
    fast = [draw_chi(key, rows, n, dof) for key in keys]
    monkeypatch.setattr(kernels, "load", lambda: None)
    assert all((draw_chi(key, rows, n, dof) == f).all() for key, f in zip(keys, fast))


def test_a_close_call_in_a_log_test_leaves_the_whole_draw_to_numpy(compiled, monkeypatch):
    """glibc's log and numpy's may differ in the last place: the kernel reports a log test near
    its boundary, and numpy then draws everything (simulated at the kernel's second attempt)."""
    key = matrix_key(1, "chi")
    expected = draw_chi(key, 30, 64, 8)  # about 1% of entries take a second attempt at dof 8

    class CloseCallAtSecondAttempt:
        attempts = 0

        def __getattr__(self, name):
            return getattr(compiled, name)

        def gamma_attempt(self, *args):
            self.attempts += 1
            compiled.gamma_attempt(*args)
            return self.attempts < 2

    fake = CloseCallAtSecondAttempt()
    monkeypatch.setattr(kernels, "load", lambda: fake)
    assert (draw_chi(key, 30, 64, 8) == expected).all()
    assert fake.attempts == 2


def test_uniform_and_bernoulli_entries():
    u = draw_rows(KEY, 0, 2000, 100, "uniform").double()
    assert -1 < float(u.min()) and float(u.max()) < 1
    assert float(u.mean()) == pytest.approx(0.0, abs=4 * math.sqrt(1 / 3 / u.numel()))
    assert float((u**2).mean()) == pytest.approx(1 / 3, abs=4 * math.sqrt(4 / 45 / u.numel()))
    b = draw_rows(KEY, 0, 2000, 100, "bernoulli")
    assert set(b.unique().tolist()) == {-1.0, 1.0}
    assert float(b.double().mean()) == pytest.approx(0.0, abs=4 / math.sqrt(b.numel()))


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
@pytest.mark.parametrize("D,d,m", [(1000, 37, 1), (777, 64, 3), (513, 1, 1), (3000, 250, 2)])
def test_products_drawn_on_the_fly_equal_the_stored_matrix(distribution, D, d, m, compiled):
    """regenerate=true on the CPU multiplies rows as the kernel draws them; the stored matrix is
    drawn by the same generator: the same P up to rounding, batched or not."""
    spec = f"dense[distribution={distribution}"
    stored = projections.create(spec + "]", D=D, d=d, seed=3)
    fly = projections.create(spec + ",regenerate=true]", D=D, d=d, seed=3)
    gen = torch.Generator().manual_seed(0)
    z, g = torch.randn(m, d, generator=gen), torch.randn(m, D, generator=gen)
    assert torch.allclose(fly.adjoint(g), stored.adjoint(g), rtol=1e-4, atol=1e-5)
    assert torch.allclose(fly(z), stored(z), rtol=1e-4, atol=1e-5)
    assert torch.allclose(fly.inv_norms, stored.inv_norms, rtol=1e-6)


def test_a_product_before_any_adjoint_sets_the_norms_itself(compiled):
    stored = projections.create("dense", D=900, d=20, seed=1)
    fly = projections.create("dense[regenerate=true]", D=900, d=20, seed=1)
    z = torch.randn(20)
    assert torch.allclose(fly(z), stored(z), rtol=1e-4, atol=1e-5)


class CountingKernels:
    """The compiled module, counting the calls of each of its functions."""

    def __init__(self, module):
        self.module, self.calls = module, {}

    def __getattr__(self, name):
        function = getattr(self.module, name)

        def counted(*args):
            self.calls[name] = self.calls.get(name, 0) + 1
            return function(*args)
        return counted


@pytest.fixture
def counting(compiled, monkeypatch):
    spy = CountingKernels(compiled)
    monkeypatch.setattr(kernels, "for_tensor", lambda x: spy)
    return spy


@pytest.mark.parametrize("D,d,m", [(1000, 37, 1), (777, 64, 3), (513, 1, 1), (3000, 250, 2)])
def test_an_adjoints_kept_rows_give_the_next_product_the_same_bits(D, d, m, counting, monkeypatch):
    """The kernel keeps the rows its adjoint drew; the product that follows reads them instead of
    drawing them again, with the very same sums."""
    gen = torch.Generator().manual_seed(1)
    g, z = torch.randn(m, D, generator=gen), torch.randn(m, d, generator=gen)
    kept = projections.create("dense[regenerate=true]", D=D, d=d, seed=4)
    kept_out = (kept.adjoint(g), kept(z))
    assert counting.calls == {"random_adjoint": 1, "kept_product": 1}
    monkeypatch.setattr(dense, "KEEP_BYTES", 0)
    drawn = projections.create("dense[regenerate=true]", D=D, d=d, seed=4)
    drawn_out = (drawn.adjoint(g), drawn(z))
    assert counting.calls == {"random_adjoint": 2, "kept_product": 1, "random_product": 1}
    assert all(torch.equal(a, b) for a, b in zip(kept_out, drawn_out))


def test_kept_rows_serve_one_product_and_only_their_own_projection(counting):
    p = projections.create("dense[regenerate=true]", D=900, d=40, seed=1)
    q = projections.create("dense[regenerate=true]", D=900, d=40, seed=2)
    g, z = torch.randn(900), torch.randn(40)
    p.adjoint(g)
    q.adjoint(g)  # overwrites the thread's buffer: p draws its rows again
    first, second = p(z), p(z)
    assert counting.calls == {"random_adjoint": 2, "random_product": 2}
    assert torch.equal(first, second)
    q.adjoint(g)
    assert torch.equal(q(z), q(z))  # the first product read the kept rows, the second drew them
    assert counting.calls == {"random_adjoint": 3, "random_product": 3, "kept_product": 1}


def test_a_product_before_any_adjoint_reads_the_rows_its_norm_pass_drew(counting):
    fly = projections.create("dense[regenerate=true]", D=900, d=20, seed=1)
    z = torch.randn(20)
    first = fly(z)
    assert counting.calls == {"random_adjoint": 1, "kept_product": 1}
    assert torch.equal(first, fly(z))


@pytest.mark.parametrize("D,d,m", [(1000, 37, 1), (777, 64, 3), (513, 1, 1), (3000, 250, 2),
                                   (2050, 7, 1)])
def test_the_stored_matrix_products_by_the_kernel_equal_torchs_to_rounding(D, d, m, counting,
                                                                           monkeypatch):
    """The stored matrix streamed by the kernel (base + P z in one pass, P^T g in row blocks):
    torch's products up to float rounding, batched or not, with a shared or a per-row base; and
    the same bits at 1 and 2 threads."""
    p = projections.create("dense", D=D, d=d, seed=5)
    gen = torch.Generator().manual_seed(D)
    z, g = torch.randn(m, d, generator=gen), torch.randn(m, D, generator=gen)
    bases = torch.randn(D, generator=gen), torch.randn(m, D, generator=gen)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = [p(z), p.adjoint(g), *(p._matvec_add(base, z) for base in bases)]
        torch.set_num_threads(2)
        two = [p(z), p.adjoint(g), *(p._matvec_add(base, z) for base in bases)]
    finally:
        torch.set_num_threads(threads)
    products = {name: n for name, n in counting.calls.items() if name.startswith("matrix")}
    assert products == {"matrix_product": 6, "matrix_adjoint": 2}
    assert all(torch.equal(a, b) for a, b in zip(one, two))
    assert torch.allclose(one[0], z @ p.matrix.T, rtol=1e-5, atol=1e-6)
    assert torch.allclose(one[1], g @ p.matrix, rtol=1e-5, atol=1e-5)
    for base, fused in zip(bases, one[2:]):
        assert torch.allclose(fused, base + z @ p.matrix.T, rtol=1e-5, atol=1e-6)
    monkeypatch.setattr(kernels, "for_tensor", lambda x: None)  # torch's products elsewhere
    assert torch.allclose(p(z[0]), one[0][0], rtol=1e-5, atol=1e-6)


def test_the_fused_products_do_not_depend_on_the_thread_count(compiled):
    """Rows are summed in fixed blocks and the blocks in a fixed order (this test sets threads)."""
    fly = projections.create("dense[regenerate=true]", D=5000, d=90, seed=2)
    z, g = torch.randn(90), torch.randn(5000)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = (fly.adjoint(g), fly(z))
        torch.set_num_threads(2)
        two = (fly.adjoint(g), fly(z))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(one, two))


def test_without_kernels_the_twin_serves_the_same_projection(compiled, monkeypatch):
    """CUDA tensors and machines without a compiler: chunks drawn by the twin, multiplied by torch."""
    fast = projections.create("dense[regenerate=true]", D=2000, d=50, seed=9)
    z, g = torch.randn(50), torch.randn(2000)
    expected = (fast.adjoint(g), fast(z))
    monkeypatch.setattr(kernels, "for_tensor", lambda x: None)
    twin = projections.create("dense[regenerate=true]", D=2000, d=50, seed=9)
    assert torch.allclose(twin.adjoint(g), expected[0], rtol=1e-4, atol=1e-5)
    assert torch.allclose(twin(z), expected[1], rtol=1e-4, atol=1e-5)
