"""Entry point of nasfw-sdarts."""

from __future__ import annotations

from typing import Any

from nasfw import hookimpl
from nasfw.components import Preset
from nasfw_sdarts.optimizer import SDARTSADVOptimizer, SDARTSOptimizer
from nasfw_sdarts.paper import preset_params


@hookimpl
def nasfw_register_optimizers(register: Any) -> None:
    register("sdarts-rs", SDARTSOptimizer, description="SDARTS-RS: DARTS with the weight step's mixing weights "
                                                       "perturbed uniformly in an ε-ball (ε 0.03 -> 0.3)")
    register("sdarts-adv", SDARTSADVOptimizer, description="SDARTS-ADV: DARTS with the weight step's mixing weights "
                                                           "a 7-step L∞ PGD attack in an ε-ball (ε 0.03 -> 0.3)")
    register("sdarts-rs-paper", Preset("sdarts-rs", preset_params(False),
                                       "SDARTS-RS with the official absolute schedule (DARTS space: ε ramp over "
                                       "50 epochs) and clip"))
    register("sdarts-adv-paper", Preset("sdarts-adv", preset_params(True),
                                        "SDARTS-ADV with the official absolute schedule (DARTS space: ε ramp over "
                                        "50 epochs) and clip"))
