"""Saved activations kept as recipes (nasfw.recompute) in batched edges: the same gradients (first order,
retained graphs, double backward, under an outer pair of saved-tensor hooks), less saved memory, and inert where
it cannot apply (vmap, no grad)."""

from __future__ import annotations

import weakref

import pytest
import torch
from torch import nn

from nasfw import recompute
from nasfw.batched import EdgeBatch, mixed_edges

C = 4


def sep_conv(k: int, dilation: int = 1) -> nn.Sequential:
    """A DARTS-like separable convolution (ReLU, depthwise, 1x1, BN, ReLU, depthwise, 1x1, BN)."""
    pad = dilation * (k - 1) // 2
    return nn.Sequential(
        nn.ReLU(), nn.Conv2d(C, C, k, 1, pad, dilation, groups=C, bias=False), nn.Conv2d(C, C, 1, bias=False),
        nn.BatchNorm2d(C, affine=False), nn.ReLU(), nn.Conv2d(C, C, k, 1, pad, dilation, groups=C, bias=False),
        nn.Conv2d(C, C, 1, bias=False), nn.BatchNorm2d(C, affine=False))


def dil_conv(k: int) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(), nn.Conv2d(C, C, k, 1, k - 1, 2, groups=C, bias=False),
                         nn.Conv2d(C, C, 1, bias=False), nn.BatchNorm2d(C, affine=False))


class Cell(nn.Module):
    """Two inputs, two edges from each, four candidate ops per edge (3x3/5x5 separable, dilated, skip)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.ops = nn.ModuleList(nn.ModuleList([sep_conv(3), sep_conv(5), dil_conv(3), nn.Identity()])
                                 for _ in range(4))
        self.alpha = nn.Parameter(torch.randn(4, 4))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = mixed_edges([a, b], [(0, 0), (1, 0), (2, 1), (3, 1)], self.ops, [[0, 1, 2, 3]] * 4,
                          self.alpha.softmax(-1), EdgeBatch())
        return sum(out.values())


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return (torch.randn(2, C, 12, 12, generator=g, requires_grad=True),
            torch.randn(2, C, 12, 12, generator=g, requires_grad=True))


def _loss(cell: Cell, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (cell(a, b) * torch.linspace(-1, 1, 12)).pow(2).mean()


@pytest.fixture()
def off(monkeypatch: pytest.MonkeyPatch):
    """A context in which recipes are off (plain saving), to compare against."""
    def plain():
        monkeypatch.setattr(recompute, "usable", lambda *t: False)
        return monkeypatch.context()
    return plain


def _grads(cell: Cell, create_graph: bool = False) -> list[torch.Tensor]:
    a, b = _inputs()
    params = [a, b, *cell.parameters()]
    return list(torch.autograd.grad(_loss(cell, a, b), params, create_graph=create_graph))


def _saved_bytes(fn) -> int:
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def test_same_gradients_and_less_saved_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    cell = Cell()
    a, b = _inputs()
    with_recipes = _grads(cell)
    kept = _saved_bytes(lambda: _loss(cell, a, b))
    monkeypatch.setattr(recompute, "usable", lambda *t: False)
    plain = _grads(cell)
    kept_plain = _saved_bytes(lambda: _loss(cell, a, b))
    for g, p in zip(with_recipes, plain):
        torch.testing.assert_close(g, p, rtol=0, atol=0)  # rebuilt from the same inputs by the same kernels
    assert kept < 0.75 * kept_plain, (kept, kept_plain)


def test_outer_hooks_see_recipe_inputs_and_gradients_hold() -> None:
    """An outer hook that moves every saved tensor elsewhere (a clone, like offloading) gets the recipes'
    inputs too, and the rebuilt tensors come from its copies."""
    cell = Cell()
    expected = _grads(cell)
    packed: list[int] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        packed.append(t.numel())
        return t.clone()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        got = _grads(cell)
    assert packed
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=0, atol=0)


def test_retained_graph_and_double_backward_match(monkeypatch: pytest.MonkeyPatch) -> None:
    cell = Cell()
    a, b = _inputs()
    loss = _loss(cell, a, b)
    first = torch.autograd.grad(loss, list(cell.parameters()), retain_graph=True)
    again = torch.autograd.grad(loss, list(cell.parameters()))  # every recipe unpacked a second time
    for x, y in zip(first, again):
        torch.testing.assert_close(x, y, rtol=0, atol=0)

    def hvp() -> list[torch.Tensor]:  # a Hessian-vector product (GraSP's quantity) in α and the weights
        grads = _grads(cell, create_graph=True)
        dot = sum((g * torch.ones_like(g)).sum() for g in grads)
        return list(torch.autograd.grad(dot, [cell.alpha, *cell.ops[0][0].parameters()]))
    with_recipes = hvp()
    monkeypatch.setattr(recompute, "usable", lambda *t: False)
    for x, y in zip(with_recipes, hvp()):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-9)


def test_inert_without_grad_and_under_vmap() -> None:
    a, _ = _inputs()
    assert recompute.usable(a)
    with torch.no_grad():
        assert not recompute.usable(a)
    seen = []
    torch.func.vmap(lambda t: seen.append(recompute.usable(t)) or t)(a)
    assert seen == [False]


def test_views_of_a_registered_tensor_are_rebuilt_as_those_views() -> None:
    x = torch.randn(2, 3, 8, 8)
    with recompute.Scope() as scope:
        r = recompute.register(torch.relu(x), torch.relu, x)
        for view in (r, r[:, 1:], r[:, :, ::2, ::2], r.reshape(2, 3, 64).transpose(1, 2)):
            recipe = scope.recipe_of(view)
            assert recipe is not None
            torch.testing.assert_close(recipe(), view, rtol=0, atol=0)
        assert scope.recipe_of(x) is None  # not registered


def test_a_dead_registered_tensor_never_lends_its_recipe() -> None:
    with recompute.Scope() as scope:
        x = torch.randn(4, 4)
        r = recompute.register(x * 2, lambda t: t * 2, x)
        ptr = r.untyped_storage().data_ptr()
        del r
        for _ in range(10):  # an allocation that reuses the address must not match
            t = torch.empty(4, 4)
            if t.untyped_storage().data_ptr() == ptr:
                break
        assert scope.recipe_of(t) is None


def test_a_graph_dropped_without_backward_is_freed() -> None:
    """The hooks stored with saved tensors reach no scope: a scope's recipes hold tensors whose history reaches the
    nodes that saved them, and such a cycle through the C++ graph would never be freed (it once leaked every
    forward that was measured but not back-propagated)."""
    cell = Cell()
    a, b = _inputs()
    h = a * 1.0  # after the forward only the graph keeps it (the relu(h) recipe reads it)
    ref = weakref.ref(h)
    out = cell(h, b)
    del h
    assert ref() is not None
    del out
    assert ref() is None
