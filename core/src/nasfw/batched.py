"""Batched mixed edges: the same candidate op on several edges of a cell, run as one larger op.

A cell supernet computes, on every edge ``r`` that reads input state ``h``, the mixed output
``Σ_k c[r, k]·op_rk(h)``. Every state feeds several edges, and every edge carries the same candidate ops
with weights of its own. :func:`mixed_edges` groups the ops of all edges that read the same input(s) by
structure and runs each group as one operation over the edges' concatenated channels:

* a convolution whose input is shared gets the edges' filters concatenated along its output channels
  (one dense convolution); a grouped (e.g. depthwise) convolution runs once over the edges' stacked
  inputs with ``groups × edges`` groups; after the first layer every tensor is stacked (edge-major
  channel blocks) and every later layer is one grouped convolution / one BatchNorm over all channels;
* BatchNorm runs once over the concatenated channels (each channel is normalised with its own batch
  statistics, exactly as before) and writes the running statistics back to each edge's module;
* parameter-free ops that act channel by channel (ReLU and other activations, pooling, identity) run
  once per input state, not once per edge, and a BatchNorm without affine parameters that follows
  them in training mode is shared too (same input, same batch statistics);
* the mixing coefficient of an op that ends in BatchNorm is folded into that BatchNorm's scale, so
  autograd keeps no copy of the op's output for ``dL/dc`` (its input is kept anyway).

Per edge and channel the arithmetic is that of running the ops one by one; only the kernels' blocking
and the order of the final sums differ (fp32 rounding). Modules are read at call time (weights,
buffers, train/eval flags), so ``torch.func.functional_call``, ``load_state_dict`` and swapped modules
work; a module the engine does not recognise runs edge by edge, as before. A candidate op class can
take part by defining ``batch_signature(self)`` (a hashable, equal for ops that can be stacked, or
``None``) and a classmethod ``batch_forward(cls, ops, x, scale, ctx)``; see the DARTS space's
``FactorizedReduce``. Plain ``nn.BatchNorm2d`` only: subclasses (e.g. global-batch BN under torchrun)
run edge by edge.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nasfw import recompute
from nasfw.fastops import AvgPool2d, after_leading_relu, depthwise_conv2d, pointwise_conv2d, starts_with_relu

#: activations applied element by element (parameter-free): shared inputs stay shared
_ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.ELU, nn.LeakyReLU, nn.Hardswish,
                nn.Hardtanh, nn.Softplus, nn.Mish)


@dataclass(frozen=True)
class Shared:
    """Per-edge inputs that are a few distinct tensors: edge ``e`` reads ``xs[src[e]]`` (``src`` sorted)."""

    xs: tuple[torch.Tensor, ...]
    src: tuple[int, ...]

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Shared:
        return Shared(tuple(fn(x) for x in self.xs), self.src)


@dataclass(frozen=True)
class Stacked:
    """Per-edge tensors concatenated along channels, edge-major: ``t[:, e*C:(e+1)*C]`` is edge ``e``'s."""

    t: torch.Tensor
    edges: int

    @property
    def channels(self) -> int:
        return self.t.shape[1] // self.edges

    def view5(self) -> torch.Tensor:
        """``(N, edges, C, H, W)``."""
        n, _, *hw = self.t.shape
        return self.t.view(n, self.edges, self.channels, *hw)


Act = Shared | Stacked


def _plain_sequential(m: nn.Module) -> bool:
    return isinstance(m, nn.Sequential) and type(m).forward is nn.Sequential.forward and len(m) > 0


def batch_signature(m: nn.Module) -> Hashable | None:
    """A key equal for modules that :func:`mixed_edges` can run stacked, or ``None`` (run edge by edge)."""
    t = type(m)
    if _plain_sequential(m):
        subs = tuple(batch_signature(c) for c in m)
        return None if any(s is None for s in subs) else ("seq", subs)
    if isinstance(m, nn.Conv2d):
        if t.forward is not nn.Conv2d.forward or t._conv_forward is not nn.Conv2d._conv_forward \
                or m.padding_mode != "zeros" or isinstance(m.padding, str):
            return None
        return ("conv", m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups,
                m.bias is not None)
    if t is nn.BatchNorm2d:
        if m.momentum is None:  # cumulative averages depend on each module's own count
            return None
        return ("bn", m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats, m.training)
    if isinstance(m, _ELEMENTWISE):
        if getattr(m, "inplace", False) or t.forward is not _base_forward(m):
            return None
        return ("act", t, m.extra_repr())
    if isinstance(m, nn.MaxPool2d):
        if t.forward is not nn.MaxPool2d.forward or m.return_indices:
            return None
        return ("pool", t, m.extra_repr())
    if isinstance(m, nn.AvgPool2d):
        if t.forward is not nn.AvgPool2d.forward and t.forward is not AvgPool2d.forward:
            return None
        return ("pool", t, m.extra_repr())
    if isinstance(m, nn.Identity) and t.forward is nn.Identity.forward:
        return ("id",)
    custom = getattr(m, "batch_signature", None)
    if custom is not None and hasattr(t, "batch_forward"):
        sig = custom()
        return None if sig is None else ("custom", t, sig)
    return None


def _base_forward(m: nn.Module) -> Callable:
    for base in _ELEMENTWISE:
        if isinstance(m, base):
            return base.forward
    raise TypeError(type(m))


class EdgeBatch:
    """The per-forward context of :func:`mixed_edges`: runs module groups and caches shared results.

    One instance serves a whole cell forward, so relu(h), pooled states and stacked inputs computed for
    one group of ops are reused by the others.
    """

    def __init__(self) -> None:
        self._cache: dict[Hashable, tuple[object, torch.Tensor]] = {}
        self._scope = recompute.Scope()

    def saving(self, inputs: Sequence[torch.Tensor]) -> contextlib.AbstractContextManager:
        """Where it applies (:func:`nasfw.recompute.usable`), the ReLU outputs, stacked inputs and ReLU-of-BN
        outputs of this cell are saved for backward as recipes (:mod:`nasfw.recompute`)."""
        return self._scope if recompute.usable(*inputs) else contextlib.nullcontext()

    def cached(self, key: Hashable, keep: object, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        """``fn()`` once per ``key``; ``keep`` (the inputs the key names by id) is held so ids stay unique."""
        hit = self._cache.get(key)
        if hit is None:
            hit = (keep, fn())
            self._cache[key] = hit
        return hit[1]

    def relu(self, x: torch.Tensor) -> torch.Tensor:
        """relu(x), once per tensor (shared with the edge-by-edge fallback)."""
        def build() -> torch.Tensor:
            return recompute.output_of(torch.relu, x, recompute.Recipe(torch.relu, (x,)))  # x is kept anyway
        return self.cached(("act", nn.ReLU, "", id(x)), x, build)

    def elementwise(self, m: nn.Module, sig: Hashable, x: Act) -> Act:
        """A parameter-free per-channel op (activation, pooling): once per distinct input."""
        if isinstance(x, Stacked):
            recipe = recompute.recipe_of(x.t) if type(m) is nn.ReLU else None
            if recipe is not None:  # relu(bn(y)): rebuilt from y, which the BN keeps
                return Stacked(recompute.output_of(m, x.t, recipe.then(torch.relu)), x.edges)
            return Stacked(recompute.derive(m(x.t), x.t, m), x.edges)
        if type(m) is nn.ReLU:
            return x.map(self.relu)
        return x.map(lambda t: self.cached((sig, id(t)), t, lambda: m(t)))

    def stack(self, x: Act) -> Stacked:
        """The per-edge inputs concatenated (the stacked input a grouped convolution needs)."""
        if isinstance(x, Stacked):
            return x
        key = ("stack", tuple(map(id, x.xs)), x.src)

        def build() -> torch.Tensor:
            # rebuilt from the inputs' own recipes (relu(h) from h), else from the inputs (fewer than the copies)
            parts = [recompute.recipe_of(t) or recompute.Recipe(_same, (t,)) for t in x.xs]
            src = x.src
            return recompute.register_recipe(_stacked(x.xs, src),
                                             recompute.combine(parts, lambda ts: _stacked(ts, src)))
        return Stacked(self.cached(key, x.xs, build), len(x.src))

    # -- layers --------------------------------------------------------------------------------
    def conv(self, convs: Sequence[nn.Conv2d], x: Act) -> Stacked:
        m = convs[0]
        bias = torch.cat([c.bias for c in convs]) if m.bias is not None else None
        w = torch.cat([c.weight for c in convs])
        if isinstance(x, Shared) and m.groups == 1:  # shared input: one dense conv per input, filters stacked
            if len(x.xs) == 1:
                return Stacked(_conv(x.xs[0], w, bias, m, 1), len(convs))
            outs, start = [], 0
            co = m.out_channels
            for s, xs in enumerate(x.xs):
                n = x.src.count(s)
                if n:
                    sl = slice(start * co, (start + n) * co)
                    outs.append(_conv(xs, w[sl], None if bias is None else bias[sl], m, 1))
                    start += n
            return Stacked(torch.cat(outs, dim=1), len(convs))
        st = self.stack(x)
        return Stacked(_conv(st.t, w, bias, m, st.edges), st.edges)

    def batch_norm(self, bns: Sequence[nn.BatchNorm2d], x: Act, scale: torch.Tensor | None) -> tuple[Act, bool]:
        """BatchNorm of every edge at once; ``scale`` (per edge) is folded into the affine scale."""
        m = bns[0]
        batch_stats = m.training or not m.track_running_stats
        if isinstance(x, Shared) and batch_stats and not m.affine:
            return self._shared_batch_norm(bns, x), False
        st = self.stack(x)
        c = m.num_features
        weight = torch.cat([b.weight for b in bns]) if m.affine else None
        bias = torch.cat([b.bias for b in bns]) if m.affine else None
        if scale is not None:
            s = scale.repeat_interleave(c)
            weight = s if weight is None else weight * s
            bias = None if bias is None else bias * s
        update = m.training and m.track_running_stats
        rm = rv = None
        if m.track_running_stats:
            rm = torch.cat([b.running_mean for b in bns])
            rv = torch.cat([b.running_var for b in bns])
        out = F.batch_norm(st.t, rm, rv, weight, bias, batch_stats, m.momentum, m.eps)
        if batch_stats and not torch.is_autocast_enabled(out.device.type):  # its input is kept for backward
            eps = m.eps
            recompute.register(out, lambda t, w, b: F.batch_norm(t, None, None, w, b, True, 0.0, eps), st.t, weight,
                               bias)
        if update:
            with torch.no_grad():
                torch._foreach_copy_([b.running_mean for b in bns], list(rm.split(c)))
                torch._foreach_copy_([b.running_var for b in bns], list(rv.split(c)))
                torch._foreach_add_([b.num_batches_tracked for b in bns], 1)
        return Stacked(out, st.edges), scale is not None

    def _shared_batch_norm(self, bns: Sequence[nn.BatchNorm2d], x: Shared) -> Shared:
        """Affine-free BN with batch statistics of a shared input: one output per input; every edge's running
        statistics get the same update its own module would have made."""
        m = bns[0]
        update = m.training and m.track_running_stats
        outs = []
        for s, xs in enumerate(x.xs):
            mods = [b for b, src in zip(bns, x.src) if src == s]
            if not mods:
                outs.append(xs)
                continue
            first = mods[0]
            outs.append(F.batch_norm(xs, first.running_mean if update else None,
                                     first.running_var if update else None, None, None, True, m.momentum, m.eps))
            if update:
                with torch.no_grad():
                    if len(mods) > 1:
                        # in the running statistics' dtype (fp32 buffers, bf16 activations under autocast)
                        var, mean = torch.var_mean(xs.detach().to(first.running_mean.dtype), dim=(0, 2, 3),
                                                   correction=1)
                        torch._foreach_lerp_([b.running_mean for b in mods[1:]], [mean] * (len(mods) - 1),
                                             m.momentum)
                        torch._foreach_lerp_([b.running_var for b in mods[1:]], [var] * (len(mods) - 1),
                                             m.momentum)
                    torch._foreach_add_([b.num_batches_tracked for b in mods], 1)
        return Shared(tuple(outs), x.src)

    def run(self, mods: Sequence[nn.Module], x: Act, scale: torch.Tensor | None = None,
            sig: Hashable | None = None) -> tuple[Act, bool]:
        """Modules of one signature (one per edge of ``x``) on ``x``; returns the result and whether ``scale``
        was folded in (only a final BatchNorm folds it)."""
        sig = batch_signature(mods[0]) if sig is None else sig
        assert sig is not None
        kind = sig[0]
        m = mods[0]
        if kind == "seq":
            n = len(m)
            folded = False
            for i, sub in enumerate(sig[1]):
                x, folded = self.run([mod[i] for mod in mods], x, scale if i == n - 1 else None, sub)
            return x, folded
        if kind == "conv":
            return self.conv(mods, x), False
        if kind == "bn":
            return self.batch_norm(mods, x, scale)
        if kind in ("act", "pool"):
            return self.elementwise(m, sig, x), False
        if kind == "id":
            return x, False
        if kind == "custom":
            return type(m).batch_forward(mods, x, scale, self)
        raise AssertionError(kind)


def _same(t: torch.Tensor) -> torch.Tensor:
    return t


def _stacked(xs: Sequence[torch.Tensor], src: tuple[int, ...]) -> torch.Tensor:
    if len(xs) == 1:
        return xs[0].repeat(1, len(src), 1, 1)
    return torch.cat([xs[s] for s in src], dim=1)


def _conv(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, m: nn.Conv2d, edges: int) -> torch.Tensor:
    """``edges`` stacked copies of conv ``m`` (weights ``w``, ``bias``) on ``x``: depthwise and 1×1 convolutions
    through :mod:`nasfw.fastops` (oneDNN's fast CPU kernels), the rest as one grouped convolution."""
    groups = m.groups * edges
    if m.kernel_size == (1, 1) and m.stride == (1, 1) and m.padding == (0, 0):
        return pointwise_conv2d(x, w, bias, groups)
    if m.groups == m.in_channels == m.out_channels and w.shape[0] == x.shape[1]:  # (1-channel: dense, stacked)
        y = depthwise_conv2d(x, w, m.stride, m.padding, m.dilation)
        return y if bias is None else y + bias.view(1, -1, 1, 1)
    return F.conv2d(x, w, bias, m.stride, m.padding, m.dilation, groups)


def _scaled(x: Act, scale: torch.Tensor, folded: bool) -> list[tuple[int, torch.Tensor]]:
    """Per input source, ``(source, (N, E_s, C, H, W) contribution)`` of an op group's result."""
    if isinstance(x, Stacked):
        v = x.view5()
        if not folded:
            v = v * scale.view(1, -1, 1, 1, 1).to(v.dtype)
        return [(-1, v)]
    out = []
    start = 0
    for s, xs in enumerate(x.xs):
        n = x.src.count(s)
        if n:
            c = scale[start:start + n].view(1, n, 1, 1, 1).to(xs.dtype)
            out.append((s, (xs.unsqueeze(1), c)))
            start += n
    return out


def mixed_edges(inputs: Sequence[torch.Tensor], edges: Sequence[tuple[int, int]],
                ops: Sequence[Sequence[nn.Module]], active: Sequence[Sequence[int]], coeffs: torch.Tensor,
                ctx: EdgeBatch | None = None) -> dict[int, torch.Tensor]:
    """``{row: Σ_k coeffs[row, k]·ops[row][k](inputs[i])}`` for the ``edges`` ``(row, i)`` that have an active op.

    ``active[row]`` lists the op columns to run (:meth:`nasfw.supernet.Supernet.active_ops`); rows without
    one are absent from the result. Ops of equal :func:`batch_signature` on these edges run as one stacked
    op; the rest run edge by edge (sharing relu(h) with :func:`nasfw.fastops.after_leading_relu`). Pass one
    :class:`EdgeBatch` to every call of one cell forward so that shared results are reused.
    """
    ctx = EdgeBatch() if ctx is None else ctx
    with ctx.saving(inputs):
        return _mixed_edges(inputs, edges, ops, active, coeffs, ctx)


def _mixed_edges(inputs: Sequence[torch.Tensor], edges: Sequence[tuple[int, int]],
                 ops: Sequence[Sequence[nn.Module]], active: Sequence[Sequence[int]], coeffs: torch.Tensor,
                 ctx: EdgeBatch) -> dict[int, torch.Tensor]:
    groups: dict[Hashable, list[tuple[int, int, int]]] = {}
    single: list[tuple[int, int, int]] = []
    for row, i in sorted(edges, key=lambda e: e[1]):
        for k in active[row]:
            sig = batch_signature(ops[row][k])
            (single if sig is None else groups.setdefault(sig, [])).append((row, k, i))
    out: dict[int, torch.Tensor] = {}

    def add(row: int, t: torch.Tensor) -> None:
        out[row] = t if row not in out else out[row] + t

    buckets: dict[tuple[int, ...], torch.Tensor] = {}  # rows of a source's edges -> (N, E_s, C, H, W) sum
    for sig, items in groups.items():
        rows = [r for r, _, _ in items]
        srcs = tuple(i for _, _, i in items)
        used = sorted(set(srcs))
        x = Shared(tuple(inputs[i] for i in used), tuple(used.index(i) for i in srcs))
        scale = coeffs[torch.tensor(rows, device=coeffs.device), torch.tensor([k for _, k, _ in items],
                                                                              device=coeffs.device)]
        res, folded = ctx.run([ops[r][k] for r, k, _ in items], x, scale, sig)
        parts = _scaled(res, scale, folded)
        if parts[0][0] == -1:  # stacked: split by source
            v = parts[0][1]
            sizes = [srcs.count(i) for i in used]
            chunks = v.split(sizes, dim=1) if len(sizes) > 1 else (v,)
            start = 0
            for n, chunk in zip(sizes, chunks):
                key = tuple(rows[start:start + n])
                start += n
                buckets[key] = chunk if key not in buckets else buckets[key] + chunk
        else:
            start = 0
            for _, (xs, c) in parts:
                n = c.shape[1]
                key = tuple(rows[start:start + n])
                start += n
                if key in buckets:
                    buckets[key] = torch.addcmul(buckets[key], xs, c)
                else:
                    buckets[key] = xs * c
    for key, v in buckets.items():
        for row, t in zip(key, v.unbind(1)):
            add(row, t)
    for row, k, i in single:
        op, h = ops[row][k], inputs[i]
        y = after_leading_relu(op, ctx.relu(h)) if starts_with_relu(op) else op(h)
        w = coeffs[row, k]
        out[row] = y * w if row not in out else torch.addcmul(out[row], w, y)
    return out
