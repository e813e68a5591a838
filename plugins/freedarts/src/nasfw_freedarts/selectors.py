"""The FreeDARTS selectors: score every (edge, op) by a saliency of its coefficient, then let the space
discretize (DARTS: top-2 inputs per node and argmax without `none`; NB201: argmax with `none`)."""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from nasfw.components import SearchSpace, Selector, StrictModel
from nasfw.data import Batch
from nasfw.genotype import Genotype
from nasfw.supernet import Supernet
from nasfw_freedarts.saliency import Scores, grasp_scores, snip_scores, synflow_scores, working_copy


class SaliencyConfig(StrictModel):
    seed: int | None = Field(default=None, ge=0, description="seed of the scoring RNG (default: the run's seed)")
    repeats: int = Field(default=1, ge=1, description="score this many times and average the scores")
    reinit: bool = Field(default=True, description="repeats after the first re-initialise the weights "
                                                   "(seeded); otherwise only the batch changes")


class SaliencySelector(Selector):
    """Base: seeded, optionally repeated scoring; scores go to the run summary under ``saliency``."""

    measure: ClassVar[str] = ""
    config: Any

    def edge_weighting(self) -> Any:
        """FreeDARTS mixes ops with α itself (no softmax) when the optimizer does not choose."""
        return "raw"

    def score_once(self, supernet: Supernet, run: Any, repeat: int) -> Scores:
        raise NotImplementedError

    def batch(self, run: Any, batch_size: int) -> Batch:
        """One labelled batch of the architecture-validation split (a checkpointed stream of its own)."""
        return run.to_device(run.data.stream(f"freedarts-{self.measure}", "val", batch_size).next())

    def scores(self, supernet: Supernet, run: Any) -> Scores:
        seed = self.config.seed if self.config.seed is not None else int(getattr(run.config, "seed", 0))
        devices = [run.device] if getattr(run, "device", torch.device("cpu")).type == "cuda" else []
        total: Scores | None = None
        with torch.random.fork_rng(devices=devices):
            for r in range(self.config.repeats):
                torch.manual_seed(seed + r)
                fresh = r > 0 and self.config.reinit
                with working_copy(supernet, reinit=True) if fresh else contextlib.nullcontext(supernet) as net:
                    s = self.score_once(net, run, r)
                total = s if total is None else {k: total[k] + s[k] for k in s}
        assert total is not None
        return {k: v / self.config.repeats for k, v in total.items()}

    def select(self, supernet: Supernet, space: SearchSpace, run: Any) -> Genotype:
        scores = self.scores(supernet, run)
        table = space.op_table()
        final = {k: torch.where(table[k] & torch.isfinite(v), v, torch.full_like(v, float("-inf")))
                 for k, v in scores.items()}
        with contextlib.suppress(AttributeError):
            run.extra_summary["saliency"] = {
                "measure": self.measure,
                "scores": {k: [[float(x) if x != float("-inf") else None for x in row] for row in v.tolist()]
                           for k, v in final.items()},
            }
        return space.discretize(final)


class SynflowSelector(SaliencySelector):
    """SynFlow-α, FreeDARTS' main variant: data-free, one forward/backward on an all-ones input."""

    measure = "synflow"

    class Config(SaliencyConfig):
        dtype: Literal["float64", "float32"] = Field(
            default="float64", description="float32 is the reference's; it overflows to NaN at α = 1")
        abs_alpha: bool = Field(default=True, description="make α absolute with the rest of the state "
                                                         "(NB201 notebook; the DARTS notebook kept α's signs)")
        alpha_value: float | None = Field(default=None, description="set every α to this value before scoring "
                                                                   "(the reference's α = 1 run); None keeps the init")

    def score_once(self, supernet: Supernet, run: Any, repeat: int) -> Scores:
        shape = run.data.shape
        return synflow_scores(supernet, (shape.channels, shape.height, shape.width),
                              dtype=getattr(torch, self.config.dtype), abs_alpha=self.config.abs_alpha,
                              alpha_value=self.config.alpha_value)


class SnipSelector(SaliencySelector):
    """SNIP-α: ``|α ⊙ ∂L/∂α|`` on one labelled batch (64 in the reference)."""

    measure = "snip"

    class Config(SaliencyConfig):
        batch_size: int = Field(default=64, ge=1, description="images in the labelled batch")
        abs_weights: bool = Field(default=False, description="|θ| first, as the DARTS-space notebook did")

    def score_once(self, supernet: Supernet, run: Any, repeat: int) -> Scores:
        x, y = self.batch(run, self.config.batch_size)
        return snip_scores(supernet, x, y, abs_weights=self.config.abs_weights)


class GraspSelector(SaliencySelector):
    """GraSP-α: ``α ⊙ Hg`` (higher keeps) on one labelled batch; the notebooks' variants as options."""

    measure = "grasp"

    class Config(SaliencyConfig):
        batch_size: int = Field(default=64, ge=1, description="images in the labelled batch")
        variant: Literal["hg", "nb201", "darts"] = Field(
            default="hg", description="hg: α⊙H(α)g (GraSP's definition); nb201 / darts: the two notebooks' "
                                      "versions with an Adam pre-step on α")
        abs_weights: bool = Field(default=False, description="|θ| first, as the DARTS-space notebook did")
        adam_lr: float | None = Field(default=None, gt=0, description="pre-step lr (default 3e-2 nb201, 3e-4 darts)")

    def score_once(self, supernet: Supernet, run: Any, repeat: int) -> Scores:
        x, y = self.batch(run, self.config.batch_size)
        return grasp_scores(supernet, x, y, variant=self.config.variant, abs_weights=self.config.abs_weights,
                            adam_lr=self.config.adam_lr)
