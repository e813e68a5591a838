"""Entry point of nasfw-lissnas."""

from __future__ import annotations

from typing import Any

from nasfw import hookimpl
from nasfw_lissnas.baseline import OpPrune
from nasfw_lissnas.shrinker import Lissnas


@hookimpl
def nasfw_register_shrinkers(register: Any) -> None:
    register("lissnas", Lissnas, description="LISSNAS: pockets of good architectures around top seeds "
             "(reconstruction; Gopal et al. 2023)")
    register("op-prune", OpPrune, description="baseline: global operational pruning by mean score (ABS-style)")
