"""The NB201 macro skeleton, with a fixed cell (stand-alone network) or mixed-op cells (supernet).

Skeleton (NAS-Bench-201 §2.1): 3×3 conv stem + BN; three stages of N cells at C, 2C, 4C channels,
separated by residual basic blocks of stride 2; BN + ReLU, global average pooling, linear classifier.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from nasfw.batched import EdgeBatch, mixed_edges
from nasfw.components import EdgeWeighting
from nasfw.data import DataShape
from nasfw.supernet import Supernet, channel_shuffle
from nasfw.widening import PartialChannelCell
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


class SearchCell(PartialChannelCell):
    """A cell whose six edges carry one module per candidate op; ``none`` gets no module output (it adds zeros).

    With ``partial = K > 1`` (PC-DARTS' partial channels) the ops see the first C/K channels of their input,
    the rest bypass them, and each edge's output is ``channel_shuffle(cat(mixed, bypass), K)``.
    """

    def __init__(self, ops: Sequence[str], C: int, track_running_stats: bool, partial: int = 1):
        super().__init__()
        self.init_partial(C, partial)
        self.op_names, self.track_running_stats = tuple(ops), track_running_stats
        self.edges = nn.ModuleList()
        for _ in EDGES:
            self.edges.append(nn.ModuleList(
                make_op(op, C // partial, affine=False, track_running_stats=track_running_stats) for op in ops))
        self.rows_from = [[r for r, (_, inp) in enumerate(EDGES) if inp == s] for s in range(NODES)]

    def edge_op(self, row: int, index: int, width: int) -> nn.Module:
        return make_op(self.op_names[index], width, affine=False, track_running_stats=self.track_running_stats)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, active: list[list[int]],
                edge_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Σ w·op(h) per edge over the ``active`` ops, the edges of each node to all later nodes batched op by
        op (:func:`nasfw.batched.mixed_edges`); e·(...) per edge with edge weights e."""
        coeffs = weights if edge_weights is None else weights * edge_weights.to(weights.dtype).unsqueeze(1)
        ctx = EdgeBatch()
        cp = self.C // self.partial
        nodes: list[torch.Tensor | None] = [x] + [None] * (NODES - 1)
        terms: list[list[tuple[int, torch.Tensor]]] = [[] for _ in range(NODES)]
        for node in range(NODES):
            if node > 0:
                nodes[node] = self._node(terms[node], nodes, edge_weights)
            h = nodes[node]
            if h is None or not self.rows_from[node]:
                continue
            inp = h[:, :cp] if self.partial > 1 else h
            for r, y in mixed_edges([inp], [(r, 0) for r in self.rows_from[node]], self.edges, active, coeffs,
                                    ctx).items():
                terms[EDGES[r][0]].append((r, y))
        last = nodes[-1]
        return last if last is not None else x.mul(0.0)

    def _node(self, terms: list[tuple[int, torch.Tensor]], nodes: list[torch.Tensor | None],
              edge_weights: torch.Tensor | None) -> torch.Tensor | None:
        if not terms:
            return None
        acc = terms[0][1]
        for _, y in terms[1:]:
            acc = acc + y
        if self.partial == 1:
            return acc
        by = None
        for r, _ in terms:  # an edge with no active op is off: its bypassed channels are dropped too
            rest = nodes[EDGES[r][1]][:, self.C // self.partial:]  # type: ignore[index]
            if edge_weights is None:
                by = rest if by is None else by + rest
            else:
                e = edge_weights[r].to(acc.dtype)
                by = rest * e if by is None else torch.addcmul(by, e, rest)
        return channel_shuffle(torch.cat([acc, by], dim=1), self.partial)


class NB201Supernet(Supernet):
    """Weight-sharing NB201 network: one α table ``cell`` of shape (6, |ops|) shared by all 15 cells.

    As in the reference search code, cell BN is affine-free (and by default keeps no running
    statistics); the stem, residual blocks and final BN are ordinary affine layers.
    """

    def __init__(self, shape: DataShape, weighting: EdgeWeighting, ops: Sequence[str], C: int = 16, N: int = 5,
                 track_running_stats: bool = False, alpha_init_std: float = 1e-3, partial_channels: int = 1,
                 edge_normalization: bool = False):
        groups = [[r for r, (node, _) in enumerate(EDGES) if node == n] for n in range(1, NODES)]
        super().__init__({CELL: (len(EDGES), len(ops))}, weighting, alpha_init_std,
                         edge_groups={CELL: groups} if edge_normalization else None)
        self.op_names = tuple(ops)
        #: ops that contribute exactly zero (and whose weight gets exactly zero gradient): never run
        self.zero_ops[CELL] = torch.tensor([op == "none" for op in ops], dtype=torch.bool).repeat(len(EDGES), 1)
        self.stem, self.cells, c_last = _skeleton(shape.channels, C, N,
                                                  lambda c: SearchCell(ops, c, track_running_stats, partial_channels))
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_last), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_last, shape.num_classes)

    def compile_units(self) -> list[nn.Module]:
        return [c for c in self.cells if isinstance(c, SearchCell)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.mixing_weights()[CELL]
        active = self.active_ops({CELL: weights})[CELL]
        edges = self.edge_weights().get(CELL)
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x, weights, active, edges) if isinstance(cell, SearchCell) else cell(x)
        return self.classifier(self.global_pooling(self.lastact(x)).flatten(1))
