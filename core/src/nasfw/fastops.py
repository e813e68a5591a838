"""Exact re-formulations of common candidate ops that make weight-sharing supernets cheaper.

A supernet evaluates every candidate op on every edge, so work that the ops repeat is worth sharing:

* Most convolutional candidates start with ``ReLU`` of the edge input. :func:`starts_with_relu` and
  :func:`after_leading_relu` let a cell compute ``relu(h)`` once per input state and feed it to every
  such op (same values, fewer kernels, fewer saved activations).
* ``avg_pool_3x3`` with ``count_include_pad=False`` is slow on CPU. :class:`AvgPool2d` computes it in
  float32 as a depthwise convolution with a ones kernel times the reciprocal window count (equal up to
  floating-point rounding); other devices and dtypes (float64 convolutions are not faster) keep the
  native kernel.

Nothing here is specific to a space or a paper; the DARTS and NB201 supernets use both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _plain_sequential(m: nn.Module) -> bool:
    return isinstance(m, nn.Sequential) and type(m).forward is nn.Sequential.forward and len(m) > 0


def starts_with_relu(m: nn.Module) -> bool:
    """Whether ``m(x)`` is ``rest(relu(x))`` for a plain (possibly nested) ``nn.Sequential``."""
    if not _plain_sequential(m):
        return False
    first = m[0]
    return isinstance(first, nn.ReLU) or starts_with_relu(first)


def after_leading_relu(m: nn.Module, r: torch.Tensor) -> torch.Tensor:
    """``m(x)`` given ``r = relu(x)``, for an ``m`` with :func:`starts_with_relu`."""
    first = m[0]
    y = r if isinstance(first, nn.ReLU) else after_leading_relu(first, r)
    for i in range(1, len(m)):
        y = m[i](y)
    return y


def apply_sharing_relu(op: nn.Module, h: torch.Tensor, relus: list[torch.Tensor | None], i: int) -> torch.Tensor:
    """``op(h)``; when ``op`` starts with ReLU, ``relu(h)`` is taken from (or first stored in) ``relus[i]``."""
    if not starts_with_relu(op):  # checked per call: a module may be swapped after the supernet is built
        return op(h)
    if relus[i] is None:
        relus[i] = torch.relu(h)
    return after_leading_relu(op, relus[i])


class AvgPool2d(nn.AvgPool2d):
    """``nn.AvgPool2d`` (same arguments, same results up to rounding), several times faster on CPU.

    With ``count_include_pad=False`` PyTorch's CPU kernel is slow; a depthwise convolution with a ones
    kernel gives the window sums, and a cached map of 1/window-count turns them into means.
    """

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0,
                 count_include_pad: bool = True):
        super().__init__(kernel_size, stride, padding, count_include_pad=count_include_pad)
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.device.type != "cpu" or x.dtype != torch.float32 or x.dim() != 4 or self.ceil_mode
                or self.divisor_override or not isinstance(self.kernel_size, int)):
            return super().forward(x)
        k, s, p = self.kernel_size, self.stride, self.padding
        c, h, w = x.shape[1:]
        key = (c, h, w, x.dtype)
        if key not in self._cache:
            ones = torch.ones(c, 1, k, k, dtype=x.dtype)
            if self.count_include_pad:
                count = torch.full((1, 1, 1, 1), float(k * k), dtype=x.dtype)
            else:
                count = F.conv2d(torch.ones(1, 1, h, w, dtype=x.dtype), ones[:1], stride=s, padding=p)
            self._cache[key] = (ones, count.reciprocal())
        ones, inv = self._cache[key]
        return F.conv2d(x, ones, stride=s, padding=p, groups=c) * inv
