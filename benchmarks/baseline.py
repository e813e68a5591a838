"""The straightforward supernet the speed benchmarks compare against.

:func:`plain_copy` turns a nasfw DARTS or NB201 supernet into the reference codes' formulation with the
same weights: every edge is ``sum(w * op(x) for w, op in zip(weights, ops))`` in Python, `none` included,
every op computing its own ReLU, and PyTorch's own ``nn.AvgPool2d``. It is what DARTS' ``MixedOp`` and
NB201's ``SearchCell`` do (with partial channels and edge weights, what PC-DARTS' ``MixedOp`` and ``Cell``
do), and what the tests check the fast path against.
"""

from __future__ import annotations

import copy
import types

import torch
from torch import nn

from nasfw.fastops import AvgPool2d
from nasfw.supernet import channel_shuffle


def _mixed_op(edge: nn.Module, h: torch.Tensor, w: torch.Tensor, ks: list[int], partial: int,
              pool: nn.Module | None) -> torch.Tensor:
    """DARTS' ``MixedOp`` (``partial == 1``) or PC-DARTS' (``model_search.py``): the ops on the first C/K
    channels, the rest appended (max-pooled when the ops change the resolution), then channel shuffle."""
    if partial == 1:
        return sum(w[k] * edge[k](h) for k in ks)
    dim = h.shape[1]
    xtemp, xtemp2 = h[:, : dim // partial], h[:, dim // partial:]
    temp1 = sum(w[k] * edge[k](xtemp) for k in ks)
    ans = torch.cat([temp1, xtemp2 if temp1.shape[2] == h.shape[2] else pool(xtemp2)], dim=1)
    return channel_shuffle(ans, partial)


def _plain_darts_cell(self: nn.Module, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
                      active: list[list[int]], edge_weights: torch.Tensor | None = None) -> torch.Tensor:
    states = [self.preprocess0(s0), self.preprocess1(s1)]
    offset = 0
    for _ in range(self.steps):
        s = sum((1 if edge_weights is None else edge_weights[offset + j])
                * _mixed_op(self.edges[offset + j], h, weights[offset + j], active[offset + j], self.partial,
                            self.bypass_pool)
                for j, h in enumerate(states) if active[offset + j])
        offset += len(states)
        states.append(s)
    return torch.cat(states[-self.multiplier:], dim=1)


def _plain_nb201_cell(self: nn.Module, x: torch.Tensor, weights: torch.Tensor,
                      active: list[list[int]], edge_weights: torch.Tensor | None = None) -> torch.Tensor:
    from nasfw_space_nb201.cells import EDGES, NODES

    nodes = [x]
    for node in range(1, NODES):
        terms = [(1 if edge_weights is None else edge_weights[row])
                 * _mixed_op(self.edges[row], nodes[inp], weights[row], active[row], self.partial, None)
                 for row, (tgt, inp) in enumerate(EDGES) if tgt == node and active[row]]
        nodes.append(sum(terms) if terms else x.mul(0.0))
    return nodes[-1]


def plain_copy(supernet: nn.Module) -> nn.Module:
    """A deep copy of ``supernet`` (same weights, α, masks) running the plain per-edge Python sums."""
    net = copy.deepcopy(supernet, {id(supernet.weighting): supernet.weighting})  # weightings hold the registry
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, AvgPool2d):
                setattr(parent, name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding,
                                                   count_include_pad=child.count_include_pad))
    net.zero_ops = {}  # the reference computes `none` too
    net._active_cache = {}
    for cell in net.cells:
        if hasattr(cell, "preprocess0"):
            cell.forward = types.MethodType(_plain_darts_cell, cell)
        elif hasattr(cell, "edges"):  # an NB201 search cell (the residual blocks have none)
            cell.forward = types.MethodType(_plain_nb201_cell, cell)
    return net
