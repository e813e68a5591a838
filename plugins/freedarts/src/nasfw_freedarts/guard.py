"""The signal guard: a saliency must carry more signal than rounding noise before it picks a genotype.

A score can be finite, non-zero and still meaningless: SynFlow on a train-mode-BN DARTS supernet gives
|∂R/∂α| ≤ 7e-15, a genotype decided by rounding (float32 and float64 agree on 6 of 16 edges). The guard
scores twice, in the working precision and in the other one (float64 ↔ float32), and compares per
architecture tensor

* the **spread** of the scores (their standard deviation over the available entries; entries that are
  exactly zero in both precisions, the `none` op, are left out: they carry no rounding and would make
  any set of scores look spread), with
* the **noise**: the largest change of any available score between the two precisions.

``ratio = spread / noise`` must reach ``min_ratio`` for every tensor that has something to decide (at
least two available entries). The figures go into ``summary.json`` (``activity.selector``), with the
share of genotype edges the two precisions agree on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from nasfw.genotype import Genotype
from nasfw_freedarts.errors import SaliencyError

Scores = dict[str, torch.Tensor]


class NoSignalError(SaliencyError):
    """The scores are not above rounding noise: the genotype would be decided by rounding."""


@dataclass
class TensorSignal:
    """Spread, noise and their ratio for one architecture tensor (``ratio`` None: noise exactly 0)."""

    spread: float
    noise: float
    ratio: float | None
    entries: int

    @property
    def ok_ratio(self) -> float:
        return math.inf if self.ratio is None and self.spread > 0 else (self.ratio or 0.0)


@dataclass
class SignalReport:
    """The guard's verdict on one selection: ``signal`` or ``no-signal``, with the figures behind it."""

    measure: str
    dtypes: tuple[str, str]
    min_ratio: float
    tensors: dict[str, TensorSignal]
    agreement: float | None = None
    differing_edges: int | None = None
    checked: list[str] = field(default_factory=list)

    @property
    def weakest(self) -> str | None:
        return min(self.checked, key=lambda k: self.tensors[k].ok_ratio) if self.checked else None

    @property
    def verdict(self) -> str:
        w = self.weakest
        return "signal" if w is None or self.tensors[w].ok_ratio >= self.min_ratio else "no-signal"

    def figures(self) -> dict[str, Any]:
        """What ``run.note_activity("selector", ...)`` records (JSON-able: no infinities)."""
        w = self.weakest
        worst = self.tensors[w] if w is not None else None
        return {
            "measure": self.measure, "verdict": self.verdict, "acted": self.verdict == "signal",
            "spread": worst.spread if worst else None, "noise": worst.noise if worst else None,
            "ratio": worst.ratio if worst else None, "min_ratio": self.min_ratio,
            "weakest_tensor": w, "precisions": list(self.dtypes),
            "precision_agreement": self.agreement, "precision_differing_edges": self.differing_edges,
            "tensors": {k: {"spread": t.spread, "noise": t.noise, "ratio": t.ratio, "entries": t.entries}
                        for k, t in self.tensors.items()},
        }

    def message(self, hint: str) -> str:
        """The one line a user sees when the guard stops the run."""
        w = self.weakest
        assert w is not None
        t = self.tensors[w]
        ratio = "0" if t.ratio is None else f"{t.ratio:.2g}"
        return (f"{self.measure}: no signal in the scores of '{w}': their spread ({t.spread:.2g}) is not above "
                f"rounding noise ({t.noise:.2g}, the largest {self.dtypes[0]}/{self.dtypes[1]} difference; ratio "
                f"{ratio} < {self.min_ratio:g}), so the genotype would be decided by rounding. {hint}")


def _signal(a: torch.Tensor, b: torch.Tensor, available: torch.Tensor) -> TensorSignal:
    a, b = a.double().cpu(), b.double().cpu()
    live = available & torch.isfinite(a) & torch.isfinite(b)
    noise = float((a[live] - b[live]).abs().max()) if bool(live.any()) else 0.0
    varying = live & ~((a == 0) & (b == 0))
    vals = a[varying]
    spread = float(vals.std(unbiased=False)) if vals.numel() > 1 else 0.0
    if noise > 0:
        ratio: float | None = spread / noise
    else:
        ratio = None if spread > 0 else 0.0
    return TensorSignal(spread=spread, noise=noise, ratio=ratio, entries=int(live.sum()))


def check_signal(measure: str, primary: Scores, other: Scores, table: dict[str, torch.Tensor],
                 dtypes: tuple[str, str], min_ratio: float,
                 genotypes: tuple[Genotype, Genotype] | None = None) -> SignalReport:
    """Compare the scores of two precisions (``primary`` decides; ``other`` measures the noise)."""
    tensors = {k: _signal(primary[k], other[k], table[k].cpu()) for k in primary if k in other and k in table}
    checked = [k for k, t in tensors.items() if t.entries >= 2]
    report = SignalReport(measure, dtypes, min_ratio, tensors, checked=checked)
    if genotypes is not None:
        ga, gb = genotypes
        total = same = 0
        for cell, edges in ga.cells.items():
            other_edges = {(e.node, e.input, e.op) for e in gb.cells.get(cell, [])}
            total += len(edges)
            same += sum((e.node, e.input, e.op) in other_edges for e in edges)
        report.agreement = same / total if total else 1.0
        report.differing_edges = total - same
    return report
