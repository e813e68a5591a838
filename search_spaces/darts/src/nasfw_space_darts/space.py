"""The DARTS cell space: decisions, discretization rule, supernet and evaluation network."""

from __future__ import annotations

import ast
import re
from typing import Any

import torch
from pydantic import Field, model_validator
from torch import nn

from nasfw.components import Edge, EdgeWeighting, NodeRule, SearchSpace, StrictModel
from nasfw.data import DataShape
from nasfw.errors import ConfigError, GenotypeError
from nasfw.genotype import Genotype, GenotypeEdge
from nasfw.presets import Cited, Recipe
from nasfw_space_darts.network import DartsNetwork
from nasfw_space_darts.ops import OPS
from nasfw_space_darts.supernet import DartsSupernet

#: DARTS' candidate ops, in the order of the reference code's PRIMITIVES.
PRIMITIVES = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
              "dil_conv_3x3", "dil_conv_5x5"]
CELLS = ("normal", "reduce")


class DartsConfig(StrictModel):
    layers: int = Field(default=5, ge=2, le=256, description="cells in the search supernet (reductions at 1/3 and "
                                                             "2/3; DARTS searched with 8: --preset paper)")
    init_channels: int = Field(default=8, ge=2, le=4096, description="C of the first cell (DARTS: 16, --preset paper)")
    steps: int = Field(default=4, ge=1, le=32, description="intermediate nodes per cell")
    keep_inputs: int = Field(default=2, ge=1, le=32, description="inputs each node keeps in a genotype")
    stem_multiplier: int = Field(default=3, ge=1, le=64)
    primitives: list[str] = Field(default_factory=lambda: list(PRIMITIVES), min_length=1,
                                  description="candidate ops of every edge")
    edge_ops: dict[str, list[list[str]]] | None = Field(
        default=None, description="per-edge candidate lists {normal: [[...] x 14], reduce: [...]} (RobustDARTS S1)")
    op_impl: dict[str, str] = Field(default_factory=dict,
                                    description="genotype op name -> registered operation implementing it")
    alpha_init_std: float = Field(default=1e-3, ge=0)
    partial_channels: int = Field(default=1, ge=1, description=(
        "PC-DARTS' K: each edge's ops see 1/K of its input channels, the rest bypass them, then channel "
        "shuffle (1 = DARTS; PC-DARTS uses 4 on CIFAR)"))
    edge_normalization: bool = Field(default=False, description=(
        "PC-DARTS' edge normalisation: an architecture weight β per edge (arch tensors beta_normal, "
        "beta_reduce), softmax over each node's input edges; magnitude selection ranks edges by β × op weight"))

    @model_validator(mode="after")
    def _check(self) -> DartsConfig:
        if self.init_channels % self.partial_channels:
            raise ValueError(f"init_channels ({self.init_channels}) must be a multiple of partial_channels "
                             f"({self.partial_channels})")
        n = sum(2 + i for i in range(self.steps))
        if self.edge_ops is not None:
            if set(self.edge_ops) != set(CELLS):
                raise ValueError("edge_ops needs exactly the cell types 'normal' and 'reduce'")
            for cell, rows in self.edge_ops.items():
                if len(rows) != n or any(not r for r in rows):
                    raise ValueError(f"edge_ops.{cell} needs {n} non-empty op lists (one per edge)")
        if len(set(self.primitives)) != len(self.primitives):
            raise ValueError("primitives has duplicates")
        return self


class DartsSpace(SearchSpace):
    """DARTS cells: 2 inputs + `steps` nodes, every earlier node feeds every later one (14 edges)."""

    Config = DartsConfig
    config: DartsConfig
    default_protocol = "darts-cifar"
    presets = {
        "paper": Recipe(source="DARTS (Liu et al., ICLR 2019) §3.1.1: the search supernet",
                        params={"layers": Cited(8, "quark0/darts@f276dd3 cnn/train_search.py:32 --layers"),
                                "init_channels": Cited(16, "quark0/darts@f276dd3 cnn/train_search.py:31 "
                                                           "--init_channels")}),
        "tiny": Recipe(source="nasfw: the smallest supernet with a normal and a reduction cell",
                       params={"layers": Cited(3, "cell 0 normal, cells 1-2 reduction"),
                               "init_channels": Cited(4, "CPU test size"),
                               "steps": Cited(2, "two intermediate nodes: 5 edges per cell, one with a choice of "
                                                 "inputs")}),
    }

    # -- structure -----------------------------------------------------------------------
    def edge_ops(self) -> dict[str, list[list[str]]]:
        c = self.config
        if c.edge_ops is not None:
            return {k: [list(r) for r in v] for k, v in c.edge_ops.items()}
        n = sum(2 + i for i in range(c.steps))
        return {cell: [list(c.primitives) for _ in range(n)] for cell in CELLS}

    def decisions(self) -> dict[str, list[Edge]]:
        out = {}
        for cell, rows in self.edge_ops().items():
            edges, row = [], 0
            for i in range(self.config.steps):
                for j in range(2 + i):
                    edges.append(Edge(node=2 + i, input=j, ops=tuple(rows[row])))
                    row += 1
            out[cell] = edges
        return out

    def topology(self) -> dict[str, list[NodeRule]]:
        rules, offset = [], 0
        for i in range(self.config.steps):
            rules.append(NodeRule(node=2 + i, edges=tuple(range(offset, offset + 2 + i)), keep=self.config.keep_inputs))
            offset += 2 + i
        return {cell: list(rules) for cell in CELLS}

    def size(self) -> int | None:
        if self.members is not None:
            return len(self.members)
        from itertools import combinations
        from math import prod

        table = self.op_table()
        decisions = self.decisions()
        total = 1
        for cell, rules in self.topology().items():
            for rule in rules:
                counts = []
                for r in rule.edges:
                    names = decisions[cell][r].ops
                    counts.append(sum(1 for k, op in enumerate(names) if op != "none" and bool(table[cell][r, k])))
                total *= sum(prod(counts[i] for i in combo) for combo in combinations(range(len(counts)), rule.keep))
        return total

    # -- ops -----------------------------------------------------------------------------
    def op_factory(self, name: str) -> Any:
        impl = self.config.op_impl.get(name, name)
        if self.ctx is not None:
            return self.ctx.registry.get("operation", impl)
        if impl not in OPS:
            raise ConfigError(f"operation '{impl}' is unknown without a registry")
        return OPS[impl]

    def check(self) -> None:
        self._check_ops()

    def _check_ops(self) -> None:
        for rows in self.edge_ops().values():
            for row in rows:
                for name in row:
                    self.op_factory(name)

    # -- supernet ------------------------------------------------------------------------
    def build_supernet(self, shape: DataShape, weighting: EdgeWeighting) -> DartsSupernet:
        self._check_ops()
        c = self.config

        def make_op(name: str, C: int, stride: int) -> nn.Module:
            op = self.op_factory(name)(C, C, stride, False)
            if "pool" in name:  # DARTS appends an affine-free BN to pooling ops in the search supernet
                op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
            return op

        return DartsSupernet(shape, weighting, self.edge_ops(), make_op, layers=c.layers, C=c.init_channels,
                             steps=c.steps, multiplier=c.steps, stem_multiplier=c.stem_multiplier,
                             alpha_init_std=c.alpha_init_std, partial_channels=c.partial_channels,
                             edge_normalization=c.edge_normalization)

    # -- discretization ------------------------------------------------------------------
    def discretize(self, scores: dict[str, torch.Tensor]) -> Genotype:
        """Top-`keep_inputs` inputs per node by best non-`none` score; argmax op excluding `none`."""
        cells: dict[str, list[GenotypeEdge]] = {}
        decisions = self.decisions()
        table = self.op_table()
        for cell, rules in self.topology().items():
            s = scores[cell].detach().float().cpu()
            edges = decisions[cell]
            chosen: list[GenotypeEdge] = []
            for rule in rules:
                ranked = []
                for r in rule.edges:
                    best, best_k = float("-inf"), None
                    for k, op in enumerate(edges[r].ops):
                        if op == "none" or not bool(table[cell][r, k]):
                            continue
                        v = float(s[r, k])
                        if best_k is None or v > best:
                            best, best_k = v, k
                    if best_k is not None:
                        ranked.append((best, r, best_k))
                ranked.sort(key=lambda t: -t[0])  # stable: ties keep the lower edge index
                if len(ranked) < rule.keep:
                    raise GenotypeError(f"node {rule.node} of cell '{cell}' has fewer than {rule.keep} usable inputs")
                for _, r, k in ranked[: rule.keep]:
                    chosen.append(GenotypeEdge(node=rule.node, input=edges[r].input, op=edges[r].ops[k]))
            cells[cell] = chosen
        return Genotype(space=self.name or "darts", cells=cells)

    # -- evaluation network ----------------------------------------------------------------
    def check_genotype(self, genotype: Genotype) -> None:
        """A DARTS cell genotype: cells normal and reduce, nodes 2..steps+1, each fed by ``keep_inputs``
        distinct earlier nodes through a registered op other than ``none``. Ops outside this space's candidate
        lists are allowed (the evaluation network builds any registered op, e.g. a sharpDARTS op)."""
        name = self.name or "darts"
        if set(genotype.cells) != set(CELLS):
            got = sorted(genotype.cells)[:4]
            raise GenotypeError(f"a genotype of space '{name}' has the cells 'normal' and 'reduce', got {got}")
        steps, keep = self.config.steps, self.config.keep_inputs
        for cell in CELLS:
            inputs: dict[int, list[int]] = {}
            for e in genotype.cells[cell]:
                if not 2 <= e.node < 2 + steps:
                    raise GenotypeError(f"cell '{cell}': node {e.node} is out of range (space '{name}' has the "
                                        f"intermediate nodes 2..{steps + 1})")
                if e.input >= e.node:
                    raise GenotypeError(f"cell '{cell}': edge {e.input}->{e.node} does not point forward")
                if e.op == "none":
                    raise GenotypeError(f"cell '{cell}': edge {e.input}->{e.node} chooses 'none', which a DARTS "
                                        f"genotype never keeps")
                try:
                    self.op_factory(e.op)
                except Exception:
                    shown = e.op if len(e.op) <= 40 else e.op[:37] + "..."
                    raise GenotypeError(f"cell '{cell}': unknown operation '{shown}' (space '{name}' ops: "
                                        f"{', '.join(p for p in self.config.primitives if p != 'none')})") from None
                inputs.setdefault(e.node, []).append(e.input)
            for node in range(2, 2 + steps):
                got = len(inputs.get(node, []))
                if got != keep:
                    raise GenotypeError(f"cell '{cell}': node {node} has {got} input edge(s); space '{name}' keeps "
                                        f"{keep} per node")

    def build_network(self, genotype: Genotype, shape: DataShape, C: int = 36, layers: int = 20,
                      auxiliary: bool = True, imagenet: bool = False, **_: Any) -> DartsNetwork:
        self.check_genotype(genotype)

        def make_op(name: str, c: int, stride: int) -> nn.Module:
            return self.op_factory(name)(c, c, stride, True)

        return DartsNetwork(genotype, make_op, C, shape.num_classes, layers, auxiliary, shape.channels,
                            shape.height, imagenet)

    # -- text forms ------------------------------------------------------------------------
    def format(self, genotype: Genotype) -> str:
        """The reference code's ``Genotype(normal=[('op', input), ...], normal_concat=[2, 3, 4, 5], ...)``."""
        concat = list(range(2, 2 + self.config.steps))
        parts = []
        for cell in CELLS:
            edges = sorted(genotype.cells.get(cell, []), key=lambda e: e.node)
            pairs = ", ".join(f"('{e.op}', {e.input})" for e in edges)
            parts.append(f"{cell}=[{pairs}], {cell}_concat={concat}")
        return "Genotype(" + ", ".join(parts) + ")"

    def parse(self, text: str) -> Genotype:
        """Parse the reference code's ``Genotype(normal=[('op', input), ...], normal_concat=..., ...)``."""
        out: dict[str, list[GenotypeEdge]] = {}
        for cell in CELLS:
            m = re.search(rf"\b{cell}\s*=\s*(\[[^\]]*\])", text)
            if not m:
                raise GenotypeError(f"no '{cell}=[...]' list in DARTS genotype text")
            try:
                pairs = ast.literal_eval(m.group(1))
                pairs = [(str(op), int(inp)) for op, inp in pairs]
            except (ValueError, SyntaxError, TypeError):
                raise GenotypeError(f"'{cell}' list is not a list of (op, input) pairs") from None
            k = self.config.keep_inputs
            if len(pairs) != k * self.config.steps:
                raise GenotypeError(f"'{cell}' needs {k * self.config.steps} (op, input) pairs, got {len(pairs)}")
            out[cell] = [GenotypeEdge(node=2 + i // k, input=inp, op=op) for i, (op, inp) in enumerate(pairs)]
        return Genotype(space=self.name or "darts", cells=out)
