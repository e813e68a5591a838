"""Entry point of nasfw-darts-pt: the ``perturb`` selector, its fixed-α preset and the published cells."""

from __future__ import annotations

from typing import Any

from nasfw import hookimpl
from nasfw.components import Preset
from nasfw_darts_pt.selector import PerturbSelector
from nasfw_darts_pt.zoo import zoo_entries


@hookimpl
def nasfw_register_selectors(register: Any) -> None:
    register("perturb", PerturbSelector,
             description="DARTS-PT: keep the op/inputs whose removal hurts val accuracy most, tuning in between")
    register("perturb-fixed-alpha", Preset("perturb", {"update_alpha": False},
                                           "DARTS-PT with α frozen while tuning between decisions"))


@hookimpl
def nasfw_register_genotypes(register: Any) -> None:
    for name, entry in zoo_entries().items():
        register(name, entry, description=entry.notes)
