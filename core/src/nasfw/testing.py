"""Contract test kit: run ``check_*`` on a component to prove it fits what the engine relies on.

A plugin author calls, in their own tests::

    from nasfw.testing import check_search_space, check_optimizer, check_selector

    def test_my_space_contract():
        check_search_space(MySpace, {"layers": 2})

    def test_my_optimizer_contract():
        check_optimizer(MyOptimizer)          # trained on the kit's tiny toy cell space

Each check builds what it needs from tiny toys that ship here (a 3-edge cell space ``toy-cell``, a
synthetic 8x8 dataset ``toy-images``, a benchmark table ``toy-table`` and a few trivial fixture
components), registered in a private :class:`~nasfw.registry.Registry` that also holds every
installed plugin, so a check runs in seconds on a CPU and never touches the user's data. A component
may be passed as a class (registered as ``under-test`` for the check), an instance (its config is
used) or a registered name (presets included). A broken contract raises :class:`ContractError`
(an ``AssertionError``, so pytest reports it as a failure) whose message names the component and
the rule. The kit imports nothing but ``nasfw``, torch and pydantic.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import math
import random
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, NamedTuple

import torch
import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator
from torch import nn

from nasfw import __version__, hookimpl
from nasfw.components import (
    Benchmark,
    Component,
    Dataset,
    Edge,
    EdgeWeighting,
    LRSchedule,
    NodeRule,
    Optimizer,
    SearchSpace,
    Selector,
    Shrinker,
    ShrunkSpace,
    StrictModel,
)
from nasfw.config import ComponentRef, LogSettings, RunConfig, SearchSettings
from nasfw.data import Batch, DataShape, DataSplits
from nasfw.errors import GenotypeError, NasfwError
from nasfw.genotype import Genotype, GenotypeEdge
from nasfw.registry import KINDS, Registry
from nasfw.supernet import Supernet

#: The name a component class passed to a check is registered under.
SUBJECT = "under-test"
#: Shape of the kit's toy data: 1 channel, 8x8, 4 classes.
TOY_SHAPE = DataShape(channels=1, height=8, width=8, num_classes=4)


class ContractError(AssertionError):
    """A component breaks a rule of the nasfw component contract (a test failure, not a user error)."""


def _require(cond: bool, who: str, rule: str) -> None:
    if not cond:
        raise ContractError(f"{who}: {rule}")


# =========================================================================== toy cell space

_TOY_OPS = ("conv_3x3", "avg_pool_3x3", "skip_connect", "conv_1x1", "max_pool_3x3", "none")


class _Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0.0


def _toy_op(name: str, channels: int, affine: bool) -> nn.Module:
    if name == "conv_3x3":
        return nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                             nn.BatchNorm2d(channels, affine=affine))
    if name == "conv_1x1":
        return nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1, bias=False),
                             nn.BatchNorm2d(channels, affine=affine))
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=1, padding=1)
    if name == "skip_connect":
        return nn.Identity()
    return _Zero()


class ToyCellConfig(StrictModel):
    channels: int = Field(default=4, ge=1, description="channels of every node")
    layers: int = Field(default=1, ge=1, description="stacked cells (sharing α)")
    ops: list[str] = Field(default_factory=lambda: ["conv_3x3", "avg_pool_3x3", "skip_connect"], min_length=1,
                           description=f"candidate ops of every edge, from {', '.join(_TOY_OPS)}")
    keep: int = Field(default=2, ge=1, le=2, description="inputs node 2 keeps (2: every edge, NB201-like; "
                                                           "1: a DARTS-like topology rule)")
    alpha_init_std: float = Field(default=1e-3, ge=0)

    @field_validator("ops")
    @classmethod
    def _known(cls, ops: list[str]) -> list[str]:
        bad = [o for o in ops if o not in _TOY_OPS]
        if bad:
            raise ValueError(f"unknown toy ops {bad}; choose from {list(_TOY_OPS)}")
        if len(set(ops)) != len(ops):
            raise ValueError("ops has duplicates")
        return ops


#: (node, input) of the toy cell's three edges, in row order.
_TOY_EDGES = ((1, 0), (2, 0), (2, 1))


class _ToyCell(nn.Module):
    """Nodes 0 (input), 1 and 2 (output); row r of α mixes the candidate ops of edge r."""

    def __init__(self, ops_per_row: list[list[str]], channels: int, affine: bool):
        super().__init__()
        self.edges = nn.ModuleList(nn.ModuleList(_toy_op(o, channels, affine) for o in row) for row in ops_per_row)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, active: list[list[int]]) -> torch.Tensor:
        nodes = [x]
        for node in (1, 2):
            acc: torch.Tensor | None = None
            for row, (n, inp) in enumerate(_TOY_EDGES):
                if n != node:
                    continue
                for k in active[row]:
                    out = weights[row, k] * self.edges[row][k](nodes[inp])
                    acc = out if acc is None else acc + out
            nodes.append(acc if acc is not None else torch.zeros_like(x))
        return nodes[2]


class ToySupernet(Supernet):
    """Stem conv → ``layers`` toy cells (one α tensor ``cell``) → global pooling → linear."""

    def __init__(self, shape: DataShape, weighting: EdgeWeighting, ops: list[str], channels: int, layers: int,
                 alpha_init_std: float):
        super().__init__({"cell": (len(_TOY_EDGES), len(ops))}, weighting, alpha_init_std)
        self.stem = nn.Sequential(nn.Conv2d(shape.channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))
        self.cells = nn.ModuleList(_ToyCell([list(ops)] * len(_TOY_EDGES), channels, False) for _ in range(layers))
        self.head = nn.Linear(channels, shape.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.mixing_weights()["cell"]
        active = self.active_ops({"cell": w})["cell"]  # exact zeros skipped when nothing needs their gradient
        h = self.stem(x)
        for cell in self.cells:
            h = cell(h, w, active)
        return self.head(h.mean(dim=(2, 3)))


class ToyNetwork(nn.Module):
    """The stand-alone network of a toy genotype: each chosen edge carries its one op."""

    def __init__(self, genotype: Genotype, shape: DataShape, channels: int, layers: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(shape.channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))
        chosen = {(e.node, e.input): e.op for e in genotype.cells["cell"]}
        rows = [[chosen[key]] if key in chosen else [] for key in _TOY_EDGES]
        self.active = [[0] if r else [] for r in rows]
        self.cells = nn.ModuleList(_ToyCell(rows, channels, True) for _ in range(layers))
        self.register_buffer("ones", torch.ones(len(_TOY_EDGES), 1))
        self.head = nn.Linear(channels, shape.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for cell in self.cells:
            h = cell(h, self.ones, self.active)
        return self.head(h.mean(dim=(2, 3)))


class ToyCellSpace(SearchSpace):
    """Kit fixture: a 3-edge cell (0→1, 0→2, 1→2) with 3 candidate ops, small enough to enumerate (27)."""

    Config = ToyCellConfig
    config: ToyCellConfig

    def decisions(self) -> dict[str, list[Edge]]:
        return {"cell": [Edge(node=n, input=i, ops=tuple(self.config.ops)) for n, i in _TOY_EDGES]}

    def topology(self) -> dict[str, list[NodeRule]]:
        if self.config.keep == 2:
            return {}
        return {"cell": [NodeRule(node=1, edges=(0,), keep=1), NodeRule(node=2, edges=(1, 2), keep=self.config.keep)]}

    def build_supernet(self, shape: DataShape, weighting: EdgeWeighting) -> ToySupernet:
        c = self.config
        return ToySupernet(shape, weighting, c.ops, c.channels, c.layers, c.alpha_init_std)

    def discretize(self, scores: dict[str, torch.Tensor]) -> Genotype:
        """Best available op per edge; with ``keep=1`` node 2 keeps its better-scored input only."""
        s = scores["cell"].detach().float().cpu()
        table = self.op_table()["cell"]
        best: list[tuple[float, int] | None] = []
        for r in range(len(_TOY_EDGES)):
            cand = [(float(s[r, k]), k) for k in range(s.shape[1]) if bool(table[r, k])]
            best.append(max(cand, key=lambda t: (t[0], -t[1])) if cand else None)
        rows = [0, 1, 2]
        if self.config.keep == 1:
            ranked = sorted((r for r in (1, 2) if best[r] is not None), key=lambda r: -best[r][0])  # type: ignore[index]
            rows = [0, *ranked[:1]]
        edges = []
        for r in rows:
            b = best[r]
            if b is None:
                raise GenotypeError(f"edge {_TOY_EDGES[r][1]}->{_TOY_EDGES[r][0]} of the toy cell has no available op")
            node, inp = _TOY_EDGES[r]
            edges.append(GenotypeEdge(node=node, input=inp, op=self.config.ops[b[1]]))
        return Genotype(space=self.name or "toy-cell", cells={"cell": edges})

    def build_network(self, genotype: Genotype, shape: DataShape, **options: Any) -> ToyNetwork:
        self.validate_genotype(genotype)
        return ToyNetwork(genotype, shape, int(options.get("channels", self.config.channels)),
                          int(options.get("layers", self.config.layers)))

    def enumerate(self) -> Iterator[Genotype]:
        if self.members is not None:
            return iter(list(self.members))
        out = []
        for choice in itertools.product([None, *self.config.ops], repeat=len(_TOY_EDGES)):
            edges = [GenotypeEdge(node=n, input=i, op=op) for (n, i), op in zip(_TOY_EDGES, choice) if op is not None]
            g = Genotype(space=self.name or "toy-cell", cells={"cell": edges})
            if self.contains(g):
                out.append(g)
        return iter(out)

    def size(self) -> int | None:
        return sum(1 for _ in self.enumerate())

    def format(self, genotype: Genotype) -> str:
        return "|".join(f"{e.op}~{e.input}->{e.node}" for e in sorted(genotype.cells["cell"], key=lambda e: (
            e.node, e.input)))

    def parse(self, text: str) -> Genotype:
        """Parse ``op~input->node|...`` (what :meth:`format` writes)."""
        edges = []
        for part in filter(None, text.strip().split("|")):
            try:
                op, rest = part.split("~")
                inp, node = rest.split("->")
                edges.append(GenotypeEdge(node=int(node), input=int(inp), op=op))
            except ValueError:
                raise GenotypeError(f"toy genotype part '{part}' is not 'op~input->node'") from None
        g = Genotype(space=self.name or "toy-cell", cells={"cell": edges})
        self.validate_genotype(g)
        return g


# =========================================================================== toy data, benchmark, fixtures


class ToyImages(Dataset):
    """Kit fixture: seeded synthetic 8x8 images, one noisy prototype per class (learnable in a few steps)."""

    class Config(StrictModel):
        n_train: int = Field(default=64, ge=4)
        n_val: int = Field(default=64, ge=4)
        n_test: int = Field(default=32, ge=0)
        noise: float = Field(default=0.5, ge=0)

    def splits(self, seed: int) -> DataSplits:
        shape = TOY_SHAPE
        proto = torch.randn(shape.num_classes, shape.channels, shape.height, shape.width,
                            generator=torch.Generator().manual_seed(1234))
        g = torch.Generator().manual_seed((seed * 7 + 5) % 2**64)

        def make(n: int) -> torch.utils.data.TensorDataset:
            y = torch.arange(n) % shape.num_classes
            y = y[torch.randperm(n, generator=g)]
            x = proto[y] + self.config.noise * torch.randn(n, *proto.shape[1:], generator=g)
            return torch.utils.data.TensorDataset(x, y)

        c = self.config
        test = make(c.n_test) if c.n_test else None
        return DataSplits(make(c.n_train), make(c.n_val), test, shape, {"dataset": "toy-images"})


#: per-op quality of the toy benchmark's closed form (percentage points of accuracy).
_TOY_OP_VALUE = {"conv_3x3": 9.0, "conv_1x1": 6.0, "max_pool_3x3": 3.0, "avg_pool_3x3": 2.5, "skip_connect": 1.0,
                 "none": 0.0}


def toy_accuracy(genotype: Genotype) -> float:
    """The toy benchmark's closed form: 60 + Σ op value + 4·[both paths into node 2 convolve] + hash noise < 1.

    Neighbours (one op changed) differ by a few points, so locality-based methods have signal.
    """
    edges = {(e.node, e.input): e.op for e in genotype.cells.get("cell", [])}
    acc = 60.0 + sum(_TOY_OP_VALUE[op] for op in edges.values())
    if edges.get((1, 0), "").startswith("conv") and edges.get((2, 1), "").startswith("conv"):
        acc += 4.0
    noise = int(hashlib.sha256(genotype.key().encode()).hexdigest()[:8], 16) / 16**8
    return round(acc + noise, 4)


class ToyBenchmark(Benchmark):
    """Kit fixture: a lookup table over every ``toy-cell`` genotype (built from :func:`toy_accuracy`)."""

    spaces = ("toy-cell",)

    class Config(StrictModel):
        space_params: dict[str, Any] = Field(default_factory=dict, description="params of the toy space")

    def __init__(self, config: BaseModel | None = None, ctx: Any = None):
        super().__init__(config, ctx)
        space = ToyCellSpace(ToyCellConfig(**self.config.space_params))
        space.name = "toy-cell"
        self.table = {g.key(): {"val_acc": toy_accuracy(g), "test_acc": round(toy_accuracy(g) - 1.0, 4),
                                "params": float(sum(e.op.startswith("conv") for e in g.cells["cell"]))}
                      for g in space.enumerate()}

    def query(self, genotype: Genotype) -> dict[str, float]:
        row = self.table.get(genotype.model_copy(update={"space": "toy-cell"}).key())
        if genotype.space not in self.spaces or row is None:
            raise GenotypeError(f"genotype of space '{genotype.space}' is not in the toy-table benchmark")
        return dict(row)


class KitSGD(Optimizer):
    """Kit fixture (not a NAS method): one joint SGD step on weights and α over the training batch."""

    class Config(StrictModel):
        lr: float = Field(default=0.05, gt=0)
        arch_lr: float = Field(default=0.05, ge=0)

    def setup(self, supernet: Supernet, data: Any, epochs: int, steps_per_epoch: int) -> None:
        super().setup(supernet, data, epochs, steps_per_epoch)
        self.update_alpha = True
        self._make(self.config.lr)

    def _make(self, lr: float) -> None:
        self.opt = torch.optim.SGD([{"params": self.supernet.weight_parameters(), "lr": lr},
                                    {"params": list(self.supernet.arch_parameters().values()),
                                     "lr": self.config.arch_lr if self.update_alpha else 0.0}], momentum=0.9)

    def step(self, train_batch: Batch, val_batch: Batch) -> dict[str, Any]:
        x, y = train_batch
        self.opt.zero_grad(set_to_none=True)
        logits = self.supernet(x)
        loss = nn.functional.cross_entropy(logits.float(), y)
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach(), "acc": (logits.argmax(1) == y).float().mean()}

    def configure_tuning(self, lr: float | None, update_alpha: bool) -> None:
        self.update_alpha = update_alpha
        self._make(lr if lr is not None else self.config.lr)

    def state_dict(self) -> dict[str, Any]:
        return {"opt": self.opt.state_dict(), "update_alpha": self.update_alpha}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.update_alpha = state["update_alpha"]
            self._make(self.config.lr)
            self.opt.load_state_dict(state["opt"])


class KitStrongest(Selector):
    """Kit fixture: the space's discretization of the supernet's strengths."""

    def select(self, supernet: Supernet, space: SearchSpace, run: Any) -> Genotype:
        return space.discretize(supernet.strengths())


class KitUntrained(KitStrongest):
    """Kit fixture: the same rule, declared training-free, to follow an optimizer that does not search."""

    needs_search = False


class KitDropOne(Shrinker):
    """Kit fixture: keeps the members of a finite space whose first edge does not use the space's 2nd op."""

    def shrink(self, space: SearchSpace, run: Any) -> ShrunkSpace:
        first = space.decisions()[sorted(space.decisions())[0]][0]
        banned = first.ops[1] if len(first.ops) > 1 else None
        keep = [g for g in space.enumerate()
                if not any(e.node == first.node and e.input == first.input and e.op == banned
                           for e in g.cells[sorted(g.cells)[0]])]
        return ShrunkSpace(keep, {"dropped": banned})


class KitTwins(Shrinker):
    """Kit fixture: keeps the cells whose first two edges carry the same op — not a product of per-edge
    choices (the union of their ops is the whole space), so only a member-constrained selection returns one."""

    def shrink(self, space: SearchSpace, run: Any) -> ShrunkSpace:
        cell = sorted(space.decisions())[0]
        first, second = space.decisions()[cell][:2]

        def op(g: Genotype, e: Any) -> str | None:
            return next((x.op for x in g.cells[cell] if (x.node, x.input) == (e.node, e.input)), None)

        return ShrunkSpace([g for g in space.enumerate() if op(g, first) == op(g, second)], {})


class _KitPlugin:
    """Registers the kit's toys (only in registries made by :func:`toy_registry`)."""

    @hookimpl
    def nasfw_register_search_spaces(self, register: Any) -> None:
        register("toy-cell", ToyCellSpace)

    @hookimpl
    def nasfw_register_datasets(self, register: Any) -> None:
        register("toy-images", ToyImages)

    @hookimpl
    def nasfw_register_benchmarks(self, register: Any) -> None:
        register("toy-table", ToyBenchmark)

    @hookimpl
    def nasfw_register_optimizers(self, register: Any) -> None:
        register("kit-sgd", KitSGD)

    @hookimpl
    def nasfw_register_selectors(self, register: Any) -> None:
        register("kit-strongest", KitStrongest)
        register("kit-untrained", KitUntrained)

    @hookimpl
    def nasfw_register_shrinkers(self, register: Any) -> None:
        register("kit-drop-one", KitDropOne)
        register("kit-twins", KitTwins)


class _SubjectPlugin:
    """Registers one component class under :data:`SUBJECT` for a check."""

    def __init__(self, kind: str, obj: Any):
        self.kind, self.obj = kind, obj

    def _reg(self, kind: str, register: Any) -> None:
        if kind == self.kind:
            register(SUBJECT, self.obj)

    @hookimpl
    def nasfw_register_search_spaces(self, register: Any) -> None:
        self._reg("search_space", register)

    @hookimpl
    def nasfw_register_optimizers(self, register: Any) -> None:
        self._reg("optimizer", register)

    @hookimpl
    def nasfw_register_selectors(self, register: Any) -> None:
        self._reg("selector", register)

    @hookimpl
    def nasfw_register_shrinkers(self, register: Any) -> None:
        self._reg("shrinker", register)

    @hookimpl
    def nasfw_register_datasets(self, register: Any) -> None:
        self._reg("dataset", register)

    @hookimpl
    def nasfw_register_edge_weightings(self, register: Any) -> None:
        self._reg("edge_weighting", register)

    @hookimpl
    def nasfw_register_lr_schedules(self, register: Any) -> None:
        self._reg("lr_schedule", register)

    @hookimpl
    def nasfw_register_benchmarks(self, register: Any) -> None:
        self._reg("benchmark", register)


def toy_registry(load_entrypoints: bool = True) -> Registry:
    """A fresh registry: the installed plugins (unless told not to) plus the kit's toys."""
    reg = Registry(load_entrypoints=load_entrypoints)
    reg.add_plugin(_KitPlugin(), "nasfw.testing", "nasfw", __version__)
    return reg


def _subject(kind: str, obj: Any, params: dict[str, Any] | None,
             registry: Registry | None) -> tuple[Registry, str, dict[str, Any], str]:
    """(registry holding the subject, its name there, its params, a label for messages)."""
    params = dict(params or {})
    if isinstance(obj, str):
        reg = registry or toy_registry()
        reg.info(kind, obj)  # raises UnknownComponentError naming what is installed
        return reg, obj, params, f"{KINDS[kind][1]} '{obj}'"
    if isinstance(obj, Component):
        params = {**obj.config.model_dump(mode="json"), **params}
        obj = type(obj)
    if not (isinstance(obj, type) and issubclass(obj, Component)):
        raise ContractError(f"{obj!r} is not a nasfw component class, instance or registered name")
    reg = registry or toy_registry()
    reg.add_plugin(_SubjectPlugin(kind, obj), f"nasfw.testing.subject.{kind}", "(under test)", "")
    return reg, SUBJECT, params, f"{KINDS[kind][1]} {obj.__name__}"


# =========================================================================== shared rules


def check_config(kind: str, obj: Any, params: dict[str, Any] | None = None, registry: Registry | None = None) -> \
        BaseModel:
    """The component's ``Config``: extra fields forbidden, valid with defaults, and a YAML round trip.

    ``Config()`` must work because ``--optimizer NAME`` without options is the common case; the
    round trip because ``config.yaml`` is saved with every run and read back on ``--resume``.
    """
    reg, name, params, who = _subject(kind, obj, params, registry)
    _, cls, _ = reg.resolve(kind, name)
    cfg_cls = cls.Config
    _require(isinstance(cfg_cls, type) and issubclass(cfg_cls, BaseModel), who, "Config must be a pydantic model")
    _require(cfg_cls.model_config.get("extra") == "forbid", who,
             "Config must forbid unknown fields (subclass nasfw.components.StrictModel)")
    try:
        cfg_cls()
    except ValidationError as exc:
        raise ContractError(f"{who}: Config() must be valid with defaults only: {exc.errors()[0]['msg']}") from None
    try:
        cfg_cls.model_validate({"__surely_not_an_option__": 1})
        raise ContractError(f"{who}: Config accepted an unknown option")
    except ValidationError:
        pass
    _, _, config = reg.resolve(kind, {"name": name, "params": params})
    dumped = yaml.safe_load(yaml.safe_dump(config.model_dump(mode="json")))
    _require(cfg_cls.model_validate(dumped) == config, who,
             "Config must survive model_dump(mode='json') → YAML → model_validate unchanged (config.yaml, --resume)")
    return config


# =========================================================================== search spaces


def _weighting(reg: Registry, ref: Any = "softmax") -> EdgeWeighting:
    return reg.create("edge_weighting", ref)


def _build_supernet(space: SearchSpace, shape: DataShape, weighting: EdgeWeighting) -> Supernet:
    net = space.build_supernet(shape, weighting)
    for name, table in space.op_table().items():  # what the engine does after building
        net.set_mask(name, net.mask(name).cpu() & table)
    return net


def _op_tables(net: Supernet) -> dict[str, torch.Tensor]:
    """The (rows, ops) α table of each cell type: a supernet may hold other architecture parameters too
    (PC-DARTS' per-edge β, ``alphas["beta_<cell>"]``)."""
    return {k: net.alphas[k] for k in getattr(net, "cell_types", net.arch_parameters())}


def _logits(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


def _check_genotype(space: SearchSpace, g: Any, who: str, what: str) -> None:
    _require(isinstance(g, Genotype), who, f"{what} must return a nasfw.genotype.Genotype, got {type(g).__name__}")
    try:
        space.validate_genotype(g)
    except GenotypeError as exc:
        raise ContractError(f"{who}: {what} returned a genotype the space rejects: {exc}") from None
    _require(space.contains(g), who, f"{what} returned a genotype the space does not contain: {space.format(g)}")


def check_search_space(space: Any, params: dict[str, Any] | None = None, *, shape: DataShape = TOY_SHAPE,
                       network_options: dict[str, Any] | None = None, registry: Registry | None = None,
                       samples: int = 6, seed: int = 0, text_round_trip: bool = True) -> SearchSpace:
    """Check a search space: config, decisions, discretize/validate, sample/enumerate/mutate/distance,
    parse/format, encode, restriction, supernet forward/masks/gradients/state and the stand-alone network.

    ``network_options`` go to :meth:`SearchSpace.build_network` (keep the network tiny, e.g.
    ``{"C": 4, "layers": 3}`` for DARTS). ``text_round_trip=False`` skips ``parse(format(g)) == g``
    (only to see the other rules while that one is being fixed). Returns the built space.
    """
    reg, name, params, who = _subject("search_space", space, params, registry)
    check_config("search_space", name, params, reg)
    sp: SearchSpace = reg.create("search_space", {"name": name, "params": params})
    rng = random.Random(seed)

    # -- decisions -----------------------------------------------------------------------------
    dec = sp.decisions()
    _require(isinstance(dec, dict) and len(dec) > 0, who, "decisions() must map at least one cell type to edges")
    for cell, edges in dec.items():
        _require(len(edges) > 0, who, f"cell '{cell}' has no edges")
        for e in edges:
            _require(isinstance(e, Edge) and len(e.ops) > 0 and len(set(e.ops)) == len(e.ops), who,
                     f"edge {e} of cell '{cell}' needs distinct, non-empty candidate ops")
    shapes = sp.arch_shapes()
    table = sp.op_table()
    for cell in dec:
        _require(tuple(table[cell].shape) == tuple(shapes[cell]), who, f"op_table()['{cell}'] shape != arch_shapes()")
    for cell, rules in sp.topology().items():
        for rule in rules:
            _require(all(0 <= r < len(dec[cell]) for r in rule.edges) and 1 <= rule.keep <= len(rule.edges), who,
                     f"topology rule {rule} of cell '{cell}' refers to missing edges or keeps too many")

    # -- discretize, validate, encode, JSON, text ----------------------------------------------
    def random_scores(gen: torch.Generator) -> dict[str, torch.Tensor]:
        out = {}
        for cell, t in table.items():
            s = torch.rand(t.shape, generator=gen)
            out[cell] = torch.where(t, s, torch.full_like(s, float("-inf")))
        return out

    gen = torch.Generator().manual_seed(seed)
    scores = random_scores(gen)
    g0 = sp.discretize(scores)
    _check_genotype(sp, g0, who, "discretize(random scores)")
    _require(sp.discretize({k: v.clone() for k, v in scores.items()}) == g0, who, "discretize must be deterministic")
    _require(sp.discretize(sp._scores_of(g0)) == g0, who, "discretize(scores of g) must give g back")
    genotypes = [g0]
    for _ in range(samples):
        g = sp.sample(rng)
        _check_genotype(sp, g, who, "sample()")
        genotypes.append(g)
    _require(sp.sample(random.Random(seed + 99)) == sp.sample(random.Random(seed + 99)), who,
             "sample(rng) must depend only on rng")
    for g in genotypes:
        enc = sp.encode(g)
        for cell, t in enc.items():
            _require(bool(((t == 0) | (t == 1)).all()) and bool((t.sum(1) <= 1).all()), who,
                     f"encode() must be one-hot per edge (cell '{cell}')")
            _require(bool((t.bool() <= table[cell]).all()), who, "encode() marks an op that op_table() says is absent")
        again = Genotype.from_dict(json.loads(g.to_json()))
        _require(again == g, who, "a genotype must survive its JSON form")
        text = sp.format(g)
        _require(isinstance(text, str) and text != "", who, "format() must return a non-empty string")
        if text_round_trip and type(sp).parse is not SearchSpace.parse:
            try:
                parsed = sp.parse(text)
            except GenotypeError as exc:
                raise ContractError(f"{who}: parse(format(g)) failed: {exc}") from None
            _require(parsed == g, who, f"parse(format(g)) != g for {text}")

    # -- distances, neighbours, mutation --------------------------------------------------------
    for a in genotypes:
        _require(sp.distance(a, a) == 0, who, "distance(g, g) must be 0")
        for b in genotypes:
            dab = sp.distance(a, b)
            _require(dab >= 0 and math.isfinite(dab), who, "distance must be finite and non-negative")
            _require(dab == sp.distance(b, a), who, "distance must be symmetric")
            _require((dab == 0) == (a == b), who, "distance is 0 exactly between equal genotypes")
            for c in genotypes[:3]:
                _require(sp.distance(a, c) <= dab + sp.distance(b, c) + 1e-9, who,
                         "distance must satisfy the triangle inequality")
    for g in genotypes[:3]:
        for nb in itertools.islice(sp.neighbours(g), 12):
            _check_genotype(sp, nb, who, "neighbours()")
            _require(sp.distance(g, nb) > 0, who, "a neighbour must be at distance > 0")
        m = sp.mutate(g, random.Random(seed))
        _check_genotype(sp, m, who, "mutate()")

    # -- enumerate and size --------------------------------------------------------------------
    size = sp.size()
    members: list[Genotype] | None = None
    try:
        members = list(sp.enumerate()) if size is None or size <= 5000 else None
    except NotImplementedError:
        members = None
    if members is not None:
        _require(len(members) > 0, who, "enumerate() yielded nothing")
        _require(len(set(members)) == len(members), who, "enumerate() yielded duplicates")
        if size is not None:
            _require(size == len(members), who, f"size() says {size} but enumerate() yields {len(members)}")
        keys = set(members)
        for g in genotypes:
            _require(g in keys, who, f"sample() gave a genotype enumerate() lacks: {sp.format(g)}")
        for g in members[:: max(1, len(members) // 10)]:
            _check_genotype(sp, g, who, "enumerate()")

    # -- restriction ---------------------------------------------------------------------------
    allowed = {}
    for cell, t in table.items():
        a = t.clone()
        for r in range(a.shape[0]):
            on = a[r].nonzero().flatten().tolist()
            if len(on) > 1:
                a[r, on[-1]] = False  # drop the last candidate of every edge with a choice
        allowed[cell] = a
    sub = sp.restrict(allowed)
    for _ in range(3):
        try:
            g = sub.sample(rng)
        except GenotypeError:
            break  # a topology rule may need the dropped ops; the restricted space is then empty
        _require(sub.contains(g) and sp.contains(g), who, "a restricted space's sample must lie in both spaces")
        enc = sub.encode(g)
        _require(all(bool((enc[k].bool() <= allowed[k]).all()) for k in enc), who,
                 "restrict(): a sample used a dropped op")
    pair = genotypes[:2]
    sub2 = sp.restrict_to(pair)
    for _ in range(3):
        _require(sub2.sample(rng) in set(pair), who, "restrict_to(members): sample must be one of the members")
    _require(sub2.contains(pair[0]), who, "restrict_to(members) must contain its members")

    # -- supernet ------------------------------------------------------------------------------
    torch.manual_seed(seed)
    weighting = _weighting(reg)
    net = _build_supernet(sp, shape, weighting)
    _require(isinstance(net, Supernet), who, "build_supernet must return a nasfw.supernet.Supernet")
    ops = _op_tables(net)
    _require(set(ops) == set(dec), who, "the supernet needs one α tensor per cell type of decisions()")
    for cell, a in ops.items():
        _require(tuple(a.shape) == tuple(shapes[cell]), who, f"α['{cell}'] shape {tuple(a.shape)} != arch_shapes()")
    x = torch.randn(4, shape.channels, shape.height, shape.width, generator=torch.Generator().manual_seed(seed))
    y = torch.arange(4) % shape.num_classes
    net.train()
    out = _logits(net(x))
    _require(tuple(out.shape) == (4, shape.num_classes), who,
             f"supernet output shape {tuple(out.shape)} != (batch, num_classes) = (4, {shape.num_classes})")
    _require(bool(torch.isfinite(out).all()), who, "supernet output must be finite")
    nn.functional.cross_entropy(out, y).backward()
    for cell, a in net.arch_parameters().items():  # None: this cell type (or edge weight) is not used at this size
        _require(a.grad is None or bool(torch.isfinite(a.grad).all()), who,
                 f"the loss must have a finite gradient w.r.t. α['{cell}']")
    _require(any(a.grad is not None and float(a.grad.abs().sum()) > 0 for a in net.arch_parameters().values()), who,
             "α gets no gradient: the forward pass must use mixing_weights()")
    _require(any(p.grad is not None for p in net.weight_parameters()), who, "no weight parameter gets a gradient")
    net.zero_grad(set_to_none=True)

    net.eval()
    # every comparison below re-seeds the global RNG first, so stochastic ops (RobustDARTS' noise) compare too
    torch.manual_seed(seed)
    with torch.no_grad():
        full = _logits(net(x))
    torch.manual_seed(seed)
    full_grad = _logits(net(x)).detach()
    _require(torch.allclose(full, full_grad, rtol=1e-4, atol=1e-5), who,
             "forward with and without autograd must agree (skipping zero-weight ops must not change the output)")
    g = genotypes[1]
    enc = {k: v.to(torch.float32) for k, v in sp.encode(g).items()}
    saved = {k: m.clone() for k, m in net.masks().items()}
    for cell in enc:
        net.set_mask(cell, enc[cell].bool() & saved[cell])
    torch.manual_seed(seed)
    masked = _logits(net(x))
    masked.sum().backward()
    for cell, a in ops.items():
        off = ~net.mask(cell).cpu()
        _require(a.grad is None or bool((a.grad.cpu()[off] == 0).all()), who,
                 f"masked-out ops of '{cell}' still influence the output (their α has a gradient)")
    net.zero_grad(set_to_none=True)
    for cell, m in saved.items():
        net.set_mask(cell, m)
    torch.manual_seed(seed)
    with torch.no_grad(), net.override_weights(enc):
        overridden = _logits(net(x))
    _require(torch.allclose(masked.detach(), overridden, rtol=1e-4, atol=1e-5), who,
             "masking all but a genotype's ops must equal overriding the mixing weights with its one-hot encoding")
    if any(bool((t.sum(1) > 1).any()) for t in table.values()):
        _require(not torch.allclose(full, overridden, rtol=1e-4, atol=1e-6), who,
                 "the output does not change when the mixing weights do")
    # state round trip: what a checkpoint restores
    torch.manual_seed(seed + 1)
    twin = _build_supernet(sp, shape, weighting)
    twin.load_state_dict(net.state_dict())
    twin.eval()
    torch.manual_seed(seed)
    with torch.no_grad():
        _require(torch.allclose(_logits(twin(x)), full, rtol=1e-5, atol=1e-6), who,
                 "a supernet loaded from another's state_dict must compute the same output")

    # -- stand-alone network -------------------------------------------------------------------
    model = sp.build_network(g, shape, **(network_options or {}))
    _require(isinstance(model, nn.Module), who, "build_network must return an nn.Module")
    model.eval()
    with torch.no_grad():
        out = _logits(model(x))
    _require(tuple(out.shape) == (4, shape.num_classes) and bool(torch.isfinite(out).all()), who,
             f"build_network output must be finite logits of shape (4, {shape.num_classes}), got {tuple(out.shape)}")
    return sp


# =========================================================================== run stages


@contextmanager
def stage(*, space: Any = "toy-cell", space_params: dict[str, Any] | None = None, optimizer: Any = "kit-sgd",
          selector: Any = "kit-strongest", shrinker: Any = None, registry: Registry | None = None,
          epochs: int = 1, steps: int = 2, batch_size: int = 8, seed: int = 0,
          out_dir: str | Path | None = None) -> Iterator[Any]:
    """A built :class:`nasfw.engine.Run` (data, space, supernet, optimizer, selector) on the toy data.

    Components are names or ``{name, params}`` references in ``registry`` (default: :func:`toy_registry`).
    The run directory is temporary unless ``out_dir`` is given.
    """
    from nasfw.engine import build, prepare

    reg = registry or toy_registry()
    config = RunConfig(
        space=ComponentRef.model_validate({"name": space, "params": space_params or {}} if isinstance(space, str)
                                          else space),
        optimizer=ComponentRef.model_validate(optimizer),
        selector=ComponentRef.model_validate(selector),
        shrinker=ComponentRef.model_validate(shrinker) if shrinker is not None else None,
        dataset=ComponentRef(name="toy-images"),
        search=SearchSettings(epochs=epochs, batch_size=batch_size, steps_per_epoch=steps, eval_batches=1),
        log=LogSettings(progress="none", tensorboard=False, plots=False),
        seed=seed,
        device="cpu",
    )
    with tempfile.TemporaryDirectory(prefix="nasfw-testing-") as tmp:
        run = prepare(config, reg, Path(out_dir) if out_dir is not None else Path(tmp), quiet=True)
        try:
            build(run)
            yield run
        finally:
            run.close()  # the directory lock: a later stage() on the same out_dir must get it


def train_steps(run: Any, n: int) -> list[dict[str, float]]:
    """``n`` optimizer steps exactly as the engine's loop makes them; returns their metrics as floats."""
    out = []
    for _ in range(n):
        batch, val = run.data.train.next(), run.data.val.next()
        run.supernet.train()
        metrics = run.optimizer.step(run.to_device(batch), run.to_device(val))
        run.global_step += 1
        out.append({k: float(v) for k, v in metrics.items()})
    return out


def _snapshot(run: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in run.supernet.state_dict().items() if v.is_floating_point()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    return [k for k in a if not torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-6, equal_nan=True)]


# =========================================================================== optimizers


def check_optimizer(optimizer: Any, params: dict[str, Any] | None = None, *, space: Any = "toy-cell",
                    space_params: dict[str, Any] | None = None, registry: Registry | None = None,
                    steps: int = 2, seed: int = 0) -> None:
    """Check an optimizer on the toy space: config; finite ``loss``/``acc`` per step; the steps change the
    supernet; epoch hooks; a checkpoint → resume round trip gives bit-identical next steps (the optimizer's
    own state, RNGs included, goes through ``state_dict``); and a whole engine run completes.
    """
    reg, name, params, who = _subject("optimizer", optimizer, params, registry)
    check_config("optimizer", name, params, reg)
    params = {**_tiny_preset_params(reg, "optimizer", name, params), **params}
    ref = {"name": name, "params": params}
    trains = reg.create("optimizer", ref).trains
    kw = dict(space=space, space_params=space_params, registry=reg, seed=seed, steps=steps,
              selector="kit-strongest" if trains else "kit-untrained")
    with stage(optimizer=ref, **kw) as run:
        opt = run.optimizer
        _require(isinstance(opt, Optimizer), who, "must subclass nasfw.components.Optimizer")
        if not opt.trains:
            _run_whole(run.config, reg, who)
            return
        before = _snapshot(run)
        opt.epoch_start(0)
        metrics = train_steps(run, steps)
        for m in metrics:
            _require("loss" in m and "acc" in m, who, f"step() must return at least 'loss' and 'acc', got {sorted(m)}")
            _require(all(math.isfinite(v) for v in m.values()), who, f"step() returned non-finite metrics {m}")
            _require(0.0 <= m["acc"] <= 1.0, who, f"'acc' is a fraction in [0, 1], got {m['acc']}")
        _require(len(_same(before, _snapshot(run))) > 0, who, f"{steps} steps changed neither weights nor α")
        extra = opt.epoch_end(0) or {}
        _require(all(math.isfinite(float(v)) for v in extra.values()), who, "epoch_end() returned non-finite metrics")

    # checkpoint round trip: A runs 1 step, checkpoints, runs `steps` more; B restores and runs the same
    from nasfw.checkpoint import load_checkpoint
    from nasfw.engine import _restore

    with tempfile.TemporaryDirectory(prefix="nasfw-testing-ckpt-") as tmp:
        with stage(optimizer=ref, out_dir=tmp, **kw) as run_a:
            run_a.optimizer.epoch_start(0)
            train_steps(run_a, 1)
            try:
                run_a.checkpoint()
            except Exception as exc:
                raise ContractError(f"{who}: state_dict() could not be checkpointed: {type(exc).__name__}: {exc}") \
                    from None
            metrics_a = train_steps(run_a, steps)
            after_a = _snapshot(run_a)
            try:
                state = load_checkpoint(Path(tmp) / "checkpoint.pt")
            except NasfwError as exc:
                raise ContractError(f"{who}: its state_dict() does not load with torch.load(weights_only=True): "
                                    f"{exc}") from None
        with stage(optimizer=ref, **kw) as run_b:
            _restore(run_b, state)
            run_b.optimizer.epoch_start(run_b.epoch)
            metrics_b = train_steps(run_b, steps)
            diff = _same(after_a, _snapshot(run_b))
            _require(not diff, who, "after restoring a checkpoint the next steps differ from the uninterrupted run "
                                    f"(tensors {diff[:3]}): save all optimizer state (moments, RNGs) in state_dict()")
            for ma, mb in zip(metrics_a, metrics_b):
                _require(all(math.isclose(ma[k], mb[k], rel_tol=1e-5, abs_tol=1e-6) for k in ma), who,
                         f"resumed step metrics differ: {ma} vs {mb}")
    _run_whole(_stage_config(reg, optimizer=ref, **kw), reg, who)


def _tiny_preset_params(reg: Registry, kind: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The component's own options in its ``tiny`` preset (the smallest settings at which it acts), so a
    contract check of a few steps does not trip the component's refusals (e.g. an α update every 10 steps)."""
    from nasfw.presets import _value

    cls = reg.resolve(kind, name)[1]
    config = RunConfig(**{kind: ComponentRef(name=name, params=params)})
    try:
        recipe = cls.preset("tiny", config)
    except Exception:  # a preset that needs more of the run than this config has: use the given params
        return {}
    return {k: _value(v)[0] for k, v in (recipe.params.items() if recipe is not None else ()) if "." not in k}


def _stage_config(reg: Registry, **kw: Any) -> RunConfig:
    with stage(**kw) as run:
        return run.config.model_copy(deep=True)


def _run_whole(config: RunConfig, reg: Registry, who: str) -> dict[str, Any]:
    """The full engine pipeline on a config; checks that the outputs exist and the genotype is valid."""
    from nasfw.engine import execute, prepare

    with tempfile.TemporaryDirectory(prefix="nasfw-testing-run-") as tmp:
        run = prepare(config.model_copy(deep=True), reg, Path(tmp), quiet=True)
        summary = execute(run)
        for f in ("config.yaml", "genotype.json", "summary.json"):
            _require((Path(tmp) / f).exists(), who, f"a whole run did not write {f}")
        g = Genotype.load(Path(tmp) / "genotype.json")
        _check_genotype(run.space, g, who, "the whole run")
    return summary


# =========================================================================== selectors


def check_selector(selector: Any, params: dict[str, Any] | None = None, *, optimizer: Any = "kit-sgd",
                   space: Any = "toy-cell", space_params: dict[str, Any] | None = None,
                   registry: Registry | None = None, steps: int = 2, seed: int = 0,
                   deterministic: bool = True) -> None:
    """Check a selector after a short search: it returns a genotype the space contains — on the toy space
    with and without a topology rule, and on two shrunk spaces: one op-restricted, one whose members are not a
    product of per-edge choices (the selector must return a member) — and, by default, the same genotype for
    the same seed.
    """
    reg, name, params, who = _subject("selector", selector, params, registry)
    check_config("selector", name, params, reg)
    ref = {"name": name, "params": params}
    variants: list[tuple[Any, Any, Any]] = [(space, space_params, None)]
    if space == "toy-cell" and not space_params:
        variants += [("toy-cell", {"keep": 1}, None), ("toy-cell", None, "kit-drop-one"),
                     ("toy-cell", None, "kit-twins")]
    for sp_name, sp_params, shrinker in variants:
        found = []
        for _ in range(2 if deterministic else 1):
            with ExitStack() as stack:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*searches a product space.*")  # intended here
                    run = stack.enter_context(stage(space=sp_name, space_params=sp_params, optimizer=optimizer,
                                                    selector=ref, shrinker=shrinker, registry=reg, steps=steps,
                                                    seed=seed))
                _require(isinstance(run.selector, Selector), who, "must subclass nasfw.components.Selector")
                if run.optimizer.trains:
                    run.optimizer.epoch_start(0)
                    train_steps(run, steps)
                g = run.selector.select(run.supernet, run.space, run)
                where = f"select() on {sp_name}{sp_params or ''}{' shrunk by ' + shrinker if shrinker else ''}"
                _check_genotype(run.space, g, who, where)
                found.append(g)
        if deterministic:
            _require(found[0] == found[1], who, "the same seed must select the same genotype (seed your RNGs from "
                                                "ctx.seed or the global RNG the engine seeds)")


# =========================================================================== shrinkers


def check_shrinker(shrinker: Any, params: dict[str, Any] | None = None, *, space: Any = "toy-cell",
                   space_params: dict[str, Any] | None = None, registry: Registry | None = None,
                   seed: int = 0) -> ShrunkSpace:
    """Check a shrinker: a non-empty list of distinct members of the space, JSON-able info, a usable op
    mask, and a whole engine run with the shrinker in front of a search.
    """
    reg, name, params, who = _subject("shrinker", shrinker, params, registry)
    check_config("shrinker", name, params, reg)
    ref = {"name": name, "params": params}
    with stage(space=space, space_params=space_params, registry=reg, seed=seed) as run:
        inst = reg.create("shrinker", ref, run.ctx)
        _require(isinstance(inst, Shrinker), who, "must subclass nasfw.components.Shrinker")
        full = run.space
        out = inst.shrink(full, run)
        _require(isinstance(out, ShrunkSpace), who, "shrink() must return a nasfw.components.ShrunkSpace")
        _require(len(out.members) > 0, who, "shrink() returned no members")
        _require(len(set(out.members)) == len(out.members), who, "shrink() returned duplicate members")
        for g in out.members:
            _check_genotype(full, g, who, "shrink()")
        size = full.size()
        if size is not None:
            _require(len(out.members) <= size, who, f"shrink() returned {len(out.members)} members of a {size}-space")
        try:
            json.dumps(out.info, default=str)
        except (TypeError, ValueError) as exc:
            raise ContractError(f"{who}: ShrunkSpace.info must be JSON-serialisable: {exc}") from None
        sub = full.restrict_to(out.members)
        _require(sub.sample(random.Random(seed)) in set(out.members), who, "restrict_to(members) sample not a member")
        mask = out.op_mask(full)
        for g in out.members:
            _require(full.restrict(mask).contains(g), who, "a member is not in the op mask of the shrunk space")
    _run_whole(_stage_config(reg, space=space, space_params=space_params, shrinker=ref, seed=seed), reg, who)
    return out


# =========================================================================== small kinds


def check_edge_weighting(weighting: Any, params: dict[str, Any] | None = None, *,
                         registry: Registry | None = None) -> None:
    """Check an edge weighting: shape-preserving, finite, zero where masked (fully masked rows too),
    differentiable in α, a finite strength on available entries, and a supernet that trains with it.
    """
    reg, name, params, who = _subject("edge_weighting", weighting, params, registry)
    check_config("edge_weighting", name, params, reg)
    w: EdgeWeighting = reg.create("edge_weighting", {"name": name, "params": params})
    _require(isinstance(w, EdgeWeighting), who, "must subclass nasfw.components.EdgeWeighting")
    alpha = torch.randn(4, 5, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    mask = torch.ones(4, 5, dtype=torch.bool)
    mask[0, 3:] = False
    mask[2] = False  # a fully masked row
    out = w(alpha, mask)
    _require(tuple(out.shape) == (4, 5), who, f"output shape {tuple(out.shape)} != α's (4, 5)")
    _require(bool(torch.isfinite(out).all()), who, "output must be finite (fully masked rows too)")
    _require(bool((out[~mask] == 0).all()), who, "masked entries must get weight 0")
    (out * torch.arange(20.0).view(4, 5)).sum().backward()
    _require(alpha.grad is not None and bool(torch.isfinite(alpha.grad).all()), who,
             "must be differentiable in α with a finite gradient")
    s = w.strength(alpha.detach(), mask)
    _require(tuple(s.shape) == (4, 5) and bool(torch.isfinite(s[mask]).all()), who,
             "strength() must be finite with α's shape on available entries")
    _require(torch.equal(w(alpha.detach(), mask), w(alpha.detach(), mask)), who, "must be deterministic")
    toy = reg.create("search_space", "toy-cell")
    net = _build_supernet(toy, TOY_SHAPE, w)
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    loss = nn.functional.cross_entropy(net(x), torch.arange(4))
    loss.backward()
    _require(math.isfinite(float(loss.detach())), who, "a toy supernet using it gives a non-finite loss")


def check_lr_schedule(schedule: Any, params: dict[str, Any] | None = None, *, registry: Registry | None = None,
                      epochs: int = 10, base_lr: float = 0.1) -> list[float]:
    """Check an LR schedule: finite, non-negative and a pure function of (epoch, epochs, base_lr)
    (the same values in any call order: resume relies on it). Returns the per-epoch values.
    """
    reg, name, params, who = _subject("lr_schedule", schedule, params, registry)
    check_config("lr_schedule", name, params, reg)
    s: LRSchedule = reg.create("lr_schedule", {"name": name, "params": params})
    _require(isinstance(s, LRSchedule), who, "must subclass nasfw.components.LRSchedule")
    forward = [float(s.lr(e, epochs, base_lr)) for e in range(epochs)]
    backward = [float(s.lr(e, epochs, base_lr)) for e in reversed(range(epochs))][::-1]
    _require(all(math.isfinite(v) and v >= 0 for v in forward), who, f"lr must be finite and >= 0, got {forward}")
    _require(forward == backward, who, "lr(epoch, ...) must not depend on earlier calls (stateless)")
    fresh = reg.create("lr_schedule", {"name": name, "params": params})
    _require([float(fresh.lr(e, epochs, base_lr)) for e in range(epochs)] == forward, who,
             "two instances with the same config must give the same schedule")
    return forward


def check_dataset(dataset: Any, params: dict[str, Any] | None = None, *, registry: Registry | None = None,
                  seed: int = 0) -> DataSplits:
    """Check a dataset: non-empty train/val splits of (C, H, W) images and integer labels in range that
    match ``shape``, reproducible for a seed. Missing files must raise :class:`nasfw.errors.DataError`
    (checks fail on other exceptions, and let ``DataError`` through for the caller to skip on).
    """
    reg, name, params, who = _subject("dataset", dataset, params, registry)
    check_config("dataset", name, params, reg)
    ds: Dataset = reg.create("dataset", {"name": name, "params": params})
    _require(isinstance(ds, Dataset), who, "must subclass nasfw.components.Dataset")
    splits = ds.splits(seed)
    _require(isinstance(splits, DataSplits), who, "splits() must return nasfw.data.DataSplits")
    shape = splits.shape
    for split_name in ("train", "val", "test"):
        part = getattr(splits, split_name)
        if part is None:
            _require(split_name == "test", who, f"the {split_name} split is missing")
            continue
        _require(len(part) > 0, who, f"the {split_name} split is empty")
        for i in (0, len(part) - 1):
            x, y = part[i]
            _require(tuple(x.shape) == (shape.channels, shape.height, shape.width), who,
                     f"{split_name}[{i}] image shape {tuple(x.shape)} != shape {shape}")
            _require(x.is_floating_point() and bool(torch.isfinite(x).all()), who, "images must be finite floats")
            yi = int(y)
            _require(0 <= yi < shape.num_classes and float(y) == yi, who, f"label {y} not an int in [0, classes)")
    again = reg.create("dataset", {"name": name, "params": params}).splits(seed)
    same = len(again.train) == len(splits.train) and len(again.val) == len(splits.val)
    for part_a, part_b in ((again.train, splits.train), (again.val, splits.val)):
        for i in (0, len(part_b) - 1):
            (xa, ya), (xb, yb) = part_a[i], part_b[i]
            same = same and torch.equal(torch.as_tensor(xa), torch.as_tensor(xb)) and int(ya) == int(yb)
    _require(same, who, "splits(seed) must be reproducible (same seed, same images in the same order; "
                        "augmentation aside)")
    return splits


def check_benchmark(benchmark: Any, params: dict[str, Any] | None = None, *, space: Any = None,
                    space_params: dict[str, Any] | None = None, registry: Registry | None = None,
                    samples: int = 5, seed: int = 0) -> None:
    """Check a benchmark: for genotypes sampled from a space it answers for, ``query`` returns finite
    numbers, the same ones twice; a genotype of another space is a :class:`nasfw.errors.NasfwError`.
    """
    reg, name, params, who = _subject("benchmark", benchmark, params, registry)
    check_config("benchmark", name, params, reg)
    _, cls, _ = reg.resolve("benchmark", name)
    spaces = tuple(getattr(cls, "spaces", ()))
    _require(len(spaces) > 0 and all(isinstance(s, str) for s in spaces), who, "spaces must name the spaces it answers")
    sp_name = space or spaces[0]
    b: Benchmark = reg.create("benchmark", {"name": name, "params": params})
    sp: SearchSpace = reg.create("search_space", {"name": sp_name, "params": space_params or {}})
    rng = random.Random(seed)
    for _ in range(samples):
        g = sp.sample(rng)
        r1, r2 = b.query(g), b.query(g)
        _require(isinstance(r1, dict) and len(r1) > 0, who, "query() must return a non-empty dict of metrics")
        _require(all(isinstance(v, (int, float)) and math.isfinite(v) for v in r1.values()), who,
                 f"query() values must be finite numbers, got {r1}")
        _require(r1 == r2, who, "query() must be deterministic")
    alien = Genotype(space="__no_such_space__", cells={"x": [GenotypeEdge(node=1, input=0, op="nope")]})
    try:
        b.query(alien)
        raise ContractError(f"{who}: query() of another space's genotype must raise a nasfw error")
    except NasfwError:
        pass


def check_operation(factory: Callable[..., nn.Module], *, channels: int = 4, size: int = 8) -> None:
    """Check a candidate op factory ``(C_in, C_out, stride, affine)``: stride 1 keeps H×W, stride 2 halves it
    (rounding up), channels are C_out, and the output is finite and differentiable."""
    who = f"operation {getattr(factory, '__name__', factory)!r}"
    x = torch.randn(2, channels, size, size, generator=torch.Generator().manual_seed(0), requires_grad=True)
    for stride in (1, 2):
        for affine in (False, True):
            op = factory(channels, channels, stride, affine)
            _require(isinstance(op, nn.Module), who, "the factory must return an nn.Module")
            op.train()
            out = op(x)
            want = (2, channels, -(-size // stride), -(-size // stride))
            _require(tuple(out.shape) == want, who, f"stride {stride}: output shape {tuple(out.shape)} != {want}")
            _require(bool(torch.isfinite(out).all()), who, "output must be finite")
            if out.requires_grad:
                out.sum().backward()


def check_zoo_entry(entry: Any, *, space_params: dict[str, Any] | None = None,
                    registry: Registry | None = None) -> None:
    """Check a published genotype: a ZooEntry with a source, whose space (when installed) validates it."""
    from nasfw.genotype import ZooEntry

    who = "zoo genotype"
    reg = registry or toy_registry()
    if isinstance(entry, str):
        who = f"zoo genotype '{entry}'"
        entry = reg.get("genotype", entry)
    _require(isinstance(entry, ZooEntry), who, "must be a nasfw.genotype.ZooEntry")
    _require(entry.source.strip() != "", who, "needs a source (paper / file it was transcribed from)")
    sp: SearchSpace = reg.create("search_space", {"name": entry.genotype.space, "params": space_params or {}})
    _check_genotype(sp, entry.genotype, who, "the zoo")


class CliResult(NamedTuple):
    code: int
    out: str
    err: str


def run_cli(*args: str) -> CliResult:
    """``nasfw ARGS`` through the real entry point (plugin commands added, errors mapped to exit codes), with
    stdout and stderr captured: what a user sees, for tests of commands and of their one-line errors."""
    from nasfw.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return CliResult(code, out.getvalue(), err.getvalue())


#: perturb (DARTS-PT) at its smallest: one tuning step per round, one evaluation batch
PERTURB_TINY = ("--set", "selector.tune_epochs=1", "--set", "selector.tune_steps=1",
                "--set", "selector.eval_batches=1")


def run_summary(out_dir: str | Path, *args: str) -> dict[str, Any]:
    """``nasfw run ARGS --out OUT_DIR``; fails with the run's stderr unless it exits 0; returns summary.json."""
    res = run_cli("run", *args, "--out", str(out_dir))
    if res.code != 0:
        raise AssertionError(f"nasfw run exited {res.code}: {res.err}")
    return json.loads((Path(out_dir) / "summary.json").read_text())


from nasfw.testing_acts import ActsCase, ActsError, acts_config, acts_matrix, check_acts  # noqa: E402

__all__ = [
    "PERTURB_TINY",
    "SUBJECT",
    "TOY_SHAPE",
    "ActsCase",
    "ActsError",
    "CliResult",
    "ContractError",
    "KitDropOne",
    "KitSGD",
    "KitStrongest",
    "ToyBenchmark",
    "ToyCellSpace",
    "ToyImages",
    "acts_config",
    "acts_matrix",
    "check_acts",
    "check_benchmark",
    "check_config",
    "check_dataset",
    "check_edge_weighting",
    "check_lr_schedule",
    "check_operation",
    "check_optimizer",
    "check_search_space",
    "check_selector",
    "check_shrinker",
    "check_zoo_entry",
    "run_cli",
    "run_summary",
    "stage",
    "toy_accuracy",
    "toy_registry",
    "train_steps",
]
