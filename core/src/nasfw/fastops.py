"""Exact re-formulations of common candidate ops that make weight-sharing supernets cheaper.

A supernet evaluates every candidate op on every edge, so work that the ops repeat is worth sharing:

* Most convolutional candidates start with ``ReLU`` of the edge input. :func:`starts_with_relu` and
  :func:`after_leading_relu` let a cell compute ``relu(h)`` once per input state and feed it to every
  such op (same values, fewer kernels, fewer saved activations).
* ``avg_pool_3x3`` with ``count_include_pad=False`` is slow on CPU. :class:`AvgPool2d` computes it in
  float32 as a depthwise convolution with a ones kernel times the reciprocal window count (equal up to
  floating-point rounding); other devices and dtypes (float64 convolutions are not faster) keep the
  native kernel.

* :func:`depthwise_conv2d` and :func:`pointwise_conv2d` compute depthwise and 1×1 convolutions so that
  every pass runs oneDNN's fast CPU kernels (the batched edges of :mod:`nasfw.batched` use them). Under
  ``torch.func.vmap`` (ZARTS' scratch copies, DARTS-PT's variants) the reshape-and-product forms still apply,
  and a 5×5 convolution that needs a weight gradient folds the vmapped dimension into the channels itself to
  reach the channels-last kernels (vmap cannot choose memory formats).

Nothing here is specific to a space or a paper; the DARTS and NB201 supernets use all of them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch._C import _functorch

from nasfw import recompute


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


# -- convolutions on CPU ---------------------------------------------------------------------------
# oneDNN (PyTorch's CPU convolution backend) has fast ("jit_dw") NCHW depthwise kernels for the forward pass
# and for 3×3 undilated backward passes, but computes the weight gradient of 5×5 kernels and both gradients
# of dilated kernels with a per-group im2col GEMM, several times slower (``ONEDNN_VERBOSE=1`` shows
# ``x64:gemm:jit``). The rewrites below are the same convolution on a layout oneDNN runs fast.

def _fast_cpu(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4


def _wrapped(*ts: torch.Tensor) -> bool:
    """Under a torch.func transform (vmap over ZARTS' scratch copies or DARTS-PT's variants): reshapes and
    products batch, memory formats cannot be chosen."""
    return any(_functorch.is_functorch_wrapped_tensor(t) for t in ts)


def _undilated_depthwise(x: torch.Tensor, w: torch.Tensor, stride: int, padding: int) -> torch.Tensor:
    # the channels-last detour pays for the weight gradient only: without autograd (DARTS-PT's scored variants,
    # evaluation) NCHW's forward kernel is the fast one
    y = None
    if w.shape[-1] > 3 and torch.is_grad_enabled():
        if _wrapped(x, w):  # a vmapped tensor does not report requires_grad; its physical tensor is asked
            y = _vmapped_depthwise(x, w, stride, padding)
        elif (x.requires_grad or w.requires_grad) and not x.is_contiguous(memory_format=torch.channels_last):
            xc = recompute.derive(x.contiguous(memory_format=torch.channels_last), x, _channels_last)
            y = F.conv2d(xc, w, None, stride, padding, 1, w.shape[0]).contiguous()
    return F.conv2d(x, w, None, stride, padding, 1, w.shape[0]) if y is None else y


def _vmapped_depthwise(x: torch.Tensor, w: torch.Tensor, stride: int, padding: int) -> torch.Tensor | None:
    """A 5×5 (or larger) depthwise convolution under one ``vmap`` over plain tensors (ZARTS' stacked scratch
    weights), on the physical tensors: the vmapped dimension folded into the channels (or, for shared weights,
    the batch), as functorch's own convolution rule folds it, but then through the channels-last kernels
    (vmap cannot choose a memory format, and the NCHW weight gradient is an im2col GEMM several times slower).
    ``None`` where it does not apply (nested transforms, a vmap over the weights only)."""
    fx = _functorch
    if not all(hasattr(fx, n) for n in ("_unwrap_batched", "_add_batch_dim", "is_batchedtensor", "maybe_get_level")):
        return None  # private functorch calls of another torch release
    level = max(fx.maybe_get_level(x), fx.maybe_get_level(w))

    def physical(t: torch.Tensor) -> tuple[torch.Tensor, int | None] | None:
        if fx.maybe_get_level(t) != level:
            return (t, None) if not fx.is_functorch_wrapped_tensor(t) else None
        if not fx.is_batchedtensor(t):
            return None
        p, bdim = fx._unwrap_batched(t, level)
        return None if fx.is_functorch_wrapped_tensor(p) else (p, bdim)

    px, pw = physical(x), physical(w)
    if px is None or pw is None or px[1] is None:
        return None
    (xp, xb), (wp, wb) = px, pw
    if not (xp.requires_grad or wp.requires_grad):
        return None
    v = xp.shape[xb]
    xp = xp.movedim(xb, 0)  # (V, N, C, H, W)
    if wb is None:  # shared weights: the samples are more images
        y = _undilated_depthwise(xp.flatten(0, 1), wp, stride, padding)
        return fx._add_batch_dim(y.unflatten(0, (v, xp.shape[1])), 0, level)
    wp = wp.movedim(wb, 0)  # (V, C, 1, k, k): V·C groups over (N, V·C, H, W)
    c = wp.shape[1]
    y = _undilated_depthwise(xp.transpose(0, 1).flatten(1, 2), wp.flatten(0, 1), stride, padding)
    return fx._add_batch_dim(y.unflatten(1, (v, c)), 1, level)


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def _phases(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (4N, C, H/2, W/2): the even/odd-row × even/odd-column components along the batch."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).permute(3, 5, 0, 1, 2, 4).reshape(4 * n, c, h // 2, w // 2)


def depthwise_conv2d(x: torch.Tensor, weight: torch.Tensor, stride: tuple[int, int], padding: tuple[int, int],
                     dilation: tuple[int, int]) -> torch.Tensor:
    """``F.conv2d(x, weight, stride=stride, padding=padding, dilation=dilation, groups=C)`` for a depthwise
    weight (C, 1, k, k), computed so that every pass runs oneDNN's fast kernels on CPU in float32.

    A dilation-2 convolution with "same" padding equals an undilated one on each of the input's four
    polyphase components (even/odd rows × even/odd columns), stacked along the batch; at stride 2 only the
    even-even component is read. 5×5 kernels run in channels-last memory format. Other cases (other devices
    and dtypes, odd sizes, other paddings) are the plain call.
    """
    k = weight.shape[-1]
    c = weight.shape[0]
    plain = (not _fast_cpu(x) or weight.shape[-2] != k or stride[0] != stride[1] or padding[0] != padding[1]
             or dilation[0] != dilation[1] or x.shape[1] != c)
    if plain:
        return F.conv2d(x, weight, None, stride, padding, dilation, c)
    s, p, d = stride[0], padding[0], dilation[0]
    if d == 1:
        return _undilated_depthwise(x, weight, s, p)
    n, _, h, w = x.shape
    if d != 2 or p != k - 1 or s not in (1, 2):
        return F.conv2d(x, weight, None, stride, padding, dilation, c)
    if s == 2:  # out[m] = Σ_i w[i]·x[2(m + i) - (k - 1)]: only even positions are read
        return _undilated_depthwise(x[:, :, ::2, ::2], weight, 1, (k - 1) // 2)
    if h % 2 or w % 2 or min(h, w) // 2 < 2 * (k - 1):  # tiny phases: the plain call is faster
        return F.conv2d(x, weight, None, stride, padding, dilation, c)
    y = _undilated_depthwise(recompute.derive(_phases(x), x, _phases), weight, 1, (k - 1) // 2)
    return y.view(2, 2, n, c, h // 2, w // 2).permute(2, 3, 4, 0, 5, 1).reshape(n, c, h, w)


def pointwise_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, groups: int) -> torch.Tensor:
    """A 1×1 convolution (stride 1, no padding) as a batched matrix product (faster than oneDNN's grouped 1×1
    convolution on CPU); ``groups`` blocks of channels, each its own (C_out, C_in) matrix."""
    if not _fast_cpu(x) or (not _wrapped(x) and x.is_contiguous(memory_format=torch.channels_last)
                            and not x.is_contiguous()):
        return F.conv2d(x, weight, bias, 1, 0, 1, groups)
    n, ci, h, w = x.shape
    co = weight.shape[0]
    y = torch.matmul(weight.reshape(groups, co // groups, ci // groups), x.reshape(n, groups, ci // groups, h * w))
    y = y.view(n, co, h, w)
    return y if bias is None else y + bias.view(1, co, 1, 1)
