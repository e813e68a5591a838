"""Max-W against its closed form, and its gradient (w_max not detached) against finite differences."""

from __future__ import annotations

import pytest
import torch

from nasfw.testing import check_edge_weighting
from nasfw_sharpdarts.weighting import MaxW, max_w


def closed_form(alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(alpha)
    for r in range(alpha.shape[0]):
        idx = mask[r].nonzero().flatten()
        if len(idx) == 0:
            continue
        e = torch.exp(alpha[r, idx] - alpha[r, idx].max())
        w = e / e.sum()
        out[r, idx] = 1 - w.max() + w
    return out


def test_maxw_equals_closed_form_and_strongest_gets_one():
    g = torch.Generator().manual_seed(0)
    alpha = torch.randn(6, 8, generator=g, dtype=torch.float64)
    mask = torch.rand(6, 8, generator=g) > 0.3
    mask[0] = True
    mask[5] = False
    got = MaxW()(alpha, mask)
    torch.testing.assert_close(got, closed_form(alpha, mask), rtol=1e-12, atol=1e-14)
    top = torch.where(mask[0], alpha[0], torch.tensor(-1e9, dtype=alpha.dtype)).argmax()
    assert got[0, top] == pytest.approx(1.0)
    assert bool((got[~mask] == 0).all()) and bool((got[mask] <= 1 + 1e-12).all())
    uniform = MaxW()(torch.zeros(2, 5), torch.ones(2, 5, dtype=torch.bool))
    assert bool((uniform == 1).all())  # at uniform init the mixed op is the plain sum of all ops


def test_maxw_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(1)
    alpha = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1, 3:] = False
    v = torch.randn(3, 5, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: (max_w(a, mask) * v).sum(), (alpha,), eps=1e-6, atol=1e-8)
    # central differences by hand, and the detached variant really differs (w_max carries gradient)
    (grad,) = torch.autograd.grad((max_w(alpha, mask) * v).sum(), alpha)
    (grad_det,) = torch.autograd.grad((max_w(alpha, mask, detach_max=True) * v).sum(), alpha)
    eps = 1e-6
    fd = torch.zeros_like(alpha)
    with torch.no_grad():
        for i in range(3):
            for j in range(5):
                d = torch.zeros_like(alpha)
                d[i, j] = eps
                fd[i, j] = ((max_w(alpha + d, mask) * v).sum() - (max_w(alpha - d, mask) * v).sum()) / (2 * eps)
    torch.testing.assert_close(grad, fd, rtol=1e-6, atol=1e-8)
    assert not torch.allclose(grad, grad_det)


def test_maxw_strength_is_softmax_and_contract():
    alpha = torch.tensor([[0.3, -0.2, 1.0]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    torch.testing.assert_close(MaxW().strength(alpha, mask), torch.softmax(alpha, -1))
    check_edge_weighting("max-w")
    check_edge_weighting("max-w", {"detach_max": True})
