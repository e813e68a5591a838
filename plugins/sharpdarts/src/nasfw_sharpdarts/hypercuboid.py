"""Differentiable Hyperparameter Grid Search ("HyperCuboid", sharpDARTS §3.7 of our methods note).

Discrete hyperparameters become a full grid of parallel candidate ops: for every layer l and
sub-layer (stride 1, then stride 2) there is one op per (C_in, C_out, op type), with channel counts
Cs = 2^(⌊log2 C⌋ + i), i = 0..steps−1 (C = 36, steps = 4: {32, 64, 128, 256}) and layers/2 layers.
All ops of a (sub-layer, C_out) are summed into that C_out's node; the next sub-layer reads those
nodes. One architecture row per (layer, stride) block holds |Cs|²·|ops| weights, so the edge
weighting's per-row softmax (and Max-W's w_max) is over the whole block, as in the official code.
An op runs only while its softmax weight exceeds 1/(block size)² unless ``always_apply_ops``.

Every channel count has its own stem (conv 3×3 + BN, all applied to the input); each final node goes
through SharpSepConv(c → head_channels), the results are summed, pooled and classified.

The grid ops' BN is affine by default, as in the official code: ``MULTICHANNELNET_OPS`` hard-codes
``affine=True`` and the ``False`` that ``MultiChannelNetwork`` passes as fourth argument lands in the
lambdas' unused ``C_mid`` (ahundt/sharpDARTS 6f593d4 ``cnn/operations.py``, ``cnn/model_search.py``). That
gives the official parameter count, 8,930,122 at the defaults; ``affine=false`` (8,845,642) is DARTS'
convention for search supernets.

The final model is the heaviest path through the weighted DAG (the official code's networkx
``dag_longest_path``): one stem width, then one (C_in → C_out, op) per sub-layer with C_in equal to
the previous C_out, maximising the sum of the chosen weights. We solve it exactly by dynamic
programming over the chain (the DAG is layered, so that is the longest path).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from pydantic import Field, model_validator
from torch import nn

from nasfw.builtin.weightings import masked_softmax
from nasfw.components import Edge, EdgeWeighting, SearchSpace, StrictModel
from nasfw.data import DataShape
from nasfw.errors import ConfigError, GenotypeError
from nasfw.genotype import Genotype, GenotypeEdge
from nasfw.supernet import Supernet
from nasfw_sharpdarts.ops import OPS, SharpSepConv
from nasfw_sharpdarts.presets import HYPERCUBOID_PRESETS

CELL = "grid"


class HyperCuboidConfig(StrictModel):
    init_channels: int = Field(default=36, ge=1, description="C: the channel set starts at 2^floor(log2 C)")
    steps: int = Field(default=4, ge=1, description="number of channel counts (doublings)")
    layers: int = Field(default=8, ge=2, description="cell layers; the grid has layers/2 (stride 1, stride 2) layers")
    op_types: list[str] = Field(default_factory=lambda: ["max_pool_3x3", "sep_conv_3x3"], min_length=1,
                                description="op types of every grid cell (genotype names)")
    op_impl: dict[str, str] = Field(
        default_factory=lambda: {"max_pool_3x3": "sharp_max_pool_3x3", "sep_conv_3x3": "sharp_sep_conv_3x3"},
        description="op type -> registered operation (C_in, C_out, stride, affine) implementing it")
    head_channels: int = Field(default=768, ge=1, description="width of the SharpSepConv head")
    always_apply_ops: bool = Field(default=False, description="run every op, not only those above 1/(block size)^2")
    affine: bool = Field(default=True, description="BN of the grid ops with learnable scale and shift, as the "
                                                   "official MULTICHANNELNET_OPS build them (false: DARTS' "
                                                   "affine-free search BN)")
    alpha_init_std: float = Field(default=1e-3, ge=0)

    @model_validator(mode="after")
    def _check(self) -> HyperCuboidConfig:
        if len(set(self.op_types)) != len(self.op_types):
            raise ValueError("op_types has duplicates")
        if any(c in op for op in self.op_types for c in "@-> "):
            raise ValueError("op_types names may not contain '@', '-', '>' or spaces")
        return self


def column_name(op: str, c_in: int, c_out: int) -> str:
    return f"{op}@{c_in}-{c_out}"


def split_name(name: str) -> tuple[str, int, int]:
    """``op@Cin-Cout`` -> (op, C_in, C_out); GenotypeError when malformed."""
    try:
        op, chans = name.split("@")
        c_in, c_out = chans.split("-")
        return op, int(c_in), int(c_out)
    except ValueError:
        raise GenotypeError(f"'{name}' is not a HyperCuboid op (expected 'op@C_in-C_out', e.g. "
                            f"'sep_conv_3x3@32-64')") from None


class HyperCuboidSpace(SearchSpace):
    """A grid of (C_in, C_out, op) candidates per (layer, stride); the model is the heaviest path."""

    Config = HyperCuboidConfig
    config: HyperCuboidConfig
    presets = HYPERCUBOID_PRESETS

    # -- structure -----------------------------------------------------------------------
    def channels(self) -> list[int]:
        base = self.config.init_channels.bit_length() - 1  # floor(log2 C), exact for ints
        return [2 ** (base + i) for i in range(self.config.steps)]

    def rows(self) -> int:
        """(layer, stride) blocks: 2 per layer, stride 1 first."""
        return 2 * (self.config.layers // 2)

    def columns(self) -> list[tuple[str, int, int]]:
        """(op, C_in, C_out) of each column, in C_in, C_out, op order (the official tensor layout)."""
        cs = self.channels()
        return [(op, ci, co) for ci in cs for co in cs for op in self.config.op_types]

    def decisions(self) -> dict[str, list[Edge]]:
        names = tuple(column_name(*c) for c in self.columns())
        return {CELL: [Edge(node=r + 1, input=r, ops=names) for r in range(self.rows())]}

    @staticmethod
    def stride(row: int) -> int:
        return 1 if row % 2 == 0 else 2

    def op_factory(self, op: str) -> Any:
        impl = self.config.op_impl.get(op, op)
        if self.ctx is not None:
            return self.ctx.registry.get("operation", impl)
        if impl not in OPS:
            raise ConfigError(f"operation '{impl}' is unknown without a registry")
        return OPS[impl]

    def check(self) -> None:
        for op in self.config.op_types:
            self.op_factory(op)

    def size(self) -> int | None:
        if self.members is not None:
            return len(self.members)
        table = self.op_table()[CELL]
        cs = self.channels()
        idx = {c: i for i, c in enumerate(cs)}
        count = [1] * len(cs)  # chains ending at each width (the stem picks any)
        for r in range(self.rows()):
            new = [0] * len(cs)
            for k, (_, ci, co) in enumerate(self.columns()):
                if bool(table[r, k]):
                    new[idx[co]] += count[idx[ci]]
            count = new
        return sum(count)

    # -- discretization: heaviest path -------------------------------------------------------
    def discretize(self, scores: dict[str, torch.Tensor]) -> Genotype:
        """The chain maximising the sum of its scores, C_in of each sub-layer = C_out of the previous one."""
        s = scores[CELL].detach().double().cpu()
        table = self.op_table()[CELL]
        cols = self.columns()
        cs = self.channels()
        idx = {c: i for i, c in enumerate(cs)}
        best = [0.0] * len(cs)
        back: list[list[int | None]] = []
        for r in range(self.rows()):
            new: list[float] = [float("-inf")] * len(cs)
            arg: list[int | None] = [None] * len(cs)
            for k, (_, ci, co) in enumerate(cols):
                if not bool(table[r, k]) or best[idx[ci]] == float("-inf"):
                    continue
                v = best[idx[ci]] + float(s[r, k])
                if v == float("-inf") or math.isnan(v):
                    continue
                if arg[idx[co]] is None or v > new[idx[co]]:  # strict: ties keep the first column
                    new[idx[co]], arg[idx[co]] = v, k
            best = new
            back.append(arg)
        end = max((i for i in range(len(cs)) if back[-1][i] is not None), key=lambda i: best[i], default=None)
        if end is None:
            raise GenotypeError(f"space '{self.name or 'hypercuboid'}': no path through the grid has finite scores")
        chosen: list[int] = []
        width = end
        for r in reversed(range(self.rows())):
            k = back[r][width]
            assert k is not None
            chosen.append(k)
            width = idx[cols[k][1]]
        chosen.reverse()
        names = [column_name(*cols[k]) for k in chosen]
        return Genotype(space=self.name or "hypercuboid",
                        cells={CELL: [GenotypeEdge(node=r + 1, input=r, op=n) for r, n in enumerate(names)]})

    def path(self, genotype: Genotype) -> list[tuple[str, int, int, int]]:
        """(op, C_in, C_out, stride) of each sub-layer; GenotypeError unless it is a chain."""
        edges = sorted(genotype.cells.get(CELL, []), key=lambda e: e.node)
        if set(genotype.cells) != {CELL} or [(e.input, e.node) for e in edges] != [
                (r, r + 1) for r in range(len(edges))] or not edges:
            raise GenotypeError(f"a HyperCuboid genotype is one chain of edges r->r+1 in cell '{CELL}'")
        out = []
        for r, e in enumerate(edges):
            op, ci, co = split_name(e.op)
            if out and out[-1][2] != ci:
                raise GenotypeError(f"sub-layer {r} reads {ci} channels but the previous one writes {out[-1][2]}")
            out.append((op, ci, co, self.stride(r)))
        return out

    # -- text forms ------------------------------------------------------------------------
    def format(self, genotype: Genotype) -> str:
        """``op@Cin-Cout > op@Cin-Cout > ...`` (stride 1, stride 2, stride 1, ...)."""
        return " > ".join(e.op for e in sorted(genotype.cells.get(CELL, []), key=lambda e: e.node))

    def parse(self, text: str) -> Genotype:
        names = [t.strip() for t in text.split(">") if t.strip()]
        if not names:
            raise GenotypeError("empty HyperCuboid path; expected 'op@Cin-Cout > op@Cin-Cout > ...'")
        for n in names:
            split_name(n)
        g = Genotype(space=self.name or "hypercuboid",
                     cells={CELL: [GenotypeEdge(node=r + 1, input=r, op=n) for r, n in enumerate(names)]})
        self.path(g)
        return g

    # -- networks ------------------------------------------------------------------------
    def build_supernet(self, shape: DataShape, weighting: EdgeWeighting) -> HyperCuboidSupernet:
        self.check()
        c = self.config
        cols = self.columns()

        def make(r: int, k: int) -> nn.Module:
            op, ci, co = cols[k]
            return self.op_factory(op)(ci, co, self.stride(r), c.affine)

        grid = [[make(r, k) for k in range(len(cols))] for r in range(self.rows())]
        return HyperCuboidSupernet(shape, weighting, self.channels(), cols, grid, c.head_channels,
                                   c.always_apply_ops, c.alpha_init_std)

    def build_network(self, genotype: Genotype, shape: DataShape, head_channels: int | None = None,
                      **_: Any) -> HyperCuboidNetwork:
        """The chain network of a path (the only architecture options are the path's)."""
        path = self.path(genotype)
        for op, *_rest in path:
            try:
                self.op_factory(op)
            except Exception:
                raise GenotypeError(f"unknown operation '{op}' in genotype") from None
        ops = [self.op_factory(op)(ci, co, stride, True) for op, ci, co, stride in path]
        return HyperCuboidNetwork(shape, path[0][1], ops, path[-1][2], head_channels or self.config.head_channels)


def _stem(in_channels: int, c: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))


class HyperCuboidSupernet(Supernet):
    """The whole grid: stems per width, one op per (sub-layer, C_in, C_out, op type), summed per C_out."""

    def __init__(self, shape: DataShape, weighting: EdgeWeighting, channels: list[int],
                 columns: list[tuple[str, int, int]], grid: list[list[nn.Module]], head_channels: int,
                 always_apply_ops: bool = False, alpha_init_std: float = 1e-3):
        super().__init__({CELL: (len(grid), len(columns))}, weighting, alpha_init_std)
        self.channels = list(channels)
        idx = {c: i for i, c in enumerate(channels)}
        self.col_in = [idx[ci] for _, ci, _ in columns]
        self.col_out = [idx[co] for _, _, co in columns]
        self.always_apply_ops = always_apply_ops
        self.min_score = 1.0 / len(columns) ** 2
        self.stem = nn.ModuleList(_stem(shape.channels, c) for c in channels)
        self.grid = nn.ModuleList(nn.ModuleList(row) for row in grid)
        self.head = nn.ModuleList(SharpSepConv(c, head_channels, 3, 1, 1) for c in channels)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(head_channels, shape.num_classes)
        self.head_channels = head_channels

    def _active(self, weights: torch.Tensor) -> list[list[int]]:
        """Columns to run per row: masked off, below the official min score, or exactly zero without grad skip."""
        on = self.mask(CELL).cpu().clone()
        if CELL in self._override or not torch.is_grad_enabled():
            on &= weights.detach().cpu() != 0
        if not self.always_apply_ops and CELL not in self._override:
            with torch.no_grad():
                soft = masked_softmax(self.alphas[CELL], self.mask(CELL)).cpu()
            on &= soft > self.min_score
        return [row.nonzero().flatten().tolist() for row in on]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.mixing_weights()[CELL]
        active = self._active(w)
        states: list[torch.Tensor | None] = [stem(x) for stem in self.stem]
        for r, ops in enumerate(self.grid):
            new: list[torch.Tensor | None] = [None] * len(self.channels)
            for k in active[r]:
                h = states[self.col_in[k]]
                if h is None:
                    continue
                out = w[r, k] * ops[k](h)
                o = self.col_out[k]
                prev = new[o]
                new[o] = out if prev is None else prev + out
            states = new
        feats = [head(h) for head, h in zip(self.head, states) if h is not None]
        if feats:
            pooled = self.global_pooling(sum(feats[1:], feats[0])).flatten(1)
        else:  # every path switched off: only the classifier's bias remains
            pooled = x.new_zeros(x.shape[0], self.head_channels)
        return self.classifier(pooled)


class HyperCuboidNetwork(nn.Module):
    """The extracted path: stem, one op per sub-layer, SharpSepConv head, pooling, classifier."""

    def __init__(self, shape: DataShape, c_stem: int, ops: list[nn.Module], c_last: int, head_channels: int):
        super().__init__()
        self.drop_path_prob = 0.0  # set by trainers; a chain has no drop path
        self.stem = _stem(shape.channels, c_stem)
        self.ops = nn.Sequential(*ops)
        self.head = SharpSepConv(c_last, head_channels, 3, 1, 1)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(head_channels, shape.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.global_pooling(self.head(self.ops(self.stem(x)))).flatten(1))
