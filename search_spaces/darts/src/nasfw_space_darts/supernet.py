"""The DARTS search supernet: stem, 8 cells of mixed-op edges, global pooling and a classifier.

Options of PC-DARTS (Xu et al., ICLR 2020; yuhuixu1993/PC-DARTS ``model_search.py`` at b74702f): partial channel
connections (``partial_channels``) and edge normalisation (``edge_normalization``: β per edge, softmax over
each node's input edges, owned by :class:`nasfw.supernet.Supernet`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nasfw.batched import EdgeBatch, mixed_edges
from nasfw.components import EdgeWeighting
from nasfw.data import DataShape
from nasfw.supernet import Supernet, channel_shuffle
from nasfw.widening import PartialChannelCell
from nasfw_space_darts.ops import FactorizedReduce, ReLUConvBN, Zero

MakeOp = Callable[[str, int, int], nn.Module]  # (name, C, stride) -> module


class SearchCell(PartialChannelCell):
    """A cell whose edge (row) carries one module per candidate op of that row.

    With ``partial = K > 1`` (PC-DARTS' partial channel connections) the ops see only the first C/K
    channels of their input; the other channels bypass the ops (max-pooled 2×2 on stride-2 edges) and
    the edge's output is ``channel_shuffle(cat(mixed, bypass), K)``. ``set_partial`` widens it in place.
    """

    def __init__(self, steps: int, multiplier: int, C_pp: int, C_p: int, C: int, reduction: bool,
                 reduction_prev: bool, edge_ops: list[list[str]], make_op: MakeOp, partial: int = 1):
        super().__init__()
        self.init_partial(C, partial)
        self.reduction, self.steps, self.multiplier = reduction, steps, multiplier
        self.make_op, self.edge_names = make_op, edge_ops
        self.preprocess0 = FactorizedReduce(C_pp, C, affine=False) if reduction_prev else \
            ReLUConvBN(C_pp, C, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(C_p, C, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList()
        #: per row, (input state, target node); per state, the rows that read it
        self.row_io: list[tuple[int, int]] = []
        row = 0
        for i in range(steps):
            for j in range(2 + i):
                stride = 2 if reduction and j < 2 else 1
                self.edges.append(nn.ModuleList(make_op(name, C // partial, stride) for name in edge_ops[row]))
                self.row_io.append((j, 2 + i))
                row += 1
        self.rows_from = [[r for r, (j, _) in enumerate(self.row_io) if j == s] for s in range(2 + steps)]
        # PC-DARTS pools the bypassed channels of a stride-2 edge with MaxPool2d(2, 2); ceil_mode only
        # matters for odd sizes, where the official code fails to concatenate
        self.bypass_pool = nn.MaxPool2d(2, 2, ceil_mode=True) if partial > 1 and reduction else None

    def edge_op(self, row: int, index: int, width: int) -> nn.Module:
        stride = 2 if self.reduction and self.row_io[row][0] < 2 else 1
        return self.make_op(self.edge_names[row][index], width, stride)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor, active: list[list[int]],
                edge_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Node i = Σ_j e[j]·Σ_k w[j, k]·op_jk(h_j) over the ``active`` ops (e = the edge weights, 1 without
        edge normalisation). The edges from the two inputs to every node run first, batched op by op
        (:func:`nasfw.batched.mixed_edges`), then those of each new node to the later nodes."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        coeffs = weights if edge_weights is None else weights * edge_weights.to(weights.dtype).unsqueeze(1)
        ctx = EdgeBatch()
        terms: dict[int, list[tuple[int, torch.Tensor]]] = {2 + i: [] for i in range(self.steps)}
        cp = self.C // self.partial

        def run(block: list[int]) -> None:
            inputs = [states[j][:, :cp] if self.partial > 1 else states[j] for j in block]
            edges = [(r, b) for b, j in enumerate(block) for r in self.rows_from[j]]
            for r, y in mixed_edges(inputs, edges, self.edges, active, coeffs, ctx).items():
                terms[self.row_io[r][1]].append((r, y))

        run([0, 1])
        bypass: dict[int, torch.Tensor] = {}
        for node in range(2, 2 + self.steps):
            states.append(self._node(node, terms[node], states, edge_weights, bypass))
            if node < 1 + self.steps:
                run([node])
        return torch.cat(states[-self.multiplier:], dim=1)

    def _node(self, node: int, terms: list[tuple[int, torch.Tensor]], states: list[torch.Tensor],
              edge_weights: torch.Tensor | None, bypass: dict[int, torch.Tensor]) -> torch.Tensor:
        if not terms:  # every input edge of this node is switched off
            n, _, hh, ww = states[1].shape
            return states[1].new_zeros(n, self.C, *(((hh + 1) // 2, (ww + 1) // 2) if self.reduction else (hh, ww)))
        acc = terms[0][1]
        for _, y in terms[1:]:
            acc = acc + y
        if self.partial == 1:
            return acc
        cp = self.C // self.partial
        by = None
        for r, _ in terms:  # an edge with no active op is off: its bypassed channels are dropped too
            j = self.row_io[r][0]
            if j not in bypass:
                rest = states[j][:, cp:]
                bypass[j] = self.bypass_pool(rest) if self.bypass_pool is not None and j < 2 else rest
            if edge_weights is None:
                by = bypass[j] if by is None else by + bypass[j]
            else:
                e = edge_weights[r].to(acc.dtype)
                by = bypass[j] * e if by is None else torch.addcmul(by, e, bypass[j])
        return channel_shuffle(torch.cat([acc, by], dim=1), self.partial)


class DartsSupernet(Supernet):
    """Weight-sharing network over the DARTS cell space (α shared by cell type: normal, reduce)."""

    def __init__(self, shape: DataShape, weighting: EdgeWeighting, edge_ops: dict[str, list[list[str]]],
                 make_op: MakeOp, layers: int = 8, C: int = 16, steps: int = 4, multiplier: int = 4,
                 stem_multiplier: int = 3, alpha_init_std: float = 1e-3, partial_channels: int = 1,
                 edge_normalization: bool = False):
        k = max(len(r) for rows in edge_ops.values() for r in rows)
        groups, offset = [], 0
        for i in range(steps):
            groups.append(list(range(offset, offset + 2 + i)))
            offset += 2 + i
        super().__init__({name: (len(rows), k) for name, rows in edge_ops.items()}, weighting, alpha_init_std,
                         edge_groups={name: groups for name in edge_ops} if edge_normalization else None)
        for name, rows in edge_ops.items():
            avail = torch.zeros(len(rows), k, dtype=torch.bool)
            for i, r in enumerate(rows):
                avail[i, : len(r)] = True
            self.set_mask(name, avail)
        c_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(shape.channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            cell = SearchCell(steps, multiplier, c_pp, c_p, c_curr, reduction, reduction_prev,
                              edge_ops["reduce" if reduction else "normal"], make_op, partial_channels)
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, multiplier * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, shape.num_classes)
        for name in edge_ops:  # `none` adds exact zeros (and gets exact-zero gradient): never run it
            cell = next((c for c in self.cells if c.reduction == (name == "reduce")), None)
            if cell is not None:
                zero = torch.zeros(len(edge_ops[name]), k, dtype=torch.bool)
                for r, row in enumerate(cell.edges):
                    for j, op in enumerate(row):
                        zero[r, j] = isinstance(op, Zero)
                self.zero_ops[name] = zero

    def compile_units(self) -> list[nn.Module]:
        return list(self.cells)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.mixing_weights()
        active = self.active_ops(weights)
        edges = self.edge_weights()
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            key = "reduce" if cell.reduction else "normal"
            s0, s1 = s1, cell(s0, s1, weights[key], active[key], edges.get(key))
        return self.classifier(self.global_pooling(s1).flatten(1))
