"""Magnitude selection: the space's discretization rule applied to the edge weights."""

from __future__ import annotations

from typing import Any

from nasfw.components import SearchSpace, Selector
from nasfw.genotype import Genotype
from nasfw.supernet import Supernet


class MagnitudeSelector(Selector):
    """DARTS' rule: the strongest weights win (per the space: DARTS top-2 inputs, argmax op without `none`)."""

    def select(self, supernet: Supernet, space: SearchSpace, run: Any) -> Genotype:
        return space.discretize(supernet.strengths())
