"""The FreeDARTS selectors: score every (edge, op) by a saliency of its coefficient, check the scores carry a
signal (:mod:`nasfw_freedarts.guard`), then let the space discretize (DARTS: top-2 inputs per node and argmax
without `none`; NB201: argmax with `none`)."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field, model_validator

from nasfw.supernet import Supernet
from nasfw_freedarts.base import SaliencyConfig, SaliencySelector
from nasfw_freedarts.guard import SignalReport
from nasfw_freedarts.saliency import GRASP_ADAM_LR, Scores, grasp_scores, snip_scores, synflow_scores

Precision = Literal["float64", "float32"]


class SynflowSelector(SaliencySelector):
    """SynFlow-α, FreeDARTS' main variant: data-free, one forward/backward on an all-ones input."""

    measure = "synflow"

    class Config(SaliencyConfig):
        dtype: Precision = Field(default="float64", description="float32 is the reference's; it overflows to NaN "
                                                                "at α = 1")
        bn: Literal["eval", "identity", "batch"] = Field(
            default="eval", description="eval: BN normalises with its running statistics (the identity at "
                                        "initialisation; SynFlow's own pruning setting); identity: BN layers pass "
                                        "their input through (zero-cost-nas); batch: train mode, statistics of "
                                        "the one all-ones image (the FreeDARTS notebooks; no signal on the DARTS "
                                        "space)")
        input_size: int | None = Field(default=None, ge=1, description="height and width of the all-ones input "
                                                                       "(default: the run's data)")
        abs_alpha: bool = Field(default=True, description="make α absolute with the rest of the state "
                                                         "(NB201 notebook; the DARTS notebook kept α's signs)")
        alpha_value: float | None = Field(default=None, description="set every α to this value before scoring "
                                                                   "(the reference's α = 1 run); None keeps the init")

    def input_shape(self, run: Any) -> tuple[int, int, int]:
        shape = run.data.shape
        size = self.config.input_size
        return (shape.channels, size or shape.height, size or shape.width)

    def score_once(self, supernet: Supernet, run: Any, repeat: int, dtype: torch.dtype) -> Scores:
        return synflow_scores(supernet, self.input_shape(run), dtype=dtype, abs_alpha=self.config.abs_alpha,
                              alpha_value=self.config.alpha_value, bn=self.config.bn)

    def no_signal_hint(self, report: SignalReport) -> str:
        if self.config.bn == "batch":
            return ("Train-mode BN normalises the one all-ones image by its own statistics, so every channel has "
                    "zero mean and R hardly depends on α: use --set selector.bn=eval (the default) or "
                    "selector.bn=identity.")
        if self.config.alpha_value is not None:
            return "Keep α at its small init (--set selector.alpha_value=null) and score in float64."
        return ("Use a larger input (--set selector.input_size=32) or a supernet whose output depends on α; "
                "--set selector.signal_guard=false accepts the rounding-decided choice.")

    def plan_details(self) -> dict[str, Any]:
        size = self.config.input_size
        return {"input": f"ones(1,C,{size},{size})" if size else "ones(1,C,H,W)", "bn": self.config.bn,
                "dtype": self.config.dtype}


class _LabelledConfig(SaliencyConfig):
    batch_size: int = Field(default=64, ge=1, description="images in the labelled batch")
    abs_weights: bool = Field(default=False, description="|θ| first, as the DARTS-space notebook did")
    dtype: Precision | None = Field(default=None, description="precision of the scoring (default: the supernet's)")


class SnipSelector(SaliencySelector):
    """SNIP-α: ``|α ⊙ ∂L/∂α|`` on one labelled batch (64 in the reference)."""

    measure = "snip"

    class Config(_LabelledConfig):
        pass

    def score_once(self, supernet: Supernet, run: Any, repeat: int, dtype: torch.dtype) -> Scores:
        x, y = self.batch(run, self.config.batch_size, repeat)
        return snip_scores(supernet, x, y, abs_weights=self.config.abs_weights, dtype=dtype)

    def no_signal_hint(self, report: SignalReport) -> str:
        return ("Score more images (--set selector.batch_size=...) or in float64 (--set selector.dtype=float64); "
                "--set selector.signal_guard=false accepts the rounding-decided choice.")

    def plan_details(self) -> dict[str, Any]:
        return {"batch": self.config.batch_size}


class GraspSelector(SaliencySelector):
    """GraSP-α: ``α ⊙ Hg`` (higher keeps) on one labelled batch; the notebooks' variants as options."""

    measure = "grasp"

    class Config(_LabelledConfig):
        variant: Literal["hg", "nb201", "nb201-row0", "darts"] = Field(
            default="hg", description="hg: α⊙H(α)g (GraSP's definition); nb201: the NB201 notebook's Adam "
                                      "pre-step then α₀⊙H(α₁)g₀; nb201-row0: the same with the notebook's bug "
                                      "(row 0 of g₀ broadcast over every edge); darts: the DARTS notebook's "
                                      "|α₀⊙(H(α₁)α₁ + g(α₁))|")
        adam_lr: float | None = Field(default=None, gt=0, description="pre-step lr of the notebook variants "
                                                                      "(default 3e-2 nb201*, 3e-4 darts)")

        @model_validator(mode="after")
        def _lr_needs_a_prestep(self) -> Any:
            if self.adam_lr is not None and self.variant not in GRASP_ADAM_LR:
                raise ValueError(f"adam_lr is the Adam pre-step's learning rate of the notebook variants "
                                 f"({', '.join(GRASP_ADAM_LR)}); variant '{self.variant}' has no pre-step")
            return self

    def score_once(self, supernet: Supernet, run: Any, repeat: int, dtype: torch.dtype) -> Scores:
        x, y = self.batch(run, self.config.batch_size, repeat)
        return grasp_scores(supernet, x, y, variant=self.config.variant, abs_weights=self.config.abs_weights,
                            adam_lr=self.config.adam_lr, dtype=dtype)

    def no_signal_hint(self, report: SignalReport) -> str:
        return ("Score more images (--set selector.batch_size=...) or in float64 (--set selector.dtype=float64); "
                "--set selector.signal_guard=false accepts the rounding-decided choice.")

    def plan_details(self) -> dict[str, Any]:
        return {"batch": self.config.batch_size, "variant": self.config.variant}
