"""Entry point of nasfw-freedarts."""

from __future__ import annotations

from typing import Any

from nasfw import hookimpl
from nasfw_freedarts.proxies import PROXIES
from nasfw_freedarts.selectors import GraspSelector, SnipSelector, SynflowSelector
from nasfw_freedarts.weighting import RawAlpha
from nasfw_freedarts.zoo import ZOO


@hookimpl
def nasfw_register_selectors(register: Any) -> None:
    register("synflow", SynflowSelector, description="FreeDARTS SynFlow-α: data-free saliency |α⊙∂R/∂α| at init")
    register("snip", SnipSelector, description="FreeDARTS SNIP-α: |α⊙∂L/∂α| on one labelled batch")
    register("grasp", GraspSelector, description="FreeDARTS GraSP-α: α⊙Hg on one labelled batch")


@hookimpl
def nasfw_register_edge_weightings(register: Any) -> None:
    register("raw", RawAlpha, description="raw α as mixing coefficients, no softmax (FreeDARTS)")


@hookimpl
def nasfw_register_proxies(register: Any) -> None:
    for name, fn in PROXIES.items():
        register(name, fn, description=(fn.__doc__ or "").strip().splitlines()[0])


@hookimpl
def nasfw_register_genotypes(register: Any) -> None:
    for name, entry in ZOO.items():
        register(name, entry, description=entry.notes)


@hookimpl
def nasfw_register_commands(cli: Any) -> None:
    from nasfw_freedarts.command import score

    cli.add_command(score)
