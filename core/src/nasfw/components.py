"""The component protocols of nasfw. Each is tiny; plugins subclass them.

Every component class carries a pydantic ``Config`` model (extra fields forbidden), and is built by
the registry as ``cls(config, ctx)``, so a typo in a plugin option is a clear error.
"""

from __future__ import annotations

import copy
import inspect
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from nasfw.data import Batch, DataShape, DataSplits, SearchData
from nasfw.distributed import Dist
from nasfw.distributed import of as dist_of
from nasfw.errors import GenotypeError
from nasfw.genotype import Genotype, GenotypeEdge

if TYPE_CHECKING:
    from nasfw.engine import Run
    from nasfw.registry import Registry
    from nasfw.supernet import Supernet


class StrictModel(BaseModel):
    """Base of every component ``Config``: unknown options are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


@dataclass
class Context:
    """What a component may need from its surroundings."""

    registry: Registry
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0
    out_dir: Path | None = None


class Component:
    """Base of every class-style component."""

    Config: ClassVar[type[BaseModel]] = StrictModel
    #: Set by the registry to the name the user typed (a preset's name for presets).
    name: str = ""

    def __init__(self, config: BaseModel | None = None, ctx: Context | None = None):
        self.config = config if config is not None else self.Config()
        self.ctx = ctx

    def check(self) -> None:
        """Cheap checks beyond the config model (e.g. that named ops are registered), run by
        ``nasfw config validate`` and before a run touches data; raise a NasfwError. Constructors stay cheap."""

    def state_dict(self) -> dict[str, Any]:
        """State to checkpoint (beyond the supernet's own parameters)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


@dataclass(frozen=True)
class Preset:
    """A named component that is another one with different default params."""

    base: str
    params: dict[str, Any]
    description: str = ""


# --------------------------------------------------------------------------- search spaces


@dataclass(frozen=True)
class Edge:
    """One decision: which op (of ``ops``) carries node ``input`` into node ``node``."""

    node: int
    input: int
    ops: tuple[str, ...]


@dataclass(frozen=True)
class NodeRule:
    """A topology rule: of the edges (row indices) entering ``node``, keep ``keep``."""

    node: int
    edges: tuple[int, ...]
    keep: int


class SearchSpace(Component):
    """A search space: its decisions, a supernet over them, and the rules that make a genotype.

    Architecture tensors are 2-D, one row per decision (edge) and one column per candidate op of the
    widest edge; ``decisions()[name][row].ops`` names the columns that exist on that row.
    Subclasses implement :meth:`decisions`, :meth:`build_supernet`, :meth:`discretize` and
    :meth:`build_network`; sampling, encoding, distances, mutation and restriction have generic
    defaults built on those.
    """

    def __init__(self, config: BaseModel | None = None, ctx: Context | None = None):
        super().__init__(config, ctx)
        self.allowed: dict[str, torch.Tensor] | None = None  # op mask of a restricted space
        self.members: list[Genotype] | None = None  # explicit member set of a shrunk space

    # -- required -----------------------------------------------------------------------
    def decisions(self) -> dict[str, list[Edge]]:
        raise NotImplementedError

    def build_supernet(self, shape: DataShape, weighting: EdgeWeighting) -> Supernet:
        raise NotImplementedError

    def discretize(self, scores: dict[str, torch.Tensor]) -> Genotype:
        """Turn per-(edge, op) scores (higher is better; -inf = unavailable) into a genotype."""
        raise NotImplementedError

    def build_network(self, genotype: Genotype, shape: DataShape, **options: Any) -> nn.Module:
        """The stand-alone network of a genotype, for training from scratch."""
        raise NotImplementedError

    def network_options(self) -> set[str] | None:
        """Names ``build_network`` accepts, so a user's ``--set network.<typo>`` is an error, not ignored
        (protocols may still pass options a space does not know). Default: the keyword parameters of
        ``build_network``'s signature; ``None`` (unknown, not checked) when it only takes ``**options``."""
        params = list(inspect.signature(self.build_network).parameters.values())[2:]  # after genotype, shape
        names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        return names or (None if any(p.kind is p.VAR_KEYWORD for p in params) else set())

    # -- optional with defaults ------------------------------------------------------------
    def topology(self) -> dict[str, list[NodeRule]]:
        """Nodes that keep only some of their inputs (DARTS: 2). Empty when every edge is kept."""
        return {}

    def arch_shapes(self) -> dict[str, tuple[int, int]]:
        return {k: (len(v), max(len(e.ops) for e in v)) for k, v in self.decisions().items()}

    def op_table(self) -> dict[str, torch.Tensor]:
        """Boolean (rows, K) tables of which columns exist, intersected with a restriction."""
        out = {}
        for name, edges in self.decisions().items():
            k = max(len(e.ops) for e in edges)
            t = torch.zeros(len(edges), k, dtype=torch.bool)
            for i, e in enumerate(edges):
                t[i, : len(e.ops)] = True
            if self.allowed is not None and name in self.allowed:
                t &= self.allowed[name].to(torch.bool)
            out[name] = t
        return out

    def parse(self, text: str) -> Genotype:
        """Parse a space-specific string form of a genotype (e.g. NB201 strings)."""
        raise GenotypeError(f"space '{self.name}' has no string form; pass a genotype.json file")

    def format(self, genotype: Genotype) -> str:
        """A short human-readable form of a genotype."""
        return "; ".join(
            f"{cell}: " + " ".join(f"{e.op}({e.input}->{e.node})" for e in edges)
            for cell, edges in genotype.cells.items()
        )

    def encode(self, genotype: Genotype) -> dict[str, torch.Tensor]:
        """One-hot (rows, K) tables of a genotype: which op each edge carries (zero row = edge absent)."""
        out = {}
        for name, edges in self.decisions().items():
            k = max(len(e.ops) for e in edges)
            t = torch.zeros(len(edges), k)
            index = {(e.node, e.input): i for i, e in enumerate(edges)}
            for ge in genotype.cells.get(name, []):
                row = index.get((ge.node, ge.input))
                if row is None or ge.op not in edges[row].ops:
                    raise GenotypeError(
                        f"genotype edge {ge.input}->{ge.node} '{ge.op}' in cell '{name}' is not in space "
                        f"'{self.name}'" + (f" (allowed ops: {', '.join(edges[row].ops)})" if row is not None else "")
                    )
                t[row, edges[row].ops.index(ge.op)] = 1.0
            out[name] = t
        return out

    def validate_genotype(self, genotype: Genotype) -> None:
        """Raise :class:`GenotypeError` unless the genotype is a member of this space."""
        expected = set(self.decisions())
        if set(genotype.cells) != expected:
            raise GenotypeError(
                f"genotype cells {sorted(genotype.cells)} do not match space '{self.name}' cells {sorted(expected)}"
            )
        self.encode(genotype)
        if self.discretize(self._scores_of(genotype)) != genotype.model_copy(update={"space": self.name}):
            raise GenotypeError(f"genotype is not a valid architecture of space '{self.name}': {self.format(genotype)}")

    def _scores_of(self, genotype: Genotype) -> dict[str, torch.Tensor]:
        table = self.op_table()
        return {k: torch.where(table[k], v, torch.full_like(v, -1.0)) for k, v in self.encode(genotype).items()}

    def contains(self, genotype: Genotype) -> bool:
        if self.members is not None:
            return genotype in set(self.members)
        try:
            self.validate_genotype(genotype)
        except GenotypeError:
            return False
        if self.allowed is not None:
            enc = self.encode(genotype)
            return all(bool((enc[k].bool() <= self.allowed[k].bool()).all()) for k in enc if k in self.allowed)
        return True

    def sample(self, rng: random.Random) -> Genotype:
        """A uniformly random genotype (random scores through :meth:`discretize` by default)."""
        if self.members is not None:
            return rng.choice(self.members)
        g = torch.Generator().manual_seed(rng.getrandbits(63))
        scores = {}
        for name, table in self.op_table().items():
            s = torch.rand(table.shape, generator=g)
            scores[name] = torch.where(table, s, torch.full_like(s, float("-inf")))
        return self.discretize(scores)

    def enumerate(self) -> Iterator[Genotype]:
        """Every genotype of a finite space."""
        if self.members is not None:
            return iter(list(self.members))
        raise NotImplementedError(f"space '{self.name}' is too large to enumerate")

    def size(self) -> int | None:
        """Number of genotypes, when known."""
        return len(self.members) if self.members is not None else None

    def distance(self, a: Genotype, b: Genotype) -> float:
        """Edit distance: the number of edges whose op or presence differs."""
        ea, eb = self.encode(a), self.encode(b)
        diff = 0.0
        for k in ea:
            diff += float((ea[k] != eb[k]).any(dim=1).sum())
        return diff

    def neighbours(self, genotype: Genotype) -> Iterator[Genotype]:
        """Genotypes at the smallest distance (one op changed on one chosen edge, by default)."""
        table = self.op_table()
        decisions = self.decisions()
        members = set(self.members) if self.members is not None else None
        for cell, edges in genotype.cells.items():
            index = {(e.node, e.input): i for i, e in enumerate(decisions[cell])}
            for j, ge in enumerate(edges):
                row = index[(ge.node, ge.input)]
                for col, op in enumerate(decisions[cell][row].ops):
                    if op == ge.op or not bool(table[cell][row, col]):
                        continue
                    new_edges = list(edges)
                    new_edges[j] = GenotypeEdge(node=ge.node, input=ge.input, op=op)
                    cand = genotype.model_copy(update={"cells": {**genotype.cells, cell: new_edges}})
                    if (members is None or cand in members) and self._valid(cand):
                        yield cand

    def _valid(self, genotype: Genotype) -> bool:
        try:
            self.validate_genotype(genotype)
            return True
        except GenotypeError:
            return False

    def mutate(self, genotype: Genotype, rng: random.Random) -> Genotype:
        """A random neighbour."""
        options = list(self.neighbours(genotype))
        if not options:
            return genotype
        return rng.choice(options)

    def restrict(self, allowed: dict[str, torch.Tensor]) -> SearchSpace:
        """The subspace whose edges may only use the allowed (row, op) entries."""
        sub = copy.copy(self)
        prev = self.allowed or {}
        sub.allowed = {k: (v.bool() & prev[k].bool()) if k in prev else v.bool() for k, v in allowed.items()}
        return sub

    def restrict_to(self, members: list[Genotype]) -> SearchSpace:
        """The subspace of exactly these genotypes (e.g. LISSNAS pockets)."""
        sub = copy.copy(self)
        sub.members = list(members)
        return sub


# --------------------------------------------------------------------------- search components


class EdgeWeighting(Component):
    """Maps architecture parameters of one tensor (rows, K) to mixing coefficients (rows, K)."""

    def __call__(self, alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def strength(self, alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """What magnitude-based selection ranks (default: the mixing coefficients)."""
        return self(alpha, mask)


class LRSchedule(Component):
    """A learning rate as a pure function of the (0-based) epoch: stateless, so resume is exact."""

    def lr(self, epoch: int, epochs: int, base_lr: float) -> float:
        raise NotImplementedError


class Optimizer(Component):
    """Owns the per-step update of weights and/or architecture parameters during the search."""

    #: Whether the search loop runs at all (``none`` — training-free — says False).
    trains: ClassVar[bool] = True
    #: Whether steps are right under several processes (torchrun): the optimizer averages its gradients
    #: (and any losses it compares) with ``self.dist.average_``, so every rank takes the same step. The
    #: engine refuses a multi-process search with an optimizer that does not say so.
    distributed: ClassVar[bool] = False

    @property
    def dist(self) -> Dist:
        """The run's processes (``nasfw.distributed.LOCAL`` outside torchrun or without a run)."""
        return dist_of(getattr(self, "run", None))

    def edge_weighting(self) -> Any:
        """A component reference (name or {name, params}) for the supernet's edge weighting, or None."""
        return getattr(self.config, "edge_weighting", None)

    def setup(self, supernet: Supernet, data: SearchData, epochs: int, steps_per_epoch: int) -> None:
        self.supernet = supernet
        self.data = data
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch

    def epoch_start(self, epoch: int) -> None:
        """Called before the first step of every epoch (set the epoch's learning rate here)."""

    def step(self, train_batch: Batch, val_batch: Batch) -> dict[str, float]:
        """One search step; returns metrics (``loss``, ``acc`` of the train batch at least)."""
        raise NotImplementedError

    def epoch_end(self, epoch: int) -> dict[str, float]:
        return {}

    def configure_tuning(self, lr: float | None, update_alpha: bool) -> None:
        """Switch to fine-tuning between selection decisions (DARTS-PT): fresh weight optimizer at a
        constant ``lr``, architecture updates on or off."""
        raise NotImplementedError(f"optimizer '{self.name}' does not support fine-tuning during selection")


class Selector(Component):
    """Turns a (trained or untrained) supernet into a genotype."""

    #: Under several processes: True runs ``select`` on every rank together (evaluations through
    #: ``run.evaluate`` are summed over ranks, training steps go through the distributed optimizer, decisions
    #: must come out equal); False (the default) runs it on rank 0 alone, exactly as in one process, and
    #: broadcasts the genotype.
    distributed: ClassVar[bool] = False

    def edge_weighting(self) -> Any:
        """The edge weighting this selector needs when the optimizer does not train the supernet (or
        None); a training optimizer's weighting (softmax by default) always wins."""
        return None

    def select(self, supernet: Supernet, space: SearchSpace, run: Run) -> Genotype:
        raise NotImplementedError


@dataclass
class ShrunkSpace:
    """What a shrinker returns: an explicit member set, plus statistics for the report."""

    members: list[Genotype]
    info: dict[str, Any] = field(default_factory=dict)

    def op_mask(self, space: SearchSpace) -> dict[str, torch.Tensor]:
        """The per-edge projection: every (edge, op) used by some member. A superset of the members."""
        out: dict[str, torch.Tensor] | None = None
        for g in self.members:
            enc = space.encode(g)
            out = {k: v.bool() for k, v in enc.items()} if out is None else {k: out[k] | enc[k].bool() for k in out}
        if out is None:
            raise ValueError("empty shrunk space")
        # keep edges the members never pick available, so topology rules can still be satisfied
        table = space.op_table()
        for k, t in out.items():
            unused = ~t.any(dim=1)
            t[unused] = table[k][unused]
        return out


class Shrinker(Component):
    """Turns a space into a smaller one before (or between) searches."""

    def shrink(self, space: SearchSpace, run: Run) -> ShrunkSpace:
        raise NotImplementedError


class Dataset(Component):
    """Provides the train / architecture-validation / test splits of a search."""

    def splits(self, seed: int) -> DataSplits:
        raise NotImplementedError


class Benchmark(Component):
    """Tabular ground truth of a space: the true metrics of a genotype."""

    #: Spaces this benchmark answers for.
    spaces: ClassVar[tuple[str, ...]] = ()

    def query(self, genotype: Genotype) -> dict[str, float]:
        raise NotImplementedError
