"""Contract tests: ``nasfw.testing`` applied to every component the installed plugins register, plus proof
that the kit catches broken components (each rule below is broken on purpose once)."""

from __future__ import annotations

import inspect
import random
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import BaseModel
from torch import nn

from nasfw import testing as kit
from nasfw.builtin.weightings import Softmax
from nasfw.components import LRSchedule, Optimizer, Selector, Shrinker, ShrunkSpace
from nasfw.errors import DataError
from nasfw.genotype import Genotype, GenotypeEdge
from nasfw.registry import get_registry
from nasfw.testing import ContractError, KitSGD, ToyCellSpace

REG = get_registry()

#: tiny params per registered name (spaces: small supernets; others: fast settings)
SPACE_PARAMS: dict[str, dict[str, Any]] = {
    "mbv2": {"stem_channels": 8, "stem_stride": 1, "first_channels": 8, "widths": [8, 16], "depths": [2, 1],
             "strides": [1, 2], "last_channels": 16},  # the example plugin's space at CPU size
}
OPTIMIZER_PARAMS: dict[str, dict[str, Any]] = {"random": {"num_candidates": 3, "eval_batches": 1},
                                               # the kit's toy supernet has no partial channels / edge weights
                                               "pc-darts": {"require_pc_supernet": False},
                                               "pc-darts-paper": {"require_pc_supernet": False, "warmup_epochs": 0},
                                               "sdarts-adv": {"attack_steps": 2}}
SELECTOR_PARAMS: dict[str, dict[str, Any]] = {}
SHRINKER_PARAMS: dict[str, dict[str, Any]] = {}
#: Config fields that size a supernet or network, and the tiny value the contract tests use
_TINY_FIELDS = {"layers": 3, "init_channels": 4, "channels": 4, "C": 4, "width": 4, "stem_channels": 4,
                "num_cells": 1, "cells": 1, "stages": 2, "N": 1}


def _names(kind: str) -> list[str]:
    return REG.names(kind) or ["(none registered)"]


def _skip_placeholder(name: str) -> None:
    if name == "(none registered)":
        pytest.skip("no component of this kind is installed")


def _tiny_params(kind: str, name: str, given: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if name in given:
        return dict(given[name])
    _, cls, _ = REG.resolve(kind, name)
    out: dict[str, Any] = {}
    for field, value in _TINY_FIELDS.items():
        info = cls.Config.model_fields.get(field)
        if info is None or not isinstance(info.default, int):
            continue
        low = next((getattr(m, "ge", None) for m in info.metadata if getattr(m, "ge", None) is not None), None)
        out[field] = max(value, low) if low is not None else value
    return out


def _network_options(space: Any) -> dict[str, Any]:
    sig = inspect.signature(space.build_network).parameters
    opts = {k: v for k, v in {"C": 4, "layers": 3, "channels": 4, "auxiliary": False}.items() if k in sig}
    return opts


# =========================================================================== every registered component


@pytest.mark.parametrize("name", _names("search_space"))
def test_contract_search_space(name: str) -> None:
    _skip_placeholder(name)
    params = _tiny_params("search_space", name, SPACE_PARAMS)
    sp = REG.create("search_space", {"name": name, "params": params})
    kit.check_search_space(name, params, network_options=_network_options(sp))


@pytest.mark.parametrize("name", _names("optimizer"))
def test_contract_optimizer(name: str) -> None:
    _skip_placeholder(name)
    kit.check_optimizer(name, OPTIMIZER_PARAMS.get(name))


@pytest.mark.parametrize("name", _names("selector"))
def test_contract_selector(name: str) -> None:
    _skip_placeholder(name)
    kit.check_selector(name, SELECTOR_PARAMS.get(name))


@pytest.mark.parametrize("name", _names("shrinker"))
def test_contract_shrinker(name: str) -> None:
    _skip_placeholder(name)
    kit.check_shrinker(name, SHRINKER_PARAMS.get(name))


@pytest.mark.parametrize("name", _names("edge_weighting"))
def test_contract_edge_weighting(name: str) -> None:
    _skip_placeholder(name)
    kit.check_edge_weighting(name)


@pytest.mark.parametrize("name", _names("lr_schedule"))
def test_contract_lr_schedule(name: str) -> None:
    _skip_placeholder(name)
    kit.check_lr_schedule(name)


@pytest.mark.parametrize("name", _names("dataset"))
def test_contract_dataset(name: str, tmp_path: Path) -> None:
    """Embedded datasets are checked fully; file-backed ones must fail with a DataError when files are missing."""
    _skip_placeholder(name)
    _, cls, _ = REG.resolve("dataset", name)
    if "data_dir" in cls.Config.model_fields:
        kit.check_config("dataset", name)
        ds = REG.create("dataset", {"name": name, "params": {"data_dir": str(tmp_path / "missing")}})
        with pytest.raises(DataError):
            ds.splits(0)
        return
    try:
        kit.check_dataset(name)
    except DataError as exc:
        pytest.skip(f"dataset '{name}' has no data here: {exc}")


@pytest.mark.parametrize("name", _names("benchmark"))
def test_contract_benchmark(name: str) -> None:
    _skip_placeholder(name)
    try:
        kit.check_benchmark(name)
    except DataError as exc:
        pytest.skip(f"benchmark '{name}' has no table here: {exc}")


@pytest.mark.parametrize("name", _names("operation"))
def test_contract_operation(name: str) -> None:
    _skip_placeholder(name)
    kit.check_operation(REG.get("operation", name))


@pytest.mark.parametrize("name", _names("genotype"))
def test_contract_zoo_genotype(name: str) -> None:
    _skip_placeholder(name)
    entry = REG.get("genotype", name)
    if entry.genotype.space not in REG.names("search_space"):
        pytest.skip(f"space '{entry.genotype.space}' of zoo genotype '{name}' is not installed")
    kit.check_zoo_entry(name)


@pytest.mark.parametrize("name", _names("protocol"))
def test_contract_protocol(name: str) -> None:
    _skip_placeholder(name)
    proto = REG.get("protocol", name)
    model = proto if isinstance(proto, type) else type(proto)
    assert isinstance(model, type) and issubclass(model, BaseModel), f"protocol '{name}' must be a pydantic model"
    inst = model() if isinstance(proto, type) else proto
    assert model.model_validate(inst.model_dump(mode="json")) == inst, "a protocol must survive its JSON form"


# =========================================================================== the kit's own toys


def test_kit_toy_space_sizes_match_closed_form() -> None:
    """3 edges x 3 ops = 27 cells; with node 2 keeping one of two inputs: 3 * (2 * 3) = 18."""
    assert kit.check_search_space("toy-cell").size() == 27
    assert kit.check_search_space("toy-cell", {"keep": 1}).size() == 18
    assert kit.check_search_space("toy-cell", {"ops": ["conv_3x3", "none"]}).size() == 8


def test_kit_toy_benchmark_closed_form() -> None:
    sp = kit.toy_registry().create("search_space", "toy-cell")
    best = Genotype(space="toy-cell", cells={"cell": [GenotypeEdge(node=1, input=0, op="conv_3x3"),
                                                       GenotypeEdge(node=2, input=0, op="conv_3x3"),
                                                       GenotypeEdge(node=2, input=1, op="conv_3x3")]})
    acc = kit.toy_accuracy(best)
    assert 60 + 27 + 4 <= acc < 60 + 27 + 4 + 1
    bench = kit.toy_registry().create("benchmark", "toy-table")
    assert bench.query(best)["val_acc"] == acc
    assert max(kit.toy_accuracy(g) for g in sp.enumerate()) == acc


# =========================================================================== the kit catches broken components


def _raises(fn: Any, *args: Any, match: str, **kw: Any) -> None:
    with pytest.raises(ContractError, match=match):
        fn(*args, **kw)


def test_kit_catches_lax_config() -> None:
    class Lax(KitSGD):
        class Config(KitSGD.Config):
            model_config = {"extra": "ignore"}

    _raises(kit.check_optimizer, Lax, match="forbid unknown fields")


def test_kit_catches_space_whose_discretize_leaves_the_space() -> None:
    class Broken(ToyCellSpace):
        def discretize(self, scores: dict[str, torch.Tensor]) -> Genotype:
            g = super().discretize(scores)
            first = g.cells["cell"][0]  # an op that is not a candidate of the edge
            return Genotype(space=g.space, cells={"cell": [first.model_copy(update={"op": "max_pool_3x3"}),
                                                           *g.cells["cell"][1:]]})

    _raises(kit.check_search_space, Broken, match="discretize")


def test_kit_catches_supernet_ignoring_masks() -> None:
    class RawAlphaSupernet(kit.ToySupernet):
        def mixing_weights(self) -> dict[str, torch.Tensor]:
            return {k: torch.softmax(a, -1) for k, a in self.alphas.items()}  # mask and override ignored

    class Broken(ToyCellSpace):
        def build_supernet(self, shape: Any, weighting: Any) -> RawAlphaSupernet:
            c = self.config
            return RawAlphaSupernet(shape, weighting, c.ops, c.channels, c.layers, c.alpha_init_std)

    _raises(kit.check_search_space, Broken, match="masked-out ops")


def test_kit_catches_wrong_output_shape() -> None:
    class Broken(ToyCellSpace):
        def build_supernet(self, shape: Any, weighting: Any) -> kit.ToySupernet:
            net = super().build_supernet(shape, weighting)
            net.head = nn.Linear(self.config.channels, shape.num_classes + 1)
            return net

    _raises(kit.check_search_space, Broken, match="output shape")


def test_kit_catches_asymmetric_distance() -> None:
    class Broken(ToyCellSpace):
        def distance(self, a: Genotype, b: Genotype) -> float:
            d = super().distance(a, b)
            return d + (0.5 if a.key() < b.key() else 0.0)

    _raises(kit.check_search_space, Broken, match="symmetric")


def test_kit_catches_nan_loss() -> None:
    class Broken(KitSGD):
        def step(self, train_batch: Any, val_batch: Any) -> dict[str, Any]:
            out = super().step(train_batch, val_batch)
            return {**out, "loss": float("nan")}

    _raises(kit.check_optimizer, Broken, match="non-finite")


def test_kit_catches_optimizer_that_changes_nothing() -> None:
    class Broken(Optimizer):
        def step(self, train_batch: Any, val_batch: Any) -> dict[str, Any]:
            return {"loss": 1.0, "acc": 0.5}

    _raises(kit.check_optimizer, Broken, match="changed neither")


def test_kit_catches_state_missing_from_checkpoint() -> None:
    class Broken(KitSGD):
        """Momentum buffers are not saved: a resumed run diverges from the uninterrupted one."""

        def state_dict(self) -> dict[str, Any]:
            return {}

    _raises(kit.check_optimizer, Broken, match="after restoring a checkpoint")


def test_kit_catches_selector_ignoring_the_shrunk_space() -> None:
    class Broken(Selector):
        """Puts avg_pool on the first edge, which the kit's shrinker removes (fine in the full toy spaces)."""

        def select(self, supernet: Any, space: Any, run: Any) -> Genotype:
            edges = space.discretize(supernet.strengths()).cells["cell"]
            edges = [e.model_copy(update={"op": "avg_pool_3x3"}) if e.node == 1 else e for e in edges]
            return Genotype(space=space.name, cells={"cell": edges})

    _raises(kit.check_selector, Broken, match="shrunk by kit-drop-one")


def test_kit_catches_selector_returning_a_non_member() -> None:
    class Broken(Selector):
        """Bypasses discretize's member rule: the first two edges always differ (never a kit-twins member)."""

        def select(self, supernet: Any, space: Any, run: Any) -> Genotype:
            g = type(space).discretize.__wrapped__(space, supernet.strengths())
            edges = g.cells["cell"]
            ops = space.decisions()["cell"][0].ops
            other = next(op for op in ops if op != edges[1].op)
            edges = [edges[0].model_copy(update={"op": other}), *edges[1:]]
            return Genotype(space=space.name, cells={"cell": edges})

    _raises(kit.check_selector, Broken, match="shrunk by kit-")


def test_kit_catches_nondeterministic_selector() -> None:
    class Broken(Selector):
        def select(self, supernet: Any, space: Any, run: Any) -> Genotype:
            return space.sample(random.Random())

    # the toy space has 27 members, so two unseeded draws agree by chance with p = 1/27 per variant
    _raises(kit.check_selector, Broken, match="same seed")


def test_kit_catches_empty_shrinker() -> None:
    class Broken(Shrinker):
        def shrink(self, space: Any, run: Any) -> ShrunkSpace:
            return ShrunkSpace([])

    _raises(kit.check_shrinker, Broken, match="no members")


def test_kit_catches_stateful_lr_schedule() -> None:
    class Broken(LRSchedule):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            self.calls = 0

        def lr(self, epoch: int, epochs: int, base_lr: float) -> float:
            self.calls += 1
            return base_lr / self.calls

    _raises(kit.check_lr_schedule, Broken, match="stateless")


def test_kit_catches_weighting_ignoring_the_mask() -> None:
    class Broken(Softmax):
        def __call__(self, alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return torch.softmax(alpha, -1)

    _raises(kit.check_edge_weighting, Broken, match="masked entries")


def test_kit_rejects_non_components() -> None:
    with pytest.raises(ContractError, match="not a nasfw component"):
        kit.check_optimizer(object)
