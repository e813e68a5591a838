"""Saved activations that are cheap to rebuild: autograd keeps the recipe, not the tensor.

A batched supernet cell saves, for its backward pass, tensors that are cheap functions of tensors it keeps
anyway: ``relu(h)`` of a state ``h`` (a ReLU's output), that ReLU output repeated once per edge (the stacked
input of a grouped depthwise convolution), its channels-last or polyphase copy, and ``relu(bn(x))`` whose BN
input ``x`` the BatchNorm keeps. Inside a :class:`Scope`, a tensor registered with a :class:`Recipe` is packed
as that recipe (plus the view of it that was saved) and rebuilt, under ``no_grad``, when the backward pass
reads it: the same values, the same graph (autograd re-attaches the saved tensor's own history), less memory,
a few memory-bound kernels more in the backward pass.

A recipe names the tensors it reads; they are saved like any other saved tensor, so an outer pair of
saved-tensor hooks (offloading, or the benchmarks' accounting of what is kept) sees them, and sees every tensor
saved without a recipe. A scope is inert (ordinary saving) under ``torch.func`` transforms, ``torch.compile``
tracing and with grad disabled.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import torch

_current: ContextVar[Scope | None] = ContextVar("nasfw_recompute_scope", default=None)


@dataclass(frozen=True)
class Recipe:
    """``fn(*inputs)`` rebuilds a tensor exactly; ``inputs`` are tensors (or None) that are kept anyway."""

    fn: Callable[..., torch.Tensor]
    inputs: tuple[torch.Tensor | None, ...]

    def __call__(self) -> torch.Tensor:
        return self.fn(*self.inputs)

    def then(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Recipe:
        inner = self.fn
        return Recipe(lambda *ins: fn(inner(*ins)), self.inputs)


def combine(parts: Sequence[Recipe], fn: Callable[[list[torch.Tensor]], torch.Tensor]) -> Recipe:
    """One recipe from several: ``fn([part() for part in parts])``."""
    fns = [p.fn for p in parts]
    bounds, n = [], 0
    for p in parts:
        bounds.append((n, n + len(p.inputs)))
        n += len(p.inputs)
    return Recipe(lambda *ins: fn([f(*ins[a:b]) for f, (a, b) in zip(fns, bounds)]),
                  tuple(t for p in parts for t in p.inputs))


def _whole(t: torch.Tensor) -> bool:
    """t starts its storage and covers it exactly (a rebuilt tensor then has the same storage layout)."""
    return t.storage_offset() == 0 and t.untyped_storage().nbytes() == t.numel() * t.element_size()


@dataclass
class _Packed:
    """A saved tensor as its base's recipe and the view of that base that was saved."""

    fn: Callable[..., torch.Tensor]
    inputs: tuple[Any, ...]  # the recipe's inputs, each packed by the outer hooks when there are any
    outer_unpack: Callable[[Any], torch.Tensor] | None
    size: tuple[int, ...]
    stride: tuple[int, ...]
    offset: int

    def unpack(self) -> torch.Tensor:
        ins = self.inputs if self.outer_unpack is None else \
            tuple(None if p is None else self.outer_unpack(p) for p in self.inputs)
        with torch.no_grad():
            base = self.fn(*ins)
        return base.as_strided(self.size, self.stride, self.offset)


class Scope:
    """Recipes of the tensors one cell forward registers, keyed by storage (views of them match too)."""

    def __init__(self) -> None:
        self._recipes: dict[int, tuple[weakref.ref, Recipe]] = {}
        self._outer: tuple[Callable, Callable] | None = None
        self._pending: tuple[tuple[int, ...], Recipe] | None = None

    def register(self, t: torch.Tensor, recipe: Recipe) -> None:
        if _whole(t):
            self._recipes[t.untyped_storage().data_ptr()] = (weakref.ref(t), recipe)

    def _base(self, t: torch.Tensor) -> tuple[torch.Tensor, Recipe] | None:
        hit = self._recipes.get(t.untyped_storage().data_ptr())
        if hit is None:
            return None
        base = hit[0]()
        if base is None or base.untyped_storage().data_ptr() != t.untyped_storage().data_ptr() \
                or base.dtype != t.dtype:
            return None  # the registered tensor died (its address may be reused), or a reinterpreting view
        return base, hit[1]

    def recipe_of(self, t: torch.Tensor) -> Recipe | None:
        """A recipe that rebuilds ``t`` itself (a registered tensor or a view of one), or None."""
        hit = self._base(t)
        if hit is None:
            return None
        base, recipe = hit
        if t.shape == base.shape and t.stride() == base.stride() and t.storage_offset() == 0:
            return recipe
        size, stride, offset = tuple(t.shape), t.stride(), t.storage_offset()
        return recipe.then(lambda b: b.as_strided(size, stride, offset))

    def pack(self, t: torch.Tensor) -> Any:
        pending, self._pending = self._pending, None
        if pending is not None and _whole(t) and tuple(t.shape) == pending[0]:
            self.register(t, pending[1])  # the output an op saves while it runs (see :func:`output_of`)
        hit = self._base(t)
        outer = self._outer
        if hit is None:
            return t if outer is None else _Outer(outer[0](t), outer[1])
        recipe = hit[1]
        inputs = recipe.inputs if outer is None else tuple(None if k is None else outer[0](k) for k in recipe.inputs)
        return _Packed(recipe.fn, inputs, None if outer is None else outer[1], tuple(t.shape), t.stride(),
                       t.storage_offset())

    def __enter__(self) -> Scope:
        self._token = _current.set(self)
        self._outer = torch._C._autograd._top_saved_tensors_default_hooks(False)
        self._hooks = torch.autograd.graph.saved_tensors_hooks(_pack, _unpack)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hooks.__exit__(*exc)
        _current.reset(self._token)


# The hooks autograd stores with every saved tensor hold no reference to a Scope: a scope's recipes hold
# tensors whose history reaches the nodes that saved them, and a cycle through the C++ graph would never be
# freed (a forward whose graph is dropped without a backward pass, or a backward limited to some ``inputs``).
def _pack(t: torch.Tensor) -> Any:
    s = _current.get()
    return t if s is None else s.pack(t)


@dataclass
class _Outer:
    payload: Any
    unpack: Callable[[Any], torch.Tensor]


def _unpack(p: Any) -> torch.Tensor:
    if isinstance(p, _Packed):
        return p.unpack()
    if isinstance(p, _Outer):
        return p.unpack(p.payload)
    return p


def usable(*inputs: torch.Tensor) -> bool:
    """Whether a scope over an op on ``inputs`` would do anything (see the module docstring)."""
    if not torch.is_grad_enabled() or not torch._C._autograd._saved_tensors_hooks_is_enabled():
        return False
    if torch.compiler.is_compiling():
        return False
    return not any(torch._C._functorch.is_functorch_wrapped_tensor(t) for t in inputs)


def register(t: torch.Tensor, fn: Callable[..., torch.Tensor], *inputs: torch.Tensor | None) -> torch.Tensor:
    """In an active scope, save ``t`` as ``fn(*inputs)`` (which must rebuild it exactly, from tensors that are
    kept anyway); returns ``t``."""
    s = _current.get()
    if s is not None:
        s.register(t, Recipe(fn, inputs))
    return t


def recipe_of(t: torch.Tensor) -> Recipe | None:
    s = _current.get()
    return None if s is None else s.recipe_of(t)


def register_recipe(t: torch.Tensor, recipe: Recipe) -> torch.Tensor:
    s = _current.get()
    if s is not None:
        s.register(t, recipe)
    return t


def output_of(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, recipe: Recipe) -> torch.Tensor:
    """``fn(x)`` for an op that saves its own output (ReLU) while it runs, registered with ``recipe``; the op's
    output is packed before this function could register it, so the first tensor of ``x``'s shape it saves
    takes the recipe."""
    s = _current.get()
    if s is None:
        return fn(x)
    s._pending = (tuple(x.shape), recipe)
    try:
        out = fn(x)
    finally:
        s._pending = None
    s.register(out, recipe)
    return out


def derive(out: torch.Tensor, inp: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``out = fn(inp)`` (a copy: a layout change, a re-arrangement, an activation); if ``inp`` has a recipe, so
    has ``out``. Returns ``out``."""
    recipe = recipe_of(inp)
    if recipe is not None:
        register_recipe(out, recipe.then(fn))
    return out
