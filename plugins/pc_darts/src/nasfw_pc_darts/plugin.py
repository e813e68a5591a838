"""Entry point of nasfw-pc-darts: the optimizer and the PC-DARTS variants of the DARTS and NB201 spaces."""

from __future__ import annotations

from typing import Any

from nasfw import hookimpl
from nasfw.components import Preset
from nasfw_pc_darts.optimizer import PCDartsOptimizer
from nasfw_pc_darts.paper import preset_params

#: PC-DARTS' supernet: K = 4 (CIFAR) and edge normalisation
PC = {"partial_channels": 4, "edge_normalization": True}


@hookimpl
def nasfw_register_optimizers(register: Any) -> None:
    register("pc-darts", PCDartsOptimizer, description="PC-DARTS: first-order DARTS (SGD 0.1, α Adam 6e-4, α frozen "
                                                       "for 0.3 of the search) on a partial-channel supernet")
    register("pc-darts-paper", Preset("pc-darts", preset_params(), "PC-DARTS with the paper's absolute schedule "
                                                                   "(warm-up 15 epochs)"))


@hookimpl
def nasfw_register_search_spaces(register: Any) -> None:
    register("darts-pc", Preset("darts", dict(PC), "DARTS space with PC-DARTS' partial channels (K = 4) and edge "
                                                   "normalisation"))
    register("nb201-pc", Preset("nb201", dict(PC), "NB201 space with PC-DARTS' partial channels (K = 4) and edge "
                                                   "normalisation"))
