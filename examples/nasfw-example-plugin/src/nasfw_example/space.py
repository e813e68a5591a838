"""A MobileNetV2-style chain space: per-layer kernel size and expansion ratio (+ skip), ProxylessNAS layout.

Each searchable layer is an inverted-residual block (Sandler et al., 2018: 1x1 expansion → kxk
depthwise → 1x1 linear projection, residual when the shape is kept). The choices per layer are the
kernel size in ``kernel_sizes`` (3, 5, 7) and the expansion ratio in ``expand_ratios`` (3, 6), plus
``skip`` (the identity) on layers that keep the shape — the mobile space of ProxylessNAS / FBNet-like
methods and the kind of space LISSNAS's ImageNet result is searched in (the exact LISSNAS space is not
published; see README). The default layout is ProxylessNAS's: stem 32, a fixed k3 e1 block of 16,
stages of widths 24-40-80-96-192-320 with 4-4-4-4-4-1 layers, a 1280-channel head.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import torch
from pydantic import Field, model_validator
from torch import nn

from nasfw.components import Edge, EdgeWeighting, SearchSpace, StrictModel
from nasfw.data import DataShape
from nasfw.errors import GenotypeError
from nasfw.genotype import Genotype, GenotypeEdge
from nasfw.supernet import Supernet

CELL = "layers"
SKIP = "skip"

#: The ``mbv2-tiny`` preset: 4 searchable layers on 8x8 inputs, for CPU tests.
TINY: dict[str, Any] = {"stem_channels": 8, "stem_stride": 1, "first_channels": 8, "widths": [8, 16],
                        "depths": [2, 2], "strides": [1, 2], "last_channels": 32}


class MobileChainConfig(StrictModel):
    stem_channels: int = Field(default=32, ge=1, description="channels of the 3x3 stem conv")
    stem_stride: int = Field(default=2, ge=1, le=2, description="stride of the stem (1 for tiny images)")
    first_channels: int = Field(default=16, ge=1, description="the fixed k3 e1 block after the stem")
    widths: list[int] = Field(default_factory=lambda: [24, 40, 80, 96, 192, 320], min_length=1)
    depths: list[int] = Field(default_factory=lambda: [4, 4, 4, 4, 4, 1], min_length=1)
    strides: list[int] = Field(default_factory=lambda: [2, 2, 2, 1, 2, 1], min_length=1,
                               description="stride of each stage's first layer")
    kernel_sizes: list[int] = Field(default_factory=lambda: [3, 5, 7], min_length=1)
    expand_ratios: list[int] = Field(default_factory=lambda: [3, 6], min_length=1)
    allow_skip: bool = Field(default=True, description="offer the identity on layers that keep the shape")
    last_channels: int = Field(default=1280, ge=1, description="channels of the 1x1 head conv")
    alpha_init_std: float = Field(default=1e-3, ge=0)

    @model_validator(mode="after")
    def _check(self) -> MobileChainConfig:
        if not len(self.widths) == len(self.depths) == len(self.strides):
            raise ValueError("widths, depths and strides need one entry per stage")
        if any(w < 1 for w in self.widths) or any(d < 1 for d in self.depths) or any(s not in (1, 2)
                                                                                      for s in self.strides):
            raise ValueError("widths and depths must be >= 1 and strides 1 or 2")
        if any(k < 1 or k % 2 == 0 for k in self.kernel_sizes) or len(set(self.kernel_sizes)) != len(self.kernel_sizes):
            raise ValueError("kernel_sizes must be distinct odd numbers")
        if any(e < 1 for e in self.expand_ratios) or len(set(self.expand_ratios)) != len(self.expand_ratios):
            raise ValueError("expand_ratios must be distinct and >= 1")
        return self


def op_name(kernel: int, expand: int) -> str:
    return f"k{kernel}_e{expand}"


def parse_op(name: str) -> tuple[int, int]:
    """``k5_e6`` → (5, 6)."""
    k, e = name.split("_")
    return int(k[1:]), int(e[1:])


class InvertedResidual(nn.Module):
    """MobileNetV2's block: [1x1 expand, BN, ReLU6] → kxk depthwise, BN, ReLU6 → 1x1 project, BN (+ x)."""

    def __init__(self, c_in: int, c_out: int, stride: int, kernel: int, expand: int):
        super().__init__()
        hidden = c_in * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        layers += [nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
                   nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
                   nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


def make_op(name: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    if name == SKIP:
        if stride != 1 or c_in != c_out:
            raise GenotypeError(f"'skip' needs a layer that keeps the shape, not {c_in}->{c_out} stride {stride}")
        return nn.Identity()
    kernel, expand = parse_op(name)
    return InvertedResidual(c_in, c_out, stride, kernel, expand)


class _Body(nn.Module):
    """Stem → fixed first block → ``layers`` → 1x1 head conv → pooling → classifier."""

    def __init__(self, cfg: MobileChainConfig, shape: DataShape, layers: nn.ModuleList, dropout: float = 0.0):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(shape.channels, cfg.stem_channels, 3, cfg.stem_stride, 1, bias=False),
                                  nn.BatchNorm2d(cfg.stem_channels), nn.ReLU6(inplace=True))
        self.first = InvertedResidual(cfg.stem_channels, cfg.first_channels, 1, 3, 1)
        self.layers = layers
        self.head = nn.Sequential(nn.Conv2d(cfg.widths[-1], cfg.last_channels, 1, bias=False),
                                  nn.BatchNorm2d(cfg.last_channels), nn.ReLU6(inplace=True))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(cfg.last_channels, shape.num_classes)

    def finish(self, h: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.head(h).mean(dim=(2, 3))))


class MixedLayer(nn.Module):
    """One searchable layer of the supernet: a weighted sum of its candidate ops."""

    def __init__(self, ops: tuple[str, ...], c_in: int, c_out: int, stride: int):
        super().__init__()
        self.ops = nn.ModuleList(make_op(o, c_in, c_out, stride) for o in ops)
        self.c_out, self.stride = c_out, stride

    def forward(self, x: torch.Tensor, w: torch.Tensor, active: list[int]) -> torch.Tensor:
        out: torch.Tensor | None = None
        for k in active:
            y = w[k] * self.ops[k](x)
            out = y if out is None else out + y
        if out is None:  # every op of this layer is switched off
            n, _, h, wd = x.shape
            out = x.new_zeros(n, self.c_out, math.ceil(h / self.stride), math.ceil(wd / self.stride))
        return out


class MobileChainSupernet(Supernet):
    """Weight-sharing supernet: every layer holds all its candidate blocks (α: one row per layer)."""

    def __init__(self, cfg: MobileChainConfig, shape: DataShape, weighting: EdgeWeighting,
                 specs: list[tuple[int, int, int, tuple[str, ...]]]):
        width = max(len(s[3]) for s in specs)
        super().__init__({CELL: (len(specs), width)}, weighting, cfg.alpha_init_std)
        self.body = _Body(cfg, shape, nn.ModuleList(MixedLayer(ops, ci, co, st) for ci, co, st, ops in specs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.mixing_weights()[CELL]
        on = self.mask(CELL).cpu()
        if not torch.is_grad_enabled() or CELL in self._override:
            on = on & (w.detach().cpu() != 0)  # skip exact zeros when no gradient needs them
        h = self.body.first(self.body.stem(x))
        for i, layer in enumerate(self.body.layers):
            h = layer(h, w[i], on[i].nonzero().flatten().tolist())
        return self.body.finish(h)


class MobileChainNetwork(nn.Module):
    """The stand-alone network of a genotype (``skip`` layers are dropped)."""

    def __init__(self, cfg: MobileChainConfig, shape: DataShape, specs: list[tuple[int, int, int, tuple[str, ...]]],
                 ops: list[str], dropout: float):
        super().__init__()
        layers = nn.ModuleList(make_op(op, ci, co, st) for (ci, co, st, _), op in zip(specs, ops) if op != SKIP)
        self.body = _Body(cfg, shape, layers, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body.first(self.body.stem(x))
        for layer in self.body.layers:
            h = layer(h)
        return self.body.finish(h)


class MobileChainSpace(SearchSpace):
    """MobileNetV2-style chain of inverted-residual layers; each layer picks kernel x expansion (or skip)."""

    Config = MobileChainConfig
    config: MobileChainConfig

    def layer_specs(self) -> list[tuple[int, int, int, tuple[str, ...]]]:
        """(C_in, C_out, stride, candidate ops) of every searchable layer."""
        c = self.config
        blocks = tuple(op_name(k, e) for k in c.kernel_sizes for e in c.expand_ratios)
        specs, c_in = [], c.first_channels
        for width, depth, stride in zip(c.widths, c.depths, c.strides):
            for b in range(depth):
                s = stride if b == 0 else 1
                keeps_shape = s == 1 and c_in == width
                specs.append((c_in, width, s, (*blocks, SKIP) if c.allow_skip and keeps_shape else blocks))
                c_in = width
        return specs

    def decisions(self) -> dict[str, list[Edge]]:
        return {CELL: [Edge(node=i + 1, input=i, ops=ops) for i, (_, _, _, ops) in enumerate(self.layer_specs())]}

    def build_supernet(self, shape: DataShape, weighting: EdgeWeighting) -> MobileChainSupernet:
        return MobileChainSupernet(self.config, shape, weighting, self.layer_specs())

    def discretize(self, scores: dict[str, torch.Tensor]) -> Genotype:
        """The best-scored available op of every layer (ties: the earlier candidate)."""
        s = scores[CELL].detach().float().cpu()
        table = self.op_table()[CELL]
        edges = []
        for i, edge in enumerate(self.decisions()[CELL]):
            cand = [k for k in range(len(edge.ops)) if bool(table[i, k])]
            if not cand:
                raise GenotypeError(f"layer {i} of space '{self.name}' has no available op")
            best = max(cand, key=lambda k: (float(s[i, k]), -k))
            edges.append(GenotypeEdge(node=i + 1, input=i, op=edge.ops[best]))
        return Genotype(space=self.name or "mbv2", cells={CELL: edges})

    def build_network(self, genotype: Genotype, shape: DataShape, dropout: float = 0.0, **_: Any) -> nn.Module:
        """The stand-alone network (``dropout`` before the classifier; MobileNetV2 uses 0.2)."""
        self.encode(genotype)  # raises GenotypeError naming a foreign edge or op
        specs = self.layer_specs()
        ops = {e.node - 1: e.op for e in genotype.cells.get(CELL, [])}
        if set(ops) != set(range(len(specs))):
            raise GenotypeError(f"a genotype of space '{self.name}' needs one op for each of its {len(specs)} layers")
        return MobileChainNetwork(self.config, shape, specs, [ops[i] for i in range(len(specs))], dropout)

    def size(self) -> int | None:
        if self.members is not None:
            return len(self.members)
        return math.prod(int(row.sum()) for row in self.op_table()[CELL])

    def enumerate(self) -> Iterator[Genotype]:
        """Every genotype, lazily (the full space has ~10^17; the tiny preset 2,058)."""
        if self.members is not None:
            return iter(list(self.members))
        table = self.op_table()[CELL]
        rows = [[op for k, op in enumerate(e.ops) if bool(table[i, k])] for i, e in enumerate(self.decisions()[CELL])]
        name = self.name or "mbv2"
        return (Genotype(space=name, cells={CELL: [GenotypeEdge(node=i + 1, input=i, op=op)
                                                   for i, op in enumerate(choice)]})
                for choice in itertools.product(*rows))

    def format(self, genotype: Genotype) -> str:
        return "-".join(e.op for e in sorted(genotype.cells.get(CELL, []), key=lambda e: e.node))

    def parse(self, text: str) -> Genotype:
        """Parse ``k3_e6-k5_e3-skip-...`` (one op per layer, in order)."""
        ops = [p for p in text.strip().split("-") if p]
        n = len(self.layer_specs())
        if len(ops) != n:
            raise GenotypeError(f"space '{self.name}' has {n} layers, the text names {len(ops)} ops")
        g = Genotype(space=self.name or "mbv2",
                     cells={CELL: [GenotypeEdge(node=i + 1, input=i, op=op) for i, op in enumerate(ops)]})
        self.validate_genotype(g)
        return g
