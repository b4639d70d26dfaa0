"""2 x 2 max-pooling with stride 2, the pooling of LeNet and the CNN.

:func:`max_pool2x2` is ``torch.nn.functional.max_pool2d(x, 2)`` bit for bit: the same maxima, and
gradients routed through the same indices (ties keep the first position of a window) by torch's
own backward. On the CPU a compiled kernel (``idbench/kernels/pooling.cpp``) computes it, as
torch's kernel for NCHW tensors is many times slower there (a fifth of a LeNet training step);
CUDA tensors, machines without the kernels, and tensors inside ``torch.func`` transforms (``ngd``
and ``nes`` vmap over the model) take torch's kernel.

Example::

    y = max_pool2x2(torch.relu(conv(x)))   # == F.max_pool2d(torch.relu(conv(x)), 2)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from idbench import kernels


class _MaxPool2x2(torch.autograd.Function):
    """The compiled forward, torch's backward through the indices it returns."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out, index = kernels.load().max_pool2x2(x)
        ctx.save_for_backward(x, index)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        x, index = ctx.saved_tensors
        return torch.ops.aten.max_pool2d_with_indices_backward(
            grad.contiguous(), x, [2, 2], [2, 2], [0, 0], [1, 1], False, index)


def max_pool2x2(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 2)`` for x of shape (N, C, H, W): by the compiled kernel where it serves
    x (a contiguous float CPU tensor outside ``torch.func`` transforms), else by torch."""
    compiled = kernels.for_tensor(x)
    if (compiled is None or x.dim() != 4 or not x.is_contiguous()
            or x.dtype not in (torch.float32, torch.float64) or min(x.shape[2:]) < 2
            or torch._C._functorch.is_functorch_wrapped_tensor(x)):  # vmap, grad: torch's op
        return F.max_pool2d(x, 2)
    if not (torch.is_grad_enabled() and x.requires_grad):
        return compiled.max_pool2x2(x)[0]
    return _MaxPool2x2.apply(x)


class MaxPool2x2(nn.Module):
    """:func:`max_pool2x2` as a layer, for ``nn.MaxPool2d(2)`` (no parameters: a model's
    parameter names and D stay the same)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool2x2(x)
