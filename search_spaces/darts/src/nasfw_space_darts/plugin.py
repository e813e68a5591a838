"""Entry point of nasfw-space-darts: registers the spaces and the DARTS operations."""

from __future__ import annotations

from typing import Any

from nasfw import hookimpl
from nasfw_space_darts.ops import OPS
from nasfw_space_darts.space import DartsSpace
from nasfw_space_darts.variants import PRESETS
from nasfw_space_darts.zoo import ZOO


@hookimpl
def nasfw_register_search_spaces(register: Any) -> None:
    register("darts", DartsSpace, description="DARTS cell space: 8 ops, 4 nodes, 14 edges per cell")
    for name, preset in PRESETS.items():
        register(name, preset, description=preset.description)


@hookimpl
def nasfw_register_operations(register: Any) -> None:
    for name, factory in OPS.items():
        register(name, factory, description="DARTS operation")


@hookimpl
def nasfw_register_genotypes(register: Any) -> None:
    for name, entry in ZOO.items():
        register(name, entry, description=entry.notes)
