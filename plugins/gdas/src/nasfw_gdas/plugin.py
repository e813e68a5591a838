"""Entry point of nasfw-gdas."""

from __future__ import annotations

from typing import Any

from nasfw import hookimpl
from nasfw.components import Preset
from nasfw_gdas.optimizer import GDASOptimizer
from nasfw_gdas.paper import preset_params


@hookimpl
def nasfw_register_optimizers(register: Any) -> None:
    register("gdas", GDASOptimizer, description="GDAS: Gumbel-softmax single-path sampling, straight-through α "
                                                "gradient, τ annealed 10 -> 0.1 over the search")
    register("gdas-paper", Preset("gdas", preset_params(), "GDAS with the paper's absolute schedule "
                                                           "(τ annealed over 250 epochs)"))
