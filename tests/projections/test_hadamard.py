import pytest
import torch

from idbench.projections.hadamard import fwht, hadamard_matrix, next_power_of_two


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
