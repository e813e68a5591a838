"""The component protocols of nasfw. Each is tiny; plugins subclass them.

Every component class carries a pydantic ``Config`` model (extra fields forbidden), and is built by
the registry as ``cls(config, ctx)``, so a typo in a plugin option is a clear error.
"""

from __future__ import annotations

import copy
import functools
import inspect
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, model_validator
from torch import nn

from nasfw.budget import Budget
from nasfw.data import Batch, DataShape, DataSplits, SearchData
from nasfw.distributed import Dist
from nasfw.distributed import of as dist_of
from nasfw.errors import GenotypeError
from nasfw.genotype import Genotype, GenotypeEdge
from nasfw.presets import Recipe

if TYPE_CHECKING:
    from nasfw.config import RunConfig
    from nasfw.engine import Run
    from nasfw.registry import Registry
    from nasfw.supernet import Supernet


#: No option of any component may hold an integer beyond 64 bits: a typo's 10**30 is a one-line error at
#: validation, not an OverflowError deep inside torch (fields set their own, tighter sane bounds).
INT_LIMIT = 2**63 - 1


def _check_int_sizes(value: Any, path: str = "", depth: int = 0) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > INT_LIMIT:
            digits = int(value.bit_length() * 0.30103) + 1
            raise ValueError(f"{path or 'value'}: an integer of about {digits} digits is out of range "
                             f"(at most 2**63 - 1)")
    elif depth < 32 and isinstance(value, dict):
        for k, v in value.items():
            _check_int_sizes(v, f"{path}.{k}" if path else str(k), depth + 1)
    elif depth < 32 and isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_int_sizes(v, f"{path}[{i}]", depth + 1)


class StrictModel(BaseModel):
    """Base of every component ``Config``: unknown options are errors, not silently ignored; integers fit
    in 64 bits."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    @model_validator(mode="before")
    @classmethod
    def _bounded_ints(cls, data: Any) -> Any:
        _check_int_sizes(data)
        return data


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
    #: Named presets (``--preset NAME``): ``{"paper": Recipe(...), "tiny": Recipe(...)}``; see :mod:`nasfw.presets`.
    presets: ClassVar[Mapping[str, Recipe]] = {}

    @classmethod
    def preset(cls, name: str, config: RunConfig) -> Recipe | None:
        """The settings ``--preset name`` gives this component in a run of ``config`` (override this when they
        depend on the run, e.g. on ``config.space.name``). Default: ``cls.presets.get(name)``."""
        return cls.presets.get(name)

    @classmethod
    def preset_names(cls, config: RunConfig) -> list[str]:
        """The preset names this component answers (for messages); override with :meth:`preset`."""
        return sorted(cls.presets)

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
    #: Named presets of this preset (``--preset paper``): a Recipe, or a function of the run config giving one
    #: (settings that depend on e.g. the space); None inherits the base component's.
    presets: Mapping[str, Recipe | Callable[[RunConfig], Recipe | None]] | None = None


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

    ``default_protocol`` names the final-training protocol ``nasfw eval`` (and ``evaluation.protocol``)
    use for this space's genotypes when none is given (NB201 → ``nb201``, DARTS cells → ``darts-cifar``).

    Architecture tensors are 2-D, one row per decision (edge) and one column per candidate op of the
    widest edge; ``decisions()[name][row].ops`` names the columns that exist on that row.
    Subclasses implement :meth:`decisions`, :meth:`build_supernet`, :meth:`discretize` and
    :meth:`build_network`; sampling, encoding, distances, mutation and restriction have generic
    defaults built on those.

    A space restricted to explicit members (:meth:`restrict_to`, e.g. a shrinker's pockets) is
    member-constrained everywhere: ``sample``/``enumerate``/``contains``/``neighbours`` see only the members,
    ``op_table`` is the union of their ops (what a supernet trains), and ``discretize`` — whatever the
    subclass implements — returns the member that scores best (:mod:`nasfw.members`), so every selector
    returns a member without knowing about shrinking.
    """

    #: The training protocol of this space's genotypes when the user names none (None: nasfw's fallback).
    default_protocol: ClassVar[str | None] = None

    def __init__(self, config: BaseModel | None = None, ctx: Context | None = None):
        super().__init__(config, ctx)
        self.allowed: dict[str, torch.Tensor] | None = None  # op mask of a restricted space
        self.members: list[Genotype] | None = None  # explicit member set of a shrunk space
        self._member_cache: dict[str, Any] | None = None  # members' one-hot encodings and index
        #: what the last member-constrained ``discretize`` decided (None on a product space)
        self.last_selection: dict[str, Any] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("discretize")
        if own is not None and not getattr(own, "_member_aware", False):
            cls.discretize = _member_aware(own)  # type: ignore[method-assign]

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

    def check_genotype(self, genotype: Genotype) -> None:
        """Raise :class:`GenotypeError` unless the genotype has this space's shape: its cell types, only edges
        and ops the space offers (one op per edge), and as many edges per node as the topology keeps (every
        edge when it keeps all). What ``eval``, ``show`` and ``--resume`` require before building anything;
        cheaper and more lenient than :meth:`validate_genotype` (no discretization round trip), so spaces
        whose networks take genotypes beyond their search space (other ops) override it."""
        name = self.name or type(self).__name__
        decisions = self.decisions()
        if set(genotype.cells) != set(decisions):
            raise GenotypeError(f"the genotype's cells {_names(genotype.cells)} are not space '{name}''s cells "
                                f"{_names(decisions)}")
        rules = self.topology()
        for cell, edges in genotype.cells.items():
            index = {(d.node, d.input): (r, d) for r, d in enumerate(decisions[cell])}
            present: set[int] = set()
            for e in edges:
                found = index.get((e.node, e.input))
                if found is None:
                    nodes = sorted({d.node for d in decisions[cell]})
                    raise GenotypeError(f"cell '{cell}': edge {e.input}->{e.node} is not an edge of space '{name}' "
                                        f"(its nodes are {nodes[0]}..{nodes[-1]}, each fed by earlier ones)")
                r, d = found
                if e.op not in d.ops:
                    raise GenotypeError(f"cell '{cell}': unknown op '{_short(e.op)}' on edge {e.input}->{e.node}; "
                                        f"space '{name}' allows {', '.join(d.ops)}")
                present.add(r)
            covered: set[int] = set()
            for rule in rules.get(cell, []):
                covered.update(rule.edges)
                n = len(present & set(rule.edges))
                if n != rule.keep:
                    raise GenotypeError(f"cell '{cell}': node {rule.node} has {n} input edge(s); space '{name}' "
                                        f"keeps {rule.keep}")
            missing = [r for r in range(len(decisions[cell])) if r not in covered and r not in present]
            if missing:
                d = decisions[cell][missing[0]]
                raise GenotypeError(f"cell '{cell}' lacks the edge {d.input}->{d.node} (space '{name}' keeps every "
                                    f"edge; {len(missing)} missing)")

    def validate_genotype(self, genotype: Genotype) -> None:
        """Raise :class:`GenotypeError` unless the genotype is a member of this space."""
        if self.members is not None:
            if not self.contains(genotype):
                raise GenotypeError(f"genotype is not one of the {len(self.members)} members of the shrunk space "
                                    f"'{self.name}': {self.format(genotype)}")
            return
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
            index = self._members_index()
            return genotype in index or genotype.model_copy(update={"space": self._member_space_name()}) in index
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
        members = self._members_index() if self.members is not None else None
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
                    ok = cand in members if members is not None else self._valid(cand)
                    if ok:
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
        """The subspace whose edges may only use the allowed (row, op) entries (members outside it drop out)."""
        sub = copy.copy(self)
        prev = self.allowed or {}
        sub.allowed = {k: (v.bool() & prev[k].bool()) if k in prev else v.bool() for k, v in allowed.items()}
        sub._member_cache, sub.last_selection = None, None
        if self.members is not None:
            sub.members = [g for g in self.members
                           if all(bool((e.bool() <= sub.allowed[k]).all()) for k, e in self.encode(g).items()
                                  if k in sub.allowed)]
        return sub

    def restrict_to(self, members: Sequence[Genotype]) -> SearchSpace:
        """The subspace of exactly these genotypes (e.g. LISSNAS pockets): its op table is the union of their
        ops, and :meth:`discretize` returns the best-scoring member (see the class docstring)."""
        members = list(dict.fromkeys(members))
        if not members:
            raise ValueError("restrict_to needs at least one member")
        sub = copy.copy(self)
        sub.members = None
        sub._member_cache, sub.last_selection = None, None
        union = member_union(sub, members)
        prev = self.allowed or {}
        sub.allowed = {k: (v & prev[k].bool()) if k in prev else v for k, v in union.items()}
        sub.members = members
        return sub

    # -- member-constrained selection -------------------------------------------------------
    def _member_space_name(self) -> str:
        return self.members[0].space if self.members else self.name

    def _members_index(self) -> dict[Genotype, int]:
        return self._member_data()["index"]

    def _member_data(self) -> dict[str, Any]:
        assert self.members is not None
        if self._member_cache is None or self._member_cache["n"] != len(self.members):
            encs = [self.encode(g) for g in self.members]
            self._member_cache = {
                "n": len(self.members),
                "index": {g: i for i, g in enumerate(self.members)},
                "enc": {k: torch.stack([e[k] for e in encs]) for k in encs[0]},
            }
        return self._member_cache

    def member_scores(self, scores: dict[str, torch.Tensor]) -> torch.Tensor:
        """Each member's Σ of per-edge log-weights under ``scores`` (:func:`nasfw.members.member_scores`)."""
        from nasfw.members import member_scores

        if self.members is None:
            raise ValueError(f"space '{self.name}' has no explicit members (use restrict_to)")
        return member_scores(self._member_data()["enc"], scores, self.op_table())

    def best_member(self, scores: dict[str, torch.Tensor],
                    unconstrained: Callable[[], Genotype] | None = None) -> Genotype:
        """The member that scores best; records the decision in :attr:`last_selection`."""
        from nasfw.members import best_index

        values = self.member_scores(scores)
        i = best_index(values)
        free: Genotype | None = None
        if unconstrained is not None:
            try:
                free = unconstrained()
            except GenotypeError:
                free = None
        self.last_selection = {
            "member_constrained": True, "members": len(values), "member_index": i,
            "member_log_score": round(float(values[i]), 6),
            "unconstrained_is_member": free is not None and free in self._members_index(),
        }
        return self.members[i]  # type: ignore[index]


def _member_aware(discretize: Callable[..., Genotype]) -> Callable[..., Genotype]:
    """Wrap a subclass's ``discretize``: on a member space, the best-scoring member instead."""

    @functools.wraps(discretize)
    def wrapper(self: SearchSpace, scores: dict[str, torch.Tensor]) -> Genotype:
        if self.members is None:
            return discretize(self, scores)
        return self.best_member(scores, unconstrained=lambda: discretize(self, scores))

    wrapper._member_aware = True  # type: ignore[attr-defined]
    return wrapper


def member_union(space: SearchSpace, members: Sequence[Genotype]) -> dict[str, torch.Tensor]:
    """The per-edge projection of a member set: every (edge, op) some member uses; edges no member uses keep
    the space's ops (so topology rules can still be satisfied). A superset of the members."""
    out: dict[str, torch.Tensor] | None = None
    for g in members:
        enc = space.encode(g)
        out = {k: v.bool() for k, v in enc.items()} if out is None else {k: out[k] | enc[k].bool() for k in out}
    if out is None:
        raise ValueError("empty member set")
    table = space.op_table()
    for k, t in out.items():
        unused = ~t.any(dim=1)
        t[unused] = table[k][unused]
    return out


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _names(names: Any) -> str:
    return "[" + ", ".join(_short(str(k)) for k in sorted(names)[:8]) + (", ..." if len(names) > 8 else "") + "]"


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

    def plan(self, epochs: int) -> dict[str, Any]:
        """What the schedule does over ``epochs`` (e.g. its warm-up in epochs); raise
        :func:`nasfw.budget.refuse` (naming the option without a prefix) when it cannot work in that many
        epochs. The optimizer that owns the schedule calls it from its own ``plan``."""
        return {}


class Optimizer(Component):
    """Owns the per-step update of weights and/or architecture parameters during the search."""

    #: Whether the search loop runs at all (``none`` — training-free — says False).
    trains: ClassVar[bool] = True
    #: Whether it trains and ranks whole architectures drawn with ``run.space.sample`` (random search with
    #: weight sharing, SPOS): on a shrunk space those are members only. Otherwise (DARTS-style) the supernet
    #: trains the union of the members' ops and selection picks the best-scoring member.
    samples_architectures: ClassVar[bool] = False
    #: Whether steps are right under several processes (torchrun): the optimizer averages its gradients
    #: (and any losses it compares) with ``self.dist.average_``, so every rank takes the same step. The
    #: engine refuses a multi-process search with an optimizer that does not say so.
    distributed: ClassVar[bool] = False
    #: Whether this optimizer moves α (the "every method acts" matrix then requires |Δα| > 0 on every
    #: architecture tensor). False for methods that only train weights or do not search.
    updates_alpha: ClassVar[bool] = True

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

    def tune_epoch_start(self, epoch: int) -> None:
        """Called by a selector before its fine-tuning epoch ``epoch`` (0-based: the selection's own clock,
        after :meth:`configure_tuning`), instead of :meth:`epoch_start`. Selection is not more search epochs:
        the search's schedules (lr, warm-up, annealing) stay where the search ended, as in the official
        codes. The default therefore re-enters the last search epoch; an optimizer with step-level schedules
        overrides this to keep its own tuning clock."""
        self.epoch_start(max(getattr(self, "epochs", 1) - 1, 0))

    def plan(self, budget: Budget) -> dict[str, Any]:
        """What this optimizer will do in a search of ``budget`` (shown before the run starts), e.g.
        ``{"alpha_updates": 12, "oracle_calls": 96}``. Raise :func:`nasfw.budget.refuse` (a ConfigError) when
        the settings leave it nothing to do (a warm-up as long as the search), before any work is done.

        Called before :meth:`setup` (no supernet yet, no data touched beyond counting batches): use
        ``self.config``, ``budget`` and, where needed, ``self.run.space`` (the full space) only."""
        return {}

    def activity(self) -> dict[str, Any]:
        """What it did, for ``summary.json``'s ``activity`` block (e.g. α updates made). The engine adds
        the total |Δα| per architecture tensor itself."""
        return {}

    def acted(self, activity: dict[str, Any]) -> str | None:
        """None when the run's ``activity`` block shows this optimizer did its job, else why not (one line).
        Default: with ``updates_alpha``, every architecture tensor moved."""
        if not self.updates_alpha:
            return None
        change = activity.get("optimizer", {}).get("alpha_abs_change", {})
        still = sorted(k for k, v in change.items() if not v > 0)
        if not change:
            return "no α was recorded (the search did not run)"
        return f"α did not move (|Δα| = 0 for {', '.join(still)})" if still else None


class Selector(Component):
    """Turns a (trained or untrained) supernet into a genotype."""

    #: Under several processes: True runs ``select`` on every rank together (evaluations through
    #: ``run.evaluate`` are summed over ranks, training steps go through the distributed optimizer, decisions
    #: must come out equal); False (the default) runs it on rank 0 alone, exactly as in one process, and
    #: broadcasts the genotype.
    distributed: ClassVar[bool] = False
    #: Whether it reads what a search learned (α, trained weights): then a run without a search (optimizer
    #: ``none`` or ``search.epochs=0``) is refused, and the acts matrix skips such pairs with this reason.
    #: Training-free selectors (saliency at initialisation) say False.
    needs_search: ClassVar[bool] = True

    def edge_weighting(self) -> Any:
        """The edge weighting this selector needs when the optimizer does not train the supernet (or
        None); a training optimizer's weighting (softmax by default) always wins."""
        return None

    def select(self, supernet: Supernet, space: SearchSpace, run: Run) -> Genotype:
        """The genotype. Record what was decided with ``run.note_activity("selector", ...)``."""
        raise NotImplementedError

    def plan(self, space: SearchSpace, budget: Budget) -> dict[str, Any]:
        """What selection will do (decisions, tuning steps, evaluations) for a search of ``budget``; raise
        :func:`nasfw.budget.refuse` when the settings cannot act. Shown before the run starts; a
        ``tuning_steps`` entry (weight steps the selector will take) enters the run's ETA. Called before the
        optimizer's ``setup`` (``budget.epochs`` is 0 when there is no search)."""
        return {}

    def acted(self, activity: dict[str, Any]) -> str | None:
        """None when the run's ``activity`` block shows the selection did its job (e.g. every planned decision
        was made), else why not (one line). Default: a selector that returned a genotype acted."""
        return None


@dataclass
class ShrunkSpace:
    """What a shrinker returns: an explicit member set, plus statistics for the report."""

    members: list[Genotype]
    info: dict[str, Any] = field(default_factory=dict)

    def op_mask(self, space: SearchSpace) -> dict[str, torch.Tensor]:
        """The per-edge projection: every (edge, op) used by some member. A superset of the members."""
        if not self.members:
            raise ValueError("empty shrunk space")
        return member_union(space, self.members)


class Shrinker(Component):
    """Turns a space into a smaller one before (or between) searches."""

    def shrink(self, space: SearchSpace, run: Run) -> ShrunkSpace:
        raise NotImplementedError

    def plan(self, space: SearchSpace) -> dict[str, Any]:
        """What shrinking will do (rounds, evaluations); raise :func:`nasfw.budget.refuse` when it cannot act."""
        return {}

    def acted(self, activity: dict[str, Any]) -> str | None:
        """None when the run's ``activity`` block shows the space shrank (default: ``shrink_ratio`` > 1)."""
        ratio = activity.get("shrinker", {}).get("shrink_ratio")
        if ratio is None:
            size = activity.get("shrinker", {}).get("members")
            return None if size else "no shrink ratio recorded (space size unknown and no members)"
        return None if ratio > 1 else f"the space did not shrink (ratio {ratio})"


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
