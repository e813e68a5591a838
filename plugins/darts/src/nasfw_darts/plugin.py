"""Entry point of nasfw-darts."""

from __future__ import annotations

from typing import Any

from nasfw import hookimpl
from nasfw.components import Preset
from nasfw_darts.optimizer import DartsOptimizer
from nasfw_darts.random_search import RandomSearch
from nasfw_darts.selector import MagnitudeSelector


@hookimpl
def nasfw_register_optimizers(register: Any) -> None:
    register("darts", DartsOptimizer, description="DARTS first order (Adam on α, SGD on w)")
    register("darts-2nd", Preset("darts", {"unrolled": True}, "DARTS second order (unrolled, finite-difference HVP)"))
    register("random", RandomSearch, description="random search with weight sharing (baseline)")


@hookimpl
def nasfw_register_selectors(register: Any) -> None:
    register("magnitude", MagnitudeSelector, description="strongest edge weights, by the space's rule (DARTS)")
