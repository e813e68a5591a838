"""A toy grid space with planted locality, its benchmark, and a light run object for shrinker tests.

Tests reach the helpers through the fixtures (pytest runs with --import-mode=importlib, so no imports
from conftest)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from pydantic import Field

from nasfw import hookimpl
from nasfw.components import Benchmark, Context, Edge, SearchSpace, StrictModel
from nasfw.genotype import Genotype, GenotypeEdge
from nasfw.testing import toy_registry

OPS = ("a", "b", "c", "d")


class GridSpace(SearchSpace):
    """``rows`` independent decisions with ``len(ops)`` choices each (NB201-like: every edge kept)."""

    class Config(StrictModel):
        rows: int = Field(default=6, ge=1)
        ops: int = Field(default=3, ge=2, le=len(OPS))

    def decisions(self) -> dict[str, list[Edge]]:
        return {"cell": [Edge(node=r + 1, input=0, ops=OPS[: self.config.ops]) for r in range(self.config.rows)]}

    def discretize(self, scores: dict[str, torch.Tensor]) -> Genotype:
        s = scores["cell"]
        table = self.op_table()["cell"]
        s = torch.where(table, s, torch.full_like(s, float("-inf")))
        return make(self, [OPS[int(torch.argmax(s[r]))] for r in range(s.shape[0])])

    def enumerate(self) -> Iterator[Genotype]:
        if self.members is not None:
            return iter(list(self.members))
        table = self.op_table()["cell"]
        choices = [[OPS[k] for k in range(table.shape[1]) if table[r, k]] for r in range(table.shape[0])]
        return (make(self, ops) for ops in itertools.product(*choices))

    def size(self) -> int | None:
        if self.members is not None:
            return len(self.members)
        return int(torch.prod(self.op_table()["cell"].sum(dim=1)))


def make(space: SearchSpace, ops: Any) -> Genotype:
    return Genotype(space=space.name or "grid",
                    cells={"cell": [GenotypeEdge(node=r + 1, input=0, op=op) for r, op in enumerate(ops)]})


def ops_of(g: Genotype) -> tuple[str, ...]:
    return tuple(e.op for e in sorted(g.cells["cell"], key=lambda e: e.node))


#: planted optima of the 6x3 grid (pairwise Hamming distance 6) and their heights
PLANTED = {("a",) * 6: 100.0, ("b",) * 6: 99.0, ("c",) * 6: 98.0}


def planted_accuracy(ops: tuple[str, ...]) -> float:
    """max_j (H_j - 3·d(a, o_j)) + a deterministic wiggle < 0.5: smooth in the Hamming distance."""
    best = max(h - 3.0 * sum(x != y for x, y in zip(ops, o)) for o, h in PLANTED.items())
    wiggle = (sum((i + 1) * OPS.index(op) for i, op in enumerate(ops)) % 7) / 14.0
    return best + wiggle if ops not in PLANTED else best + 0.5


class PlantedBenchmark(Benchmark):
    spaces = ("grid",)

    def query(self, genotype: Genotype) -> dict[str, float]:
        return {"acc": planted_accuracy(ops_of(genotype))}


class _GridPlugin:
    @hookimpl
    def nasfw_register_search_spaces(self, register: Any) -> None:
        register("grid", GridSpace)

    @hookimpl
    def nasfw_register_benchmarks(self, register: Any) -> None:
        register("planted", PlantedBenchmark)


def grid_registry() -> Any:
    reg = toy_registry()
    reg.add_plugin(_GridPlugin(), "lissnas-tests-grid")
    return reg


@pytest.fixture
def grid() -> SimpleNamespace:
    """(registry, a 6x3 grid space, a light run: registry + ctx, no data)."""
    reg = grid_registry()
    space = reg.create("search_space", "grid")
    ctx = Context(registry=reg, seed=0)
    return SimpleNamespace(registry=reg, space=space, run=SimpleNamespace(registry=reg, ctx=ctx, data=None),
                           planted=PLANTED, ops_of=ops_of, accuracy=planted_accuracy)


@pytest.fixture
def make_grid():
    """Build a grid space of any shape with the light run."""

    def build(rows: int, ops: int) -> SimpleNamespace:
        reg = grid_registry()
        space = reg.create("search_space", {"name": "grid", "params": {"rows": rows, "ops": ops}})
        ctx = Context(registry=reg, seed=0)
        return SimpleNamespace(registry=reg, space=space, run=SimpleNamespace(registry=reg, ctx=ctx, data=None),
                               planted=PLANTED, ops_of=ops_of, accuracy=planted_accuracy)

    return build
