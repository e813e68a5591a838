"""The NAS-Bench-201 cell search space: 6 edges × 5 ops, argmax discretization (``none`` included)."""

from __future__ import annotations

from collections.abc import Iterator
from math import prod
from typing import Any

import torch
from pydantic import Field, field_validator, model_validator

from nasfw.components import Edge, EdgeWeighting, SearchSpace, StrictModel
from nasfw.data import DataShape
from nasfw.errors import GenotypeError
from nasfw.genotype import Genotype
from nasfw.presets import Cited, Recipe
from nasfw_space_nb201.cells import CELL, EDGES, all_cells, from_string, make_genotype, ops_of, to_string
from nasfw_space_nb201.network import NB201Network, NB201Supernet
from nasfw_space_nb201.ops import NB201_OPS


class NB201Config(StrictModel):
    init_channels: int = Field(default=16, ge=1, le=4096, description="C of the first stage (stages use C, 2C, 4C)")
    cells_per_stage: int = Field(default=5, ge=1, le=256, description="N: cells in each of the three stages")
    primitives: list[str] = Field(default_factory=lambda: list(NB201_OPS), min_length=1,
                                  description="candidate ops of every edge (a subset of the five NB201 ops)")
    track_running_stats: bool = Field(default=False, description="cell BN keeps running statistics in the supernet")
    alpha_init_std: float = Field(default=1e-3, ge=0, description="α ~ alpha_init_std · N(0, 1)")
    partial_channels: int = Field(default=1, ge=1, description=(
        "PC-DARTS' K: each edge's ops see 1/K of its input channels, the rest bypass them, then channel "
        "shuffle (1 = the plain supernet)"))
    edge_normalization: bool = Field(default=False, description=(
        "PC-DARTS' edge normalisation: an architecture weight β per edge (arch tensor beta_cell), softmax over "
        "each node's input edges (NB201 keeps every edge, so it only rescales them)"))

    @model_validator(mode="after")
    def _channels(self) -> NB201Config:
        if self.init_channels % self.partial_channels:
            raise ValueError(f"init_channels ({self.init_channels}) must be a multiple of partial_channels "
                             f"({self.partial_channels})")
        return self

    @field_validator("primitives")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        bad = [op for op in v if op not in NB201_OPS]
        if bad:
            raise ValueError(f"unknown NB201 op(s) {bad}; allowed: {', '.join(NB201_OPS)}")
        if len(set(v)) != len(v):
            raise ValueError("primitives has duplicates")
        return v


class NB201Space(SearchSpace):
    """NAS-Bench-201 (Dong & Yang, ICLR 2020): one cell type, every edge kept, 15,625 cells."""

    Config = NB201Config
    config: NB201Config
    default_protocol = "nb201"
    presets = {
        "paper": Recipe(
            source="NAS-Bench-201 (Dong & Yang, ICLR 2020) §3: the search supernet of its weight-sharing runs",
            params={"init_channels": Cited(16, "D-X-Y/AutoDL-Projects@5d7ccd4 scripts-search/NAS-Bench-201-algos/"
                                               "DARTS-V1.sh channel=16"),
                    "cells_per_stage": Cited(5, "D-X-Y/AutoDL-Projects@5d7ccd4 scripts-search/NAS-Bench-201-algos/"
                                                "DARTS-V1.sh num_cells=5"),
                    "track_running_stats": Cited(False, "D-X-Y/AutoDL-Projects@5d7ccd4 scripts-search/"
                                                        "NAS-Bench-201-algos/DARTS-V1.sh:2 example: BN=0")}),
        "tiny": Recipe(source="nasfw: the smallest NB201 supernet",
                       params={"init_channels": Cited(4, "CPU test size"),
                               "cells_per_stage": Cited(1, "one cell per stage")}),
    }
    name = "nb201"  # the registry sets the name users typed; this default serves direct construction

    @property
    def _space_name(self) -> str:
        return self.name or "nb201"

    # -- structure -------------------------------------------------------------------------
    def decisions(self) -> dict[str, list[Edge]]:
        ops = tuple(self.config.primitives)
        return {CELL: [Edge(node=n, input=i, ops=ops) for n, i in EDGES]}

    def _choices(self) -> list[list[str]]:
        """Allowed ops per edge (after any restriction), in edge order."""
        table = self.op_table()[CELL]
        ops = self.config.primitives
        return [[op for k, op in enumerate(ops) if bool(table[r, k])] for r in range(len(EDGES))]

    def size(self) -> int | None:
        if self.members is not None:
            return len(self.members)
        return prod(len(c) for c in self._choices())

    def enumerate(self) -> Iterator[Genotype]:
        if self.members is not None:
            return iter(list(self.members))
        name = self._space_name
        return (make_genotype(ops, name) for ops in all_cells(self._choices()))

    # -- supernet and network --------------------------------------------------------------
    def build_supernet(self, shape: DataShape, weighting: EdgeWeighting) -> NB201Supernet:
        c = self.config
        return NB201Supernet(shape, weighting, c.primitives, C=c.init_channels, N=c.cells_per_stage,
                             track_running_stats=c.track_running_stats, alpha_init_std=c.alpha_init_std,
                             partial_channels=c.partial_channels, edge_normalization=c.edge_normalization)

    def build_network(self, genotype: Genotype, shape: DataShape, C: int | None = None, N: int | None = None,
                      **_: Any) -> NB201Network:
        """The stand-alone network (defaults: the benchmark's C = 16, N = 5)."""
        ops = ops_of(genotype)
        for op in ops:
            if op not in NB201_OPS:
                raise GenotypeError(f"unknown NB201 op '{op}'; allowed: {', '.join(NB201_OPS)}")
        return NB201Network(ops, shape, C=C or self.config.init_channels, N=N or self.config.cells_per_stage)

    # -- discretization --------------------------------------------------------------------
    def discretize(self, scores: dict[str, torch.Tensor]) -> Genotype:
        """Argmax op per edge over the available ops, ``none`` included (NB201 methods keep it)."""
        if CELL not in scores:
            raise GenotypeError(f"NB201 scores need the table '{CELL}', got {sorted(scores)}")
        s = scores[CELL].detach().float().cpu()
        table = self.op_table()[CELL]
        if s.shape != table.shape:
            raise GenotypeError(f"NB201 scores have shape {tuple(s.shape)}, expected {tuple(table.shape)}")
        s = torch.where(table, s, torch.full_like(s, float("-inf")))
        ops = []
        for r in range(len(EDGES)):
            if not bool(table[r].any()):
                raise GenotypeError(f"edge {EDGES[r][1]}->{EDGES[r][0]} has no available op")
            ops.append(self.config.primitives[int(torch.argmax(s[r]))])  # ties: the first op wins
        return make_genotype(ops, self._space_name)

    # -- text forms ------------------------------------------------------------------------
    def format(self, genotype: Genotype) -> str:
        return to_string(ops_of(genotype))

    def parse(self, text: str) -> Genotype:
        return make_genotype(from_string(text), self._space_name)

