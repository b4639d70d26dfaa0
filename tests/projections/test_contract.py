"""The contract every registered projection obeys (design notes, 'Projections')."""

import math

import pytest
import torch

import idbench.projections as projections
from idbench.errors import IdbenchError

NAMES = projections.list()
STRUCTURED = {"sparse", "fastfood", "fastjl", "kron", "kron_sparse"}


def test_all_six_are_registered():
    assert NAMES == ["dense", "fastfood", "fastjl", "kron", "kron_sparse", "sparse"]


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_in_seed_and_seeds_differ(name, device):
    z = torch.randn(37, generator=torch.Generator().manual_seed(1)).to(device)
    a = projections.create(name, D=1000, d=37, seed=5, device=device)(z)
    b = projections.create(name, D=1000, d=37, seed=5, device=device)(z)
    c = projections.create(name, D=1000, d=37, seed=6, device=device)(z)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("D,d", [(1000, 37), (777, 64), (513, 1), (300, 300)])
def test_adjoint_identity(name, D, d, device):
    gen = torch.Generator().manual_seed(0)
    p = projections.create(name, D=D, d=d, seed=1, device=device, dtype=torch.float64)
    z = torch.randn(d, generator=gen, dtype=torch.float64).to(device)
    g = torch.randn(D, generator=gen, dtype=torch.float64).to(device)
    lhs, rhs = p(z) @ g, z @ p.adjoint(g)
    assert math.isclose(float(lhs), float(rhs), rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_batched_inputs_match_single(name):
    p = projections.create(name, D=500, d=20, seed=2)
    zs = torch.randn(3, 20)
    gs = torch.randn(3, 500)
    assert torch.allclose(p(zs), torch.stack([p(z) for z in zs]), atol=1e-5)
    assert torch.allclose(p.adjoint(gs), torch.stack([p.adjoint(g) for g in gs]), atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_unit_column_norms(name):
    D, d = 4000, 200
    p = projections.create(name, D=D, d=d, seed=3, dtype=torch.float64)
    columns = p(torch.eye(d, dtype=torch.float64))  # row j is P e_j
    norms = columns.norm(dim=1)
    if name in STRUCTURED - {"sparse"}:
        assert abs(float(norms.square().mean()) - 1) < 0.03
    else:
        assert torch.allclose(norms, torch.ones(d, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("d", [10, 100, 129])
def test_expected_squared_norm_is_preserved(name, d):
    p = projections.create(name, D=3000, d=d, seed=4, dtype=torch.float64)
    z = torch.randn(400, d, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    ratio = p(z).square().sum(1).mean() / z.square().sum(1).mean()
    assert abs(float(ratio) - 1) < 0.05


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_float64(name):
    p = projections.create(name, D=37, d=5, seed=0, dtype=torch.float64)
    z = torch.randn(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(p, (z,))


@pytest.mark.parametrize("name", sorted(STRUCTURED))
def test_structured_state_is_linear_in_D(name):
    D, d = 50_000, 1000
    p = projections.create(name, D=D, d=d, seed=0)
    n = 1024  # d padded to a power of two
    bounds = {
        "fastfood": 5 * (D + n),  # signs, permutation and its inverse, G, S per block
        "fastjl": 2 * 4 * D + n,  # 4 nonzeros per row, stored once (values, columns); signs
        "sparse": 4 * 1.05 * d * math.sqrt(D) + D + d + 2,
        "kron": D + 2 * (math.isqrt(D) + 2) * (math.isqrt(d) + 2),  # rows kept, A and B
    }
    bounds["kron_sparse"] = bounds["kron"] + bounds["sparse"]
    assert p.state_numel() <= bounds[name]
    assert p.state_numel() < D * d / 20  # far from a dense D x d matrix
    for buffer in p.buffers():  # dense buffers are O(D) (FastJL: 4 entries a row); a D x d one
        assert buffer.layout == torch.sparse_csr or buffer.numel() <= 4 * (D + n)  # only sparse


def test_dense_regenerate_gives_the_same_basis():
    a = projections.create("dense", D=3000, d=50, seed=7)
    b = projections.create("dense[regenerate=true]", D=3000, d=50, seed=7)
    z, g = torch.randn(50), torch.randn(3000)
    assert torch.allclose(a(z), b(z), atol=1e-6)
    assert torch.allclose(a.adjoint(g), b.adjoint(g), atol=1e-5)
    assert b.state_numel() == 50  # only the column norms are kept


def test_sparse_density_matches_li_et_al():
    D, d = 40_000, 100
    p = projections.create("sparse", D=D, d=d, seed=0)
    nnz = p.matrix_t.values().numel()
    expected = d * math.sqrt(D)
    assert abs(nnz - expected) < 0.05 * expected


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("D,d", [(10, 0), (10, 11), (10, -1), (0, 1)])
def test_bad_sizes_raise_idbench_error(name, D, d):
    with pytest.raises(IdbenchError, match="must be"):
        projections.create(name, D=D, d=d, seed=0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int64])
def test_unsupported_dtype_raises_a_value_error(name, dtype):
    with pytest.raises(ValueError, match="dtype must be torch.float32 or torch.float64"):
        projections.create(name, D=100, d=10, seed=0, dtype=dtype)


def test_bad_seed_and_options():
    with pytest.raises(IdbenchError, match="seed"):
        projections.create("dense", D=10, d=2, seed=-1)
    with pytest.raises(IdbenchError, match="density"):
        projections.create("sparse[density=2]", D=10, d=2, seed=0)
    with pytest.raises(IdbenchError, match="nnz_per_row"):
        projections.create("fastjl[nnz_per_row=0]", D=10, d=2, seed=0)
    with pytest.raises(IdbenchError, match="does not take"):
        projections.create("fastfood[density=0.1]", D=10, d=2, seed=0)


def test_unknown_name_suggests_close_match():
    with pytest.raises(IdbenchError, match="Did you mean 'fastfood'.*dense, fastfood, fastjl, kron, kron_sparse, sparse"):
        projections.create("fastfod", D=10, d=2, seed=0)


@pytest.mark.parametrize("name", NAMES)
def test_describe_records_normalisation(name):
    info = projections.create(name, D=100, d=10, seed=3).describe()
    assert info["normalisation"] == "unit-column"
    assert (info["projection"], info["D"], info["d"], info["seed"]) == (name, 100, 10, 3)

