"""Standard per-epoch learning-rate schedules (pure functions of the epoch, so resume is exact)."""

from __future__ import annotations

import math

from pydantic import Field

from nasfw.components import LRSchedule, StrictModel


class Cosine(LRSchedule):
    """lr_min + (lr − lr_min)(1 + cos(π e / E)) / 2 — what DARTS' CosineAnnealingLR gives per epoch."""

    class Config(StrictModel):
        min_lr: float = Field(default=0.001, ge=0)

    def lr(self, epoch: int, epochs: int, base_lr: float) -> float:
        lo = self.config.min_lr
        return lo + (base_lr - lo) * (1 + math.cos(math.pi * epoch / max(epochs, 1))) / 2


class Constant(LRSchedule):
    """The base learning rate at every epoch."""

    def lr(self, epoch: int, epochs: int, base_lr: float) -> float:
        return base_lr


class Exponential(LRSchedule):
    """base_lr · gamma^epoch."""

    class Config(StrictModel):
        gamma: float = Field(default=0.97, gt=0)

    def lr(self, epoch: int, epochs: int, base_lr: float) -> float:
        return base_lr * self.config.gamma**epoch


class Linear(LRSchedule):
    """Linear decay from base_lr to min_lr over the epochs."""

    class Config(StrictModel):
        min_lr: float = Field(default=0.0, ge=0)

    def lr(self, epoch: int, epochs: int, base_lr: float) -> float:
        frac = epoch / max(epochs, 1)
        return base_lr + (self.config.min_lr - base_lr) * frac
