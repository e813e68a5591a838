"""nasfw.fastops' re-formulated convolutions and avg-pool against PyTorch's own (outputs and both gradients)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nasfw.fastops import AvgPool2d, depthwise_conv2d, pointwise_conv2d

# (kernel, stride, dilation, size): the polyphase path (dilation 2, even sizes large enough), its stride-2 form,
# the channels-last 5x5 path, and the fall-backs (odd size, tiny phases)
DEPTHWISE = [(3, 1, 2, 16), (5, 1, 2, 16), (3, 2, 2, 16), (5, 2, 2, 15), (5, 1, 1, 12), (3, 1, 1, 9), (3, 1, 2, 9),
             (5, 1, 2, 8), (3, 2, 1, 10)]


def _grads(fn, x: torch.Tensor, w: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
    y = fn(x, w)
    return [y, *torch.autograd.grad(y, (x, w), g)]


@pytest.mark.parametrize(("k", "s", "d", "size"), DEPTHWISE, ids=[f"k{k}s{s}d{d}-{n}px" for k, s, d, n in DEPTHWISE])
def test_depthwise_conv2d_equals_conv2d(k: int, s: int, d: int, size: int) -> None:
    gen = torch.Generator().manual_seed(k * 100 + s * 10 + d)
    x = torch.randn(3, 6, size, size, generator=gen, requires_grad=True)
    w = torch.randn(6, 1, k, k, generator=gen, requires_grad=True)
    p = d * (k - 1) // 2
    want_y = F.conv2d(x, w, None, s, p, d, 6)
    g = torch.randn(want_y.shape, generator=gen)
    want = _grads(lambda x_, w_: F.conv2d(x_, w_, None, s, p, d, 6), x, w, g)
    got = _grads(lambda x_, w_: depthwise_conv2d(x_, w_, (s, s), (p, p), (d, d)), x, w, g)
    for name, a, b in zip(("out", "d_x", "d_w"), [t.detach() for t in got], [t.detach() for t in want]):
        # fp32 sums in another order: error relative to the largest entry (a weight gradient sums N·H·W products)
        assert a.shape == b.shape and float((a - b).abs().max()) <= 1e-5 * float(b.abs().max()), (name, a - b)


@pytest.mark.parametrize("groups", [1, 3])
def test_pointwise_conv2d_equals_conv2d(groups: int) -> None:
    gen = torch.Generator().manual_seed(groups)
    x = torch.randn(2, 6, 5, 7, generator=gen, requires_grad=True)
    w = torch.randn(9, 6 // groups, 1, 1, generator=gen, requires_grad=True)
    b = torch.randn(9, generator=gen, requires_grad=True)
    y_ref = F.conv2d(x, w, b, 1, 0, 1, groups)
    y = pointwise_conv2d(x, w, b, groups)
    g = torch.randn(y.shape, generator=gen)
    for got, want in zip(torch.autograd.grad(y, (x, w, b), g), torch.autograd.grad(y_ref, (x, w, b), g)):
        assert float((got - want).abs().max()) <= 1e-5 * float(want.abs().max())
    assert torch.allclose(y, y_ref, rtol=1e-5, atol=1e-5)


def _physical_channels_last(t: torch.Tensor) -> bool:
    """Whether ``t`` is a plain (not vmapped) tensor in channels-last layout."""
    return (not torch._C._functorch.is_functorch_wrapped_tensor(t) and t.dim() == 4 and t.shape[1] > 1
            and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous())


@pytest.mark.parametrize("x_batched", [True, False], ids=["x-batched", "x-shared"])
@pytest.mark.parametrize(("k", "s", "d", "size"), [(3, 1, 2, 16), (5, 1, 2, 16), (5, 1, 1, 12), (3, 2, 2, 16),
                                                   (5, 2, 1, 12), (5, 2, 2, 16)])
def test_fast_convolutions_under_vmap_equal_conv2d(k: int, s: int, d: int, size: int, x_batched: bool,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Under ``vmap`` over stacked weights (ZARTS' scratch copies, DARTS-PT's variants) the re-formulations still
    run (polyphase, matmul 1x1) and match ``F.conv2d`` per copy, outputs and gradients of the summed outputs
    (the ordinary backward ZARTS takes through the vmapped forward)."""
    gen = torch.Generator().manual_seed(k + 7 * d + size)
    n, c, p = 3, 4, d * (k - 1) // 2
    x = torch.randn(n, 2, c, size, size, generator=gen) if x_batched else torch.randn(2, c, size, size, generator=gen)
    x.requires_grad_()
    wd = torch.randn(n, c, 1, k, k, generator=gen, requires_grad=True)
    wp = torch.randn(n, 6, c // 2, 1, 1, generator=gen, requires_grad=True)

    def fast(w1: torch.Tensor, w2: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        return pointwise_conv2d(depthwise_conv2d(xi, w1, (s, s), (p, p), (d, d)), w2, None, 2)

    def plain(w1: torch.Tensor, w2: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(xi, w1, None, s, p, d, c), w2, None, 1, 0, 1, 2)

    calls: list[tuple] = []
    conv2d = F.conv2d
    monkeypatch.setattr(F, "conv2d", lambda *a: calls.append((a[1].shape[-1], a[5], _physical_channels_last(a[0])))
                        or conv2d(*a))
    y = torch.func.vmap(fast, in_dims=(0, 0, 0 if x_batched else None))(wd, wp, x)
    monkeypatch.undo()
    assert calls and all(kk != 1 and dd == 1 for kk, dd, _ in calls), calls  # no 1x1 and no dilated conv ran
    # 5x5 with batched inputs: the vmapped dimension folded into the channels, the physical channels-last kernels
    assert all(cl == (k == 5 and x_batched) for _, _, cl in calls), calls
    calls.clear()
    monkeypatch.setattr(F, "conv2d", lambda *a: calls.append((a[1].shape[-1], a[5], _physical_channels_last(a[0])))
                        or conv2d(*a))
    with torch.no_grad():  # no weight gradient to pay for: NCHW throughout, same values
        y0 = torch.func.vmap(fast, in_dims=(0, 0, 0 if x_batched else None))(wd, wp, x)
    monkeypatch.undo()
    assert calls and not any(cl for _, _, cl in calls), calls
    assert float((y0 - y.detach()).abs().max()) <= 1e-5 * float(y.detach().abs().max())
    want = torch.stack([plain(wd[i], wp[i], x[i] if x_batched else x) for i in range(n)])
    g = torch.randn(want.shape, generator=gen)
    for a, b in zip([y, *torch.autograd.grad(y, (x, wd, wp), g)], [want, *torch.autograd.grad(want, (x, wd, wp), g)]):
        assert a.shape == b.shape and float((a - b).detach().abs().max()) <= 1e-5 * float(b.detach().abs().max())


@pytest.mark.parametrize(("stride", "include_pad"), [(1, False), (2, False), (1, True)])
def test_avg_pool_rounds_like_pytorchs(stride: int, include_pad: bool) -> None:
    """The ones-kernel convolution is as close to the float64 pool as PyTorch's fp32 kernel (forward and input
    gradient): issue 23's suspected source of extra rounding is not one (the 4.0e-4 was a ReLU kink)."""
    gen = torch.Generator().manual_seed(stride)
    x = torch.randn(4, 8, 12, 12, generator=gen, dtype=torch.float64, requires_grad=True)
    ref = torch.nn.AvgPool2d(3, stride, 1, count_include_pad=include_pad)
    y64 = ref(x)
    g = torch.randn(y64.shape, generator=gen, dtype=torch.float64)
    (gx64,) = torch.autograd.grad(y64, x, g)
    errs = {}
    for name, pool in (("torch", torch.nn.AvgPool2d(3, stride, 1, count_include_pad=include_pad)),
                       ("nasfw", AvgPool2d(3, stride, 1, count_include_pad=include_pad))):
        x32 = x.detach().float().requires_grad_(True)
        y = pool(x32)
        (gx,) = torch.autograd.grad(y, x32, g.float())
        errs[name] = (float((y - y64).detach().abs().max()), float((gx.double() - gx64).abs().max()))
    eps = torch.finfo(torch.float32).eps
    for i in range(2):
        assert errs["nasfw"][i] <= max(2 * errs["torch"][i], 8 * eps), errs
