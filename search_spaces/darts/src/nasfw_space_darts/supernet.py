"""The DARTS search supernet: stem, 8 cells of mixed-op edges, global pooling and a classifier."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nasfw.components import EdgeWeighting
from nasfw.data import DataShape
from nasfw.fastops import apply_sharing_relu
from nasfw.supernet import Supernet
from nasfw_space_darts.ops import FactorizedReduce, ReLUConvBN, Zero

MakeOp = Callable[[str, int, int], nn.Module]  # (name, C, stride) -> module


class SearchCell(nn.Module):
    """A cell whose edge (row) carries one module per candidate op of that row."""

    def __init__(self, steps: int, multiplier: int, C_pp: int, C_p: int, C: int, reduction: bool,
                 reduction_prev: bool, edge_ops: list[list[str]], make_op: MakeOp):
        super().__init__()
        self.reduction, self.steps, self.multiplier, self.C = reduction, steps, multiplier, C
        self.preprocess0 = FactorizedReduce(C_pp, C, affine=False) if reduction_prev else \
            ReLUConvBN(C_pp, C, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(C_p, C, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList()
        row = 0
        for i in range(steps):
            for j in range(2 + i):
                stride = 2 if reduction and j < 2 else 1
                self.edges.append(nn.ModuleList(make_op(name, C, stride) for name in edge_ops[row]))
                row += 1


    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
                active: list[list[int]]) -> torch.Tensor:
        """Σ_j Σ_k w[j, k]·op_jk(h_j) per node, running only the ``active`` ops; relu(h_j) is shared by
        every op that starts with it, and each term is one fused multiply-add."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        relus: list[torch.Tensor | None] = [None, None]
        offset = 0
        for _ in range(self.steps):
            acc = None
            for j, h in enumerate(states):
                row = offset + j
                ops = self.edges[row]
                for k in active[row]:
                    out = apply_sharing_relu(ops[k], h, relus, j)
                    acc = out * weights[row, k] if acc is None else torch.addcmul(acc, weights[row, k], out)
            if acc is None:  # every input edge of this node is switched off
                n, _, hh, ww = states[1].shape
                acc = states[1].new_zeros(n, self.C, *(((hh + 1) // 2, (ww + 1) // 2) if self.reduction else (hh, ww)))
            offset += len(states)
            states.append(acc)
            relus.append(None)
        return torch.cat(states[-self.multiplier:], dim=1)


class DartsSupernet(Supernet):
    """Weight-sharing network over the DARTS cell space (α shared by cell type: normal, reduce)."""

    def __init__(self, shape: DataShape, weighting: EdgeWeighting, edge_ops: dict[str, list[list[str]]],
                 make_op: MakeOp, layers: int = 8, C: int = 16, steps: int = 4, multiplier: int = 4,
                 stem_multiplier: int = 3, alpha_init_std: float = 1e-3):
        k = max(len(r) for rows in edge_ops.values() for r in rows)
        super().__init__({name: (len(rows), k) for name, rows in edge_ops.items()}, weighting, alpha_init_std)
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
                              edge_ops["reduce" if reduction else "normal"], make_op)
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
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            key = "reduce" if cell.reduction else "normal"
            s0, s1 = s1, cell(s0, s1, weights[key], active[key])
        return self.classifier(self.global_pooling(s1).flatten(1))
