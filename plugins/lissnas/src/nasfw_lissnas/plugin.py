"""Entry point of nasfw-lissnas."""

from __future__ import annotations

from typing import Any

from nasfw import hookimpl
from nasfw_lissnas.baseline import OpPrune, RandomSample
from nasfw_lissnas.shrinker import Lissnas


@hookimpl
def nasfw_register_shrinkers(register: Any) -> None:
    register("lissnas", Lissnas, description="LISSNAS: disjoint pockets of good architectures around top "
             "seeds, to a target size, scored by a zero-cost proxy (reconstruction; Gopal et al. 2023)")
    register("op-prune", OpPrune, description="baseline: global operational pruning by mean score (ABS-style)")
    register("random-sample", RandomSample, description="baseline: the best-scored of uniformly sampled "
             "architectures (equal evaluations), or a uniform subset")
