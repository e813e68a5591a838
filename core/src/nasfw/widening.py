"""Widening partial channel connections in place (Net2WiderNet-style), for schedules that change K mid-search.

A partial-channel cell (PC-DARTS' ``K``) runs its edge ops on the first C/K channels of each input. A schedule
that lowers K mid-search (DrNAS' progressive run: K 6 → 4) must rebuild every edge op at the wider width and keep
what was trained: the old channels keep their tensors, each new channel starts as a copy of a randomly chosen
trained one (the replication of Chen et al.'s Net2WiderNet, as DrNAS' ``net2wider.py``), and the weight
optimizer's state (momentum) is widened the same way. A cell records its K in a buffer, so a checkpoint written
after widening rebuilds the cell at that width before its tensors load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import chain

import torch
from torch import nn

#: old parameter -> (its wider replacement, the map that widens any tensor of the old parameter's shape)
Widening = dict[nn.Parameter, tuple[nn.Parameter, Callable[[torch.Tensor], torch.Tensor]]]


def _tensors(m: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    return chain(m.named_parameters(), m.named_buffers())


def widen_into(old: nn.Module, new: nn.Module, generator: torch.Generator | None = None) -> Widening:
    """Copy ``old``'s tensors into ``new`` (the same op built wider) and return the parameter mapping.

    Along every dimension that grew, the old entries come first and each new entry copies a randomly chosen old
    one. The choice is drawn once per (old size, new size) pair of the op, so dimensions that index the same
    channels (a depthwise filter's output, the pointwise conv's input after it, the BN after that) copy the same
    channels, and the op's new channels start as replicas of trained ones.
    """
    olds, news = dict(_tensors(old)), dict(_tensors(new))
    if olds.keys() != news.keys():
        raise ValueError(f"cannot widen {type(old).__name__} into {type(new).__name__}: their tensors differ "
                         f"({sorted(olds.keys() ^ news.keys())})")
    choice: dict[tuple[int, int], torch.Tensor] = {}

    def index(o: int, n: int) -> torch.Tensor:
        if (o, n) not in choice:
            extra = torch.randint(0, o, (n - o,), generator=generator)
            choice[(o, n)] = torch.cat([torch.arange(o), extra])
        return choice[(o, n)]

    def expander(old_shape: torch.Size, new_shape: torch.Size) -> Callable[[torch.Tensor], torch.Tensor]:
        if len(old_shape) != len(new_shape) or any(o > n for o, n in zip(old_shape, new_shape)):
            raise ValueError(f"cannot widen a tensor of shape {tuple(old_shape)} to {tuple(new_shape)}")
        steps = [(d, index(o, n)) for d, (o, n) in enumerate(zip(old_shape, new_shape)) if o != n]

        def expand(t: torch.Tensor) -> torch.Tensor:
            for d, idx in steps:
                t = t.index_select(d, idx.to(t.device))
            return t
        return expand

    mapping: Widening = {}
    params = dict(old.named_parameters())
    with torch.no_grad():
        for name, t in olds.items():
            target = news[name]
            fn = expander(t.shape, target.shape)
            target.copy_(fn(t))
            if name in params:
                target.requires_grad_(t.requires_grad)
                mapping[params[name]] = (target, fn)  # type: ignore[assignment]
    return mapping


def remap_optimizer(opt: torch.optim.Optimizer, mapping: Widening) -> None:
    """Point ``opt`` at the widened parameters, widening each one's state tensors (momentum, Adam moments)."""
    for group in opt.param_groups:
        group["params"] = [mapping[p][0] if p in mapping else p for p in group["params"]]
    for p, (q, fn) in mapping.items():
        state = opt.state.pop(p, None)
        if state:
            opt.state[q] = {k: fn(v) if torch.is_tensor(v) and v.shape == p.shape else v for k, v in state.items()}


class PartialChannelCell(nn.Module):
    """Base of a search cell whose edge ops see the first ``C // partial`` channels of their inputs.

    Subclasses set ``self.edges`` (rows of op modules) and implement :meth:`edge_op`, which builds the op of a
    row at a width; :meth:`set_partial` then widens the cell in place.
    """

    edges: nn.ModuleList

    def init_partial(self, C: int, partial: int) -> None:
        """Call first in ``__init__``: the width bookkeeping (and, with K > 1, the checkpointed K)."""
        self.C, self.partial = C, partial
        if partial > 1:
            self.register_buffer("partial_k", torch.tensor(partial))
        self.register_load_state_dict_pre_hook(_restore_width)

    def edge_op(self, row: int, index: int, width: int) -> nn.Module:
        """The ``index``-th op of edge ``row`` built fresh at ``width`` channels."""
        raise NotImplementedError(f"{type(self).__name__} cannot rebuild its ops at another width")

    def set_partial(self, partial: int, generator: torch.Generator | None = None) -> Widening:
        """Widen every edge op to ``C // partial`` channels (``partial`` ≤ the current K, dividing C)."""
        if partial == self.partial:
            return {}
        if partial > self.partial or self.C % partial:
            raise ValueError(f"partial channels can only be widened to a K that divides C = {self.C} and is at "
                             f"most the current K = {self.partial}; got {partial}")
        mapping: Widening = {}
        for r, row in enumerate(self.edges):
            for j, op in enumerate(row):
                new = self.edge_op(r, j, self.C // partial)
                ref = next(_tensors(op), (None, None))[1]
                if ref is not None:
                    new = new.to(ref.device)
                    if ref.is_floating_point():
                        new = new.to(ref.dtype)
                new.train(op.training)
                mapping.update(widen_into(op, new, generator))
                row[j] = new
        self.partial = partial
        if hasattr(self, "partial_k"):
            self.partial_k.fill_(partial)
        return mapping


def _restore_width(cell: PartialChannelCell, state_dict: dict, prefix: str, *args: object) -> None:
    """Load pre-hook: a checkpoint of a widened cell rebuilds this cell at its width before the tensors load."""
    k = state_dict.get(prefix + "partial_k")
    if k is None:
        return
    if int(k) != cell.partial:  # the loaded tensors overwrite the replicas: a fixed local stream, the global intact
        cell.set_partial(int(k), torch.Generator().manual_seed(0))
    if not hasattr(cell, "partial_k"):  # a cell built without partial channels reads a K = 1 checkpoint
        del state_dict[prefix + "partial_k"]
