import pytest
import torch

from idbench.projections.hadamard import (
    butterfly, fwht, hadamard_matrix, next_power_of_two, tree_sum,
)


@pytest.mark.parametrize("n", [1, 2, 4, 32, 128, 2048, 8192])
def test_equals_dense_hadamard_product(n):
    x = torch.randn(3, n, dtype=torch.float64)
    assert torch.allclose(fwht(x), x @ hadamard_matrix(n, dtype=torch.float64))


@pytest.mark.parametrize("n", [2, 64, 1024, 2**15])
def test_twice_is_n_times_identity(n):
    x = torch.randn(2, 5, n, dtype=torch.float64)
    assert torch.allclose(fwht(fwht(x)), n * x)


def test_backward_is_the_same_transform_unscaled():
    x = torch.randn(4, 256, dtype=torch.float64, requires_grad=True)
    g = torch.randn(4, 256, dtype=torch.float64)
    (fwht(x) * g).sum().backward()
    assert torch.allclose(x.grad, fwht(g))


def test_rejects_non_power_of_two():
    with pytest.raises(ValueError, match="power-of-two"):
        fwht(torch.randn(3, 6))


def test_next_power_of_two():
    assert [next_power_of_two(n) for n in (1, 2, 3, 1000, 1024, 1025)] == [1, 2, 4, 1024, 1024, 2048]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [1, 2, 4, 8, 16, 64, 1024])
def test_the_compiled_transform_and_its_torch_twin_are_bit_identical(n, dtype, compiled):
    x = torch.randn(3, 2, n, dtype=dtype)
    before = x.clone()
    assert torch.equal(fwht(x), butterfly(x.clone()))
    assert torch.equal(x, before)  # fwht leaves its input alone (the twin overwrites it)


def test_tree_sum_adds_pairs_level_by_level_carrying_the_odd_one():
    # float32: 1e8 + 1 rounds to 1e8, so the order shows: pairs first give 0, left to right 1
    x = torch.tensor([[1e8], [1.0], [-1e8], [1.0]])
    assert tree_sum(x).item() == 0.0
    assert (((x[0] + x[1]) + x[2]) + x[3]).item() == 1.0
    rows = torch.arange(7.0).unsqueeze(-1).expand(2, 7, 3)  # 7 rows: the carried row is 6
    assert torch.equal(tree_sum(rows), torch.full((2, 3), 21.0))
