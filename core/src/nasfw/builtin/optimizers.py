"""The training-free optimizer: the search loop is skipped and the selector sees the supernet at init."""

from __future__ import annotations

from typing import Any, ClassVar

from nasfw.components import Optimizer
from nasfw.data import Batch


class NoTraining(Optimizer):
    """``--optimizer none``: no weight or α updates (training-free selection such as FreeDARTS)."""

    trains: ClassVar[bool] = False
    updates_alpha: ClassVar[bool] = False

    def step(self, train_batch: Batch, val_batch: Batch) -> dict[str, float]:
        raise RuntimeError("optimizer 'none' does not train; the engine never calls step() on it")

    def configure_tuning(self, lr: float | None, update_alpha: bool) -> Any:
        from nasfw.errors import ConfigError

        raise ConfigError("optimizer 'none' cannot fine-tune during selection; use a training optimizer "
                          "such as --optimizer darts with this selector")
