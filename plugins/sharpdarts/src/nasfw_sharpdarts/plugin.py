"""Entry point of nasfw-sharpdarts: ops, spaces, Max-W, cosine power annealing, the optimizer preset, zoo."""

from __future__ import annotations

from typing import Any

from nasfw import hookimpl
from nasfw.components import Preset
from nasfw_sharpdarts.hypercuboid import HyperCuboidSpace
from nasfw_sharpdarts.ops import OPS
from nasfw_sharpdarts.presets import OPTIMIZER_PRESETS, WARMUP_FRACTION
from nasfw_sharpdarts.schedule import CosinePower
from nasfw_sharpdarts.spaces import PRESETS, SharpSpace
from nasfw_sharpdarts.weighting import MaxW
from nasfw_sharpdarts.zoo import ZOO

#: sharpDARTS' cell search (train_search.py): first-order DARTS, Max-W, CPA p=2, 0.025 → 1e-4, with its lr warm-up
#: as a share of the run (5 of 120 epochs); ``--preset paper`` gives the absolute 5 epochs and the 120-epoch run.
SHARPDARTS_OPTIMIZER = Preset(
    "darts",
    {
        "unrolled": False,
        "w_lr": 0.025,
        "lr_schedule": {"name": "cosine-power", "params": {"exponent": 2.0, "min_lr": 1e-4,
                                                           "warmup_epochs": WARMUP_FRACTION}},
        "edge_weighting": {"name": "max-w"},
    },
    "sharpDARTS: first-order DARTS + Max-W weighting + cosine power annealing (p=2, warm-up 5/120 of the run, "
    "0.025 -> 1e-4)",
    presets=OPTIMIZER_PRESETS,
)


@hookimpl
def nasfw_register_operations(register: Any) -> None:
    for name, factory in OPS.items():
        register(name, factory, description="sharpDARTS operation")


@hookimpl
def nasfw_register_search_spaces(register: Any) -> None:
    register("sharp", SharpSpace, description="sharpDARTS PRIMITIVES (9 ops: sep/dil/flood/choke SharpSepConv) "
                                              "in DARTS cells")
    for name, preset in PRESETS.items():
        register(name, preset, description=preset.description)
    register("hypercuboid", HyperCuboidSpace,
             description="sharpDARTS Differentiable Hyperparameter Grid Search: (C_in, C_out, op) grid, heaviest path")


@hookimpl
def nasfw_register_edge_weightings(register: Any) -> None:
    register("max-w", MaxW, description="sharpDARTS Max-W: sum_k (1 - max w + w_k) op_k on softmax weights")


@hookimpl
def nasfw_register_lr_schedules(register: Any) -> None:
    register("cosine-power", CosinePower, description="sharpDARTS cosine power annealing (exponent p, warm-up)")


@hookimpl
def nasfw_register_optimizers(register: Any) -> None:
    register("sharpdarts", SHARPDARTS_OPTIMIZER, description=SHARPDARTS_OPTIMIZER.description)


@hookimpl
def nasfw_register_genotypes(register: Any) -> None:
    for name, entry in ZOO.items():
        register(name, entry, description=entry.source)
