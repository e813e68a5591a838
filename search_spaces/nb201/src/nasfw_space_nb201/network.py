"""The NB201 macro skeleton, with a fixed cell (stand-alone network) or mixed-op cells (supernet).

Skeleton (NAS-Bench-201 §2.1): 3×3 conv stem + BN; three stages of N cells at C, 2C, 4C channels,
separated by residual basic blocks of stride 2; BN + ReLU, global average pooling, linear classifier.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from nasfw.components import EdgeWeighting
from nasfw.data import DataShape
from nasfw.fastops import apply_sharing_relu
from nasfw.supernet import Supernet
from nasfw_space_nb201.cells import CELL, EDGES, NODES
from nasfw_space_nb201.ops import ResNetBasicBlock, make_op


def _skeleton(in_channels: int, C: int, N: int,
              make_cell: Callable[[int], nn.Module]) -> tuple[nn.Module, nn.ModuleList, int]:
    stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
    cells = nn.ModuleList()
    c_prev = C
    for stage in range(3):
        c = C * 2**stage
        if stage > 0:
            cells.append(ResNetBasicBlock(c_prev, c, 2))
        cells.extend(make_cell(c) for _ in range(N))
        c_prev = c
    return stem, cells, c_prev


class InferCell(nn.Module):
    """A fixed NB201 cell; ``none`` edges are dropped (they add exact zeros)."""

    def __init__(self, ops: Sequence[str], C: int):
        super().__init__()
        kept = [(k, op) for k, op in enumerate(ops) if op != "none"]
        self.ops = nn.ModuleList(make_op(op, C, affine=True, track_running_stats=True) for _, op in kept)
        self.edges = [EDGES[k] for k, _ in kept]  # (node, input) per kept op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x] + [None] * (NODES - 1)
        for op, (node, inp) in zip(self.ops, self.edges):
            h = nodes[inp]
            if h is None:  # the input node only receives `none` edges: it is zero, so is this term
                continue
            out = op(h)
            nodes[node] = out if nodes[node] is None else nodes[node] + out
        last = nodes[-1]
        return last if last is not None else x.mul(0.0)


class NB201Network(nn.Module):
    """The stand-alone NB201 network of one cell (``TinyNetwork`` in the benchmark's code)."""

    def __init__(self, ops: Sequence[str], shape: DataShape, C: int = 16, N: int = 5):
        super().__init__()
        self.stem, self.cells, c_last = _skeleton(shape.channels, C, N, lambda c: InferCell(ops, c))
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_last), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_last, shape.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.classifier(self.global_pooling(self.lastact(x)).flatten(1))


class SearchCell(nn.Module):
    """A cell whose six edges carry one module per candidate op; ``none`` gets no module (it adds zeros)."""

    def __init__(self, ops: Sequence[str], C: int, track_running_stats: bool):
        super().__init__()
        self.edges = nn.ModuleList()
        for _ in EDGES:
            self.edges.append(nn.ModuleList(
                make_op(op, C, affine=False, track_running_stats=track_running_stats) for op in ops))

    def forward(self, x: torch.Tensor, weights: torch.Tensor, active: list[list[int]]) -> torch.Tensor:
        """Σ w·op(h) per edge over the ``active`` ops; relu(h) is computed once per node for every op
        that starts with it, and each term is one fused multiply-add."""
        nodes: list[torch.Tensor | None] = [x] + [None] * (NODES - 1)
        relus: list[torch.Tensor | None] = [None] * NODES
        for row, (node, inp) in enumerate(EDGES):
            h = nodes[inp]
            if h is None:
                continue
            ops = self.edges[row]
            for k in active[row]:
                out = apply_sharing_relu(ops[k], h, relus, inp)
                acc = nodes[node]
                nodes[node] = out * weights[row, k] if acc is None else torch.addcmul(acc, weights[row, k], out)
        last = nodes[-1]
        return last if last is not None else x.mul(0.0)


class NB201Supernet(Supernet):
    """Weight-sharing NB201 network: one α table ``cell`` of shape (6, |ops|) shared by all 15 cells.

    As in the reference search code, cell BN is affine-free (and by default keeps no running
    statistics); the stem, residual blocks and final BN are ordinary affine layers.
    """

    def __init__(self, shape: DataShape, weighting: EdgeWeighting, ops: Sequence[str], C: int = 16, N: int = 5,
                 track_running_stats: bool = False, alpha_init_std: float = 1e-3):
        super().__init__({CELL: (len(EDGES), len(ops))}, weighting, alpha_init_std)
        self.op_names = tuple(ops)
        #: ops that contribute exactly zero (and whose weight gets exactly zero gradient): never run
        self.zero_ops[CELL] = torch.tensor([op == "none" for op in ops], dtype=torch.bool).repeat(len(EDGES), 1)
        self.stem, self.cells, c_last = _skeleton(shape.channels, C, N,
                                                  lambda c: SearchCell(ops, c, track_running_stats))
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_last), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_last, shape.num_classes)

    def compile_units(self) -> list[nn.Module]:
        return [c for c in self.cells if isinstance(c, SearchCell)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.mixing_weights()[CELL]
        active = self.active_ops({CELL: weights})[CELL]
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x, weights, active) if isinstance(cell, SearchCell) else cell(x)
        return self.classifier(self.global_pooling(self.lastact(x)).flatten(1))
