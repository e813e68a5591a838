"""Figures that show a selection was decided by its scores, for the ``activity`` block of ``summary.json``."""

from __future__ import annotations

import math
from typing import Any

import torch

from nasfw.components import SearchSpace
from nasfw.genotype import Genotype


def decision_figures(space: SearchSpace, scores: dict[str, torch.Tensor], genotype: Genotype) -> dict[str, Any]:
    """For every edge of ``genotype``: the margin of the chosen op's score over the best other available op.

    ``ties`` counts chosen ops whose score equals another's exactly (the choice then came from op order, not
    from the scores); ``min_margin`` is the smallest margin; ``score_spread`` the range of all finite scores.
    """
    table = space.op_table()
    rows = space.decisions()
    decisions, ties, margins, finite = 0, 0, [], []
    for cell, edges in genotype.cells.items():
        index = {(e.node, e.input): i for i, e in enumerate(rows[cell])}
        s = scores[cell].detach().double().cpu()
        finite += [float(v) for v in s[table[cell] & torch.isfinite(s)].flatten()]
        for ge in edges:
            row = index[(ge.node, ge.input)]
            col = rows[cell][row].ops.index(ge.op)
            chosen = float(s[row, col])
            others = [float(s[row, k]) for k in range(len(rows[cell][row].ops))
                      if k != col and bool(table[cell][row, k]) and math.isfinite(float(s[row, k]))]
            decisions += 1
            if others:
                margins.append(chosen - max(others))
                ties += int(any(o == chosen for o in others))
    return {"decisions": decisions, "ties": ties, "min_margin": min(margins) if margins else None,
            "score_spread": (max(finite) - min(finite)) if finite else None}


def decisions_acted(figures: dict[str, Any]) -> str | None:
    """Why ``decision_figures`` say the selection was not decided by its scores (None when it was)."""
    if not figures.get("decisions"):
        return "no edge was decided"
    if figures.get("ties"):
        return (f"{figures['ties']} of {figures['decisions']} chosen ops tie another op's score exactly "
                f"(decided by op order)")
    if figures.get("score_spread") == 0:
        return "every score is the same"
    return None


__all__ = ["decision_figures", "decisions_acted"]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        text = "[" + ", ".join(_fmt(v) for v in value[:6]) + (", ..." if len(value) > 6 else "") + "]"
        return text
    return str(value)


def activity_lines(activity: dict[str, Any]) -> list[str]:
    """``summary.json``'s ``activity`` block as a few lines (``nasfw show``, the end of ``nasfw run``)."""
    out = []
    for section in ("shrinker", "optimizer", "selector"):
        block = activity.get(section)
        if not block:
            continue
        items = []
        for k, v in block.items():
            if k == "alpha_abs_change" and isinstance(v, dict):
                items.append("|Δα| " + " ".join(f"{t}={x:.4g}" for t, x in v.items()))
            elif k == "shrink_ratio" and v is not None:
                items.append(f"shrink ratio x{v:.4g}")
            else:
                items.append(f"{k}={_fmt(v)}")
        out.append(f"{section}: " + ", ".join(items))
    return out
