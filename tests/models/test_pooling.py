"""max_pool2x2: torch's F.max_pool2d(x, 2), bit for bit, by the compiled kernel on the CPU."""

import pytest
import torch
import torch.nn.functional as F

import idbench.models as models
from idbench import kernels
from idbench.models.pooling import max_pool2x2


def torch_path(monkeypatch):
    monkeypatch.setattr(kernels, "for_tensor", lambda x: None)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(128, 6, 24, 24), (3, 2, 5, 7), (1, 1, 2, 3), (4, 16, 8, 8)])
def test_values_indices_and_gradients_are_torch_s(shape, dtype, compiled):
    gen = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(shape, generator=gen, dtype=dtype).relu()  # ReLU: windows of tied zeros
    x.view(-1)[:4] = 1.5  # and ties among positive values
    x.view(-1)[x.numel() // 2] = float("nan")
    out, index = kernels.load().max_pool2x2(x)
    want, want_index = F.max_pool2d(x, 2, return_indices=True)
    assert torch.equal(out.nan_to_num(), want.nan_to_num()) and torch.equal(index, want_index)
    assert out.isnan().sum() == want.isnan().sum() <= 1
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    grad = torch.randn(want.shape, generator=gen, dtype=dtype)
    max_pool2x2(a).backward(grad)
    F.max_pool2d(b, 2).backward(grad)
    assert torch.equal(a.grad, b.grad)


@pytest.mark.parametrize("name", ["lenet", "cnn"])
def test_the_models_train_the_same_with_and_without_the_kernel(name, compiled, monkeypatch):
    def loss_and_grads():
        torch.manual_seed(0)
        net = models.create(name, input_shape=(1, 28, 28), num_classes=10)
        x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        return [loss.detach(), *(p.grad for p in net.parameters())]

    fast = loss_and_grads()
    torch_path(monkeypatch)
    assert all(torch.equal(a, b) for a, b in zip(fast, loss_and_grads()))


def test_torch_serves_what_the_kernel_does_not(compiled):
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(max_pool2x2(x.transpose(2, 3)), F.max_pool2d(x.transpose(2, 3), 2))
    assert torch.equal(max_pool2x2(x.half()), F.max_pool2d(x.half(), 2))
    # inside torch.func's transforms (ngd's per-example gradients): torch's op, no error
    per_example = torch.func.vmap(torch.func.grad(lambda v: max_pool2x2(v).sum()))(x)
    assert torch.equal(per_example, torch.func.vmap(torch.func.grad(
        lambda v: F.max_pool2d(v, 2).sum()))(x))
