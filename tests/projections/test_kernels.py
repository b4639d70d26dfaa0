"""The compiled CPU kernels: built once, bit-identical to their pure-torch twins (which serve CUDA
tensors and machines without a compiler), independent of the thread count. Fastfood and FastJL
run all of their products in them, sparse its P z (the CSR scatter)."""

import pytest
import torch
from torch.utils import cpp_extension

import idbench.projections as projections
from idbench import kernels
from idbench.projections.fastfood import random_permutations

SIZES = [(1000, 37), (777, 64), (513, 1), (300, 300),
         (20_000, 100), (70_000, 40_000)]  # 157 blocks; n = 65,536 (int32 permutations)


def products(p, z, g, base):
    return p(z), p.adjoint(g), p._matvec_add(base, z)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("D,d", SIZES)
@pytest.mark.parametrize("name", ["fastfood", "sparse", "fastjl"])
def test_the_kernels_and_the_torch_twins_are_bit_identical(name, D, d, dtype, compiled,
                                                           monkeypatch):
    p = projections.create(name, D=D, d=d, seed=4, dtype=dtype)
    gen = torch.Generator().manual_seed(0)
    z, g = (torch.randn(2, 3, k, generator=gen, dtype=dtype) for k in (d, D))
    base = torch.randn(D, generator=gen, dtype=dtype)
    fast = products(p, z, g, base)
    monkeypatch.setattr(kernels, "for_tensor", lambda x: None)
    twin = products(p, z, g, base)
    assert all(torch.equal(a, b) for a, b in zip(fast, twin))
    # base + P z in one pass: its terms rounded in another order than base + (P z)
    assert torch.allclose(fast[2], base + fast[0], rtol=0, atol=1e-12 if dtype == torch.float64
                          else 2e-5)


@pytest.mark.parametrize("rows,n", [(1, 1), (3, 2), (5, 33), (390, 512), (2, 65_536)])
def test_the_compiled_permutations_are_the_stable_argsort(rows, n, compiled, monkeypatch):
    """Fastfood's permutations: the radix sort gives torch.argsort(stable=True) on the 2^-24 grid,
    on rows full of ties too, and torch sorts rows off the grid; so a Fastfood projection is built
    the same with and without the kernels."""
    gen = torch.Generator().manual_seed(rows * n)
    draws = torch.rand(rows, n, generator=gen)
    tied = torch.randint(0, max(n // 4, 1), (rows, n), generator=gen).float() / 2**24
    off_grid = torch.randn(rows, n, generator=gen)
    for x in (draws, tied, off_grid):
        assert torch.equal(random_permutations(x), torch.argsort(x, dim=1, stable=True))
    _, flagged = kernels.load().argsort_uniform_rows(tied)
    assert not flagged.any()  # ties are the radix sort's own business
    _, flagged = kernels.load().argsort_uniform_rows(off_grid)
    assert flagged.all()  # Gaussian draws are off the grid: torch sorts those rows
    built = projections.create("fastfood", D=3000, d=300, seed=1)
    monkeypatch.setattr(kernels, "for_tensor", lambda x: None)
    again = projections.create("fastfood", D=3000, d=300, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(built.buffers(), again.buffers()))


@pytest.mark.parametrize("name", ["fastfood", "fastjl"])
def test_the_products_do_not_depend_on_the_thread_count(name, compiled):
    p = projections.create(name, D=20_000, d=100, seed=0)
    g = torch.randn(4, 20_000)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = p.adjoint(g), p(g[:, :100])
        torch.set_num_threads(2)
        two = p.adjoint(g), p(g[:, :100])
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(one, two))


def test_a_failed_build_warns_once_and_leaves_the_torch_path(compiled, monkeypatch):
    def no_compiler(**kwargs):
        raise RuntimeError("Error building extension: c++: not found")

    monkeypatch.setattr(cpp_extension, "load", no_compiler)
    kernels.load.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="could not be built .*c\\+\\+: not found"):
            assert kernels.load() is None
        assert kernels.for_tensor(torch.zeros(1)) is None  # cached: no second warning
        p = projections.create("fastfood", D=500, d=20, seed=0)
        monkeypatch.undo()
        z = torch.randn(20)
        without = p(z)
        kernels.load.cache_clear()
        assert kernels.for_tensor(z) is not None
        assert torch.equal(p(z), without)
    finally:
        kernels.load.cache_clear()


def test_the_build_is_named_after_the_source_and_the_instruction_set(compiled):
    isa, _ = kernels._isa_flags()
    assert compiled.__name__.startswith(f"idbench_kernels_{isa}_")


def test_checkouts_of_the_same_sources_compile_one_copy(tmp_path, monkeypatch):
    """Another checkout (another path) of the same sources hands torch's build the same source
    path, so it loads the built library instead of rebuilding it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    paths = []
    for checkout in ("a", "b"):
        folder = tmp_path / checkout
        folder.mkdir()
        copies = []
        for source in kernels.SOURCES:
            (folder / source.name).write_bytes(source.read_bytes())
            copies.append(folder / source.name)
        monkeypatch.setattr(kernels, "SOURCES", copies)
        paths.append(kernels._stable_sources("idbench_kernels_test"))
    folder = tmp_path / "cache" / "idbench" / "kernel-sources" / "idbench_kernels_test"
    assert paths[0] == paths[1] == folder / "bindings.cpp"
    assert sorted(p.name for p in paths[0].parent.iterdir()) == sorted(s.name for s in copies)
    assert all((paths[0].parent / s.name).read_bytes() == s.read_bytes() for s in copies)
