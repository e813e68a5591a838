"""Test fixtures: a tiny space whose supernet is a sum of linear read-outs, to plant which op carries the signal."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from pydantic import Field
from torch import nn

from nasfw import hookimpl
from nasfw.components import Edge, EdgeWeighting, NodeRule, SearchSpace, StrictModel
from nasfw.data import DataShape
from nasfw.errors import GenotypeError
from nasfw.genotype import Genotype, GenotypeEdge
from nasfw.supernet import Supernet

OPS = ("bias", "readout_a", "readout_b")
#: three edges into node 3, from nodes 0, 1, 2 (all fed by the input here)
EDGES = ((3, 0), (3, 1), (3, 2))


class PlantedSupernet(Supernet):
    """logits = Σ_edges Σ_ops w[e, o] · Linear_{e,o}(flatten(x)); masked or exactly-zero ops are skipped."""

    def __init__(self, shape: DataShape, weighting: EdgeWeighting):
        super().__init__({"cell": (len(EDGES), len(OPS))}, weighting, alpha_init_std=1e-3)
        d = shape.channels * shape.height * shape.width
        self.ops = nn.ModuleList(nn.ModuleList(nn.Linear(d, shape.num_classes) for _ in OPS) for _ in EDGES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.mixing_weights()["cell"]
        on = self.mask("cell").cpu() & (w.detach().cpu() != 0)
        feats = x.flatten(1)
        out = None
        for r in range(len(EDGES)):
            for k in on[r].nonzero().flatten().tolist():
                y = w[r, k] * self.ops[r][k](feats)
                out = y if out is None else out + y
        return out if out is not None else feats.new_zeros(len(x), self.ops[0][0].out_features)


class PlantedConfig(StrictModel):
    keep: int = Field(default=3, ge=1, le=3, description="inputs node 3 keeps (3: no topology rule)")


class PlantedSpace(SearchSpace):
    Config = PlantedConfig
    config: PlantedConfig

    def decisions(self) -> dict[str, list[Edge]]:
        return {"cell": [Edge(node=n, input=i, ops=OPS) for n, i in EDGES]}

    def topology(self) -> dict[str, list[NodeRule]]:
        return {} if self.config.keep == 3 else {"cell": [NodeRule(node=3, edges=(0, 1, 2), keep=self.config.keep)]}

    def build_supernet(self, shape: DataShape, weighting: EdgeWeighting) -> PlantedSupernet:
        return PlantedSupernet(shape, weighting)

    def discretize(self, scores: dict[str, torch.Tensor]) -> Genotype:
        s = scores["cell"].detach().float().cpu()
        table = self.op_table()["cell"]
        s = torch.where(table, s, torch.full_like(s, float("-inf")))
        best = [(float(s[r].max()), r, int(s[r].argmax())) for r in range(len(EDGES)) if bool(table[r].any())]
        best.sort(key=lambda t: -t[0])
        if len(best) < self.config.keep:
            raise GenotypeError("too few usable edges")
        edges = [GenotypeEdge(node=EDGES[r][0], input=EDGES[r][1], op=OPS[k]) for _, r, k in best[: self.config.keep]]
        return Genotype(space=self.name or "planted", cells={"cell": sorted(edges, key=lambda e: e.input)})

    def build_network(self, genotype: Genotype, shape: DataShape, **options: Any) -> nn.Module:
        from nasfw.builtin.weightings import Softmax

        net = PlantedSupernet(shape, Softmax())
        net.set_override({"cell": self.encode(genotype)["cell"]})
        return net


class PlantedPlugin:
    @hookimpl
    def nasfw_register_search_spaces(self, register: Any) -> None:
        register("planted", PlantedSpace, description="test fixture: planted linear read-outs")


def plant(run: Any, signal: tuple[int, int], decoy: tuple[int, int]) -> None:
    """Make op ``signal`` a class-mean template matcher, ``decoy`` a constant push towards class 0 with the
    largest α of its edge, and every other op silent (zero weights and bias)."""
    net = run.supernet
    x = torch.stack([run.data.splits.train[i][0] for i in range(len(run.data.splits.train))]).flatten(1)
    y = torch.tensor([int(run.data.splits.train[i][1]) for i in range(len(run.data.splits.train))])
    means = torch.stack([x[y == c].mean(0) for c in range(int(y.max()) + 1)])
    with torch.no_grad():
        for r, row in enumerate(net.ops):
            for k, lin in enumerate(row):
                lin.weight.zero_()
                lin.bias.zero_()
                if (r, k) == signal:
                    lin.weight.copy_(means)
                    lin.bias.copy_(-0.5 * (means**2).sum(1))  # nearest class mean
                if (r, k) == decoy:
                    lin.bias[0] = 1.0
        alpha = net.alphas["cell"]
        alpha.zero_()
        alpha[decoy] = 3.0


@pytest.fixture
def planted_registry() -> Any:
    """The kit's toy registry (installed plugins + toys) plus the planted space."""
    from nasfw.testing import toy_registry

    reg = toy_registry()
    reg.add_plugin(PlantedPlugin(), "darts-pt-tests.planted", "(tests)", "")
    return reg


@pytest.fixture
def plant_signal() -> Any:
    return plant
