"""Cosine power annealing (sharpDARTS §3.4 of our methods note): a per-epoch LR, stateless.

With 1-based epochs e = 1..E, c(e) = (1 + cos(π e / E)) / 2 and exponent p ≥ 1:

* p = 1: the proportion is c(e), min-max normalised over the epochs (range-limited cosine annealing);
* p > 1: the proportion is p^(c(e)+1), min-max normalised, i.e. (p^c(e) − 1) / (p^c(1) − 1);
* warm-up w > 0: the cosine part runs on e' = e − w over E' = E − w, and the normalisation then
  includes e' = 0, giving (p^c(e') − 1) / (p − 1) (c(e') for p = 1); the first w + 1 epochs are
  overwritten by the ramp e / (w + 1), so epoch w + 1 has lr_max.

lr(e) = lr_min + (lr_max − lr_min) · proportion. This follows ``cosine_power_annealing`` of
ahundt/sharpDARTS master (6f593d4); an older revision ramped only the first w epochs as e / w.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field

from nasfw.budget import Span, refuse, resolve
from nasfw.components import LRSchedule, StrictModel


def cosine_power_proportion(epoch: int, epochs: int, exponent: float, warmup_epochs: int = 0) -> float:
    """The fraction of (lr_max − lr_min) at 1-based ``epoch`` of ``epochs``."""
    if warmup_epochs > 0 and epoch <= warmup_epochs + 1:
        return epoch / (warmup_epochs + 1)
    e, total = epoch - warmup_epochs, epochs - warmup_epochs

    def c(x: int) -> float:
        return (1.0 + math.cos(math.pi * x / total)) / 2.0

    top = c(0) if warmup_epochs > 0 else c(1)  # the largest c over the epochs the reference normalises
    if exponent == 1:
        return c(e) / top if top > 0 else 1.0
    denom = exponent**top - 1.0
    return (exponent ** c(e) - 1.0) / denom if denom > 0 else 1.0


def cosine_power_annealing(epoch: int, epochs: int, lr_max: float, lr_min: float, exponent: float,
                           warmup_epochs: int = 0) -> float:
    """lr at 1-based ``epoch``: lr_min + (lr_max − lr_min) · :func:`cosine_power_proportion`."""
    return lr_min + (lr_max - lr_min) * cosine_power_proportion(epoch, epochs, exponent, warmup_epochs)


class CosinePower(LRSchedule):
    """Cosine power annealing: decays faster than cosine early and slower late (p = 1 is cosine)."""

    class Config(StrictModel):
        exponent: float = Field(default=2.0, ge=1, description="exponent order p (1 = cosine annealing)")
        min_lr: float = Field(default=1e-4, ge=0, description="lr of the last epoch")
        warmup_epochs: Span = Field(default=0, description="linear ramp over the first warmup+1 epochs: a count, or "
                                                           "a fraction of the schedule's epochs (5/120: sharpDARTS' "
                                                           "5 of 120)")

    config: Config

    def warmup(self, epochs: int) -> int:
        """The warm-up in epochs of a schedule over ``epochs`` epochs."""
        return resolve(self.config.warmup_epochs, epochs)

    def lr(self, epoch: int, epochs: int, base_lr: float) -> float:
        c = self.config
        epochs = max(epochs, 1)
        return cosine_power_annealing(epoch + 1, epochs, base_lr, c.min_lr, c.exponent, self.warmup(epochs))

    def plan(self, epochs: int) -> dict[str, Any]:
        warm = self.warmup(epochs)
        if warm > 0 and warm + 1 >= epochs:
            raise refuse("warmup_epochs", f"a warm-up of {warm} epochs ramps the lr over the whole {epochs}-epoch "
                         f"run, so it never anneals", "give a fraction of the run (e.g. 0.04) or a smaller count")
        return {"lr_warmup_epochs": warm}
