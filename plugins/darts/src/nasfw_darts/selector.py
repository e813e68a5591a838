"""Magnitude selection: the space's discretization rule applied to the edge weights."""

from __future__ import annotations

from typing import Any

from nasfw.acting import decision_figures, decisions_acted
from nasfw.components import SearchSpace, Selector
from nasfw.genotype import Genotype
from nasfw.supernet import Supernet


class MagnitudeSelector(Selector):
    """DARTS' rule: the strongest weights win (per the space: DARTS top-2 inputs, argmax op without `none`).

    Records in the run's ``activity`` how many edges it decided and on how many the chosen op's strength
    exactly equalled another candidate's (a tie is decided by op order, not by the search).
    """

    def select(self, supernet: Supernet, space: SearchSpace, run: Any) -> Genotype:
        strengths = supernet.strengths()
        genotype = space.discretize(strengths)
        if hasattr(run, "note_activity"):
            run.note_activity("selector", **decision_figures(space, strengths, genotype))
        return genotype

    def acted(self, activity: dict[str, Any]) -> str | None:
        return decisions_acted(activity.get("selector", {}))
