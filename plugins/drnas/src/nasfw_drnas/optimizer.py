"""DrNAS: DARTS' alternation with Dirichlet-distributed mixing weights.

Every forward of a step (the α step on the validation batch and the weight step on the training batch) draws
fresh mixing weights ``w ~ Dir(elu(β) + 1)`` per cell type (shared by the cells of that type, as the official
``process_step_matrix`` once per forward); the α step differentiates through the draw (pathwise gradient), the
weight step does not need to. β is regularised towards the uniform anchor Dir(1): by Adam's L2 weight decay on
β (the official default ``reg_type=l2``, ``reg_scale=1e-3``) and/or by ``kl_scale · Σ KL(Dir(elu(β)+1) ‖ Dir(1))``
(``reg_type=kl``). Evaluations between epochs use the Dirichlet mean (the ``dirichlet-mean`` weighting).

The progressive schedule (``DARTS-space/train_search.py``) splits the search into stages; at each stage's start
every edge keeps only its strongest ops by β (``pruning(num_keep)``: 7 → 4 in the official run) and α is frozen
for the first part of each stage (``if epoch >= 10`` on the stage's own epoch counter). After pruning, a stage may
widen the partial channels (the official K 6 → 4, ``model.wider`` with ``net2wider.py``): every edge op is rebuilt
wider with its trained channels kept and the new ones copied from trained ones, and the SGD momentum is widened
the same way (:mod:`nasfw.widening`).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field, model_validator

from nasfw.budget import Budget, Span, refuse
from nasfw.components import StrictModel
from nasfw.config import ComponentRef
from nasfw.data import Batch, SearchData
from nasfw.supernet import Supernet
from nasfw_darts.optimizer import DartsConfig, DartsOptimizer
from nasfw_drnas.dirichlet import concentration, dirichlet_sample, kl_to_uniform
from nasfw_drnas.paper import recipe


class Stage(StrictModel):
    """One stage of the progressive schedule."""

    length: Span = Field(description="share of the search (fraction) or epochs (count)")
    keep_ops: int | None = Field(default=None, ge=1, description="ops kept per edge from the stage's start: the "
                                                                 "strongest by β (None: all)")
    warmup: Span = Field(default=0.4, description="epochs of the stage that train only w (fraction of the stage "
                                                  "or count; official: 10 of 25 = 0.4)")
    partial_channels: int | None = Field(default=None, ge=1, description=(
        "partial channels K from the stage's start, after pruning (official: 6 then 4); at most the previous "
        "stage's K, dividing space.init_channels; None: keep"))


def _official_stages() -> list[Stage]:
    # DARTS-space/train_search.py: train_epochs [25, 25], num_keeps [7, 4], `if epoch >= 10` per stage
    return [Stage(length=0.5, keep_ops=None, warmup=0.4), Stage(length=0.5, keep_ops=4, warmup=0.4)]


class DrNASConfig(DartsConfig):
    arch_weight_decay: float = Field(default=1e-3, ge=0, description="L2 on β = pull towards concentration 1 "
                                                                     "(official reg_type=l2, reg_scale=1e-3)")
    kl_scale: float = Field(default=0.0, ge=0, description="weight of Σ KL(Dir(elu(β)+1) ‖ Dir(1)) in the α loss "
                                                           "(official reg_type=kl; then set arch_weight_decay=0)")
    warmup_epochs: Span = Field(default=0, description="epochs that train only w (DrNAS on NB201: none)")
    edge_weighting: ComponentRef | None = Field(
        default_factory=lambda: ComponentRef(name="dirichlet-mean"),
        description="deterministic mixing weights between steps (evaluation, selectors): the Dirichlet mean")

    schedule: Literal["auto", "plain", "progressive"] = Field(
        default="auto", description="plain: one stage (NB201); progressive: stages that prune ops (DARTS space); "
                                    "auto: progressive on spaces with a topology rule (DARTS cells), else plain")
    stages: list[Stage] = Field(default_factory=_official_stages, min_length=1,
                                description="the progressive schedule's stages (lengths as fractions must sum to 1)")

    @model_validator(mode="after")
    def _first_order(self) -> DrNASConfig:
        fracs = [st.length for st in self.stages]
        if all(isinstance(f, float) for f in fracs) and abs(sum(fracs) - 1.0) > 1e-6:
            raise ValueError(f"the stages' lengths {fracs} must sum to 1 (the whole search)")
        if self.unrolled:
            raise ValueError("the DrNAS plugin implements the first-order α step only (the official default); "
                             "drop unrolled")
        return self


class DrNASOptimizer(DartsOptimizer):
    """DrNAS on any cell space: the plain schedule, or the progressive one (stages that prune ops)."""

    Config = DrNASConfig
    config: DrNASConfig

    @classmethod
    def preset(cls, name: str, config: Any) -> Any:
        """``--preset paper``: the official protocol of the run's space (see :mod:`nasfw_drnas.paper`)."""
        return recipe(config.space.name) if name == "paper" else None

    def setup(self, supernet: Supernet, data: SearchData, epochs: int, steps_per_epoch: int) -> None:
        super().setup(supernet, data, epochs, steps_per_epoch)
        budget = Budget(epochs, steps_per_epoch)
        self.progressive = self._is_progressive()
        self.stage_plan = self._stages(budget) if self.progressive else [(0, epochs, None, self.warmup(epochs))]
        self.stages_pruned = 0
        self.seeded_generator(0xD12A)

    # -- schedule --------------------------------------------------------------------------
    def _is_progressive(self) -> bool:
        mode = self.config.schedule
        if mode != "auto":
            return mode == "progressive"
        space = getattr(getattr(self, "run", None), "space", None)
        return bool(space is not None and any(space.topology().values()))

    def _stages(self, budget: Budget) -> list[tuple[int, int, int | None, int]]:
        """(first epoch, end epoch, ops kept, warm-up epochs) per stage; fractional lengths are cumulative
        fractions of the search, so the stages always tile it (K per stage: :meth:`_widths`)."""
        out, start, cum = [], 0, 0.0
        for i, st in enumerate(self.config.stages):
            if isinstance(st.length, float):
                cum += st.length
                end = budget.epochs if i == len(self.config.stages) - 1 else round(cum * budget.epochs)
            else:
                end = start + st.length
            end = min(max(end, start), budget.epochs)
            out.append((start, end, st.keep_ops, Budget(end - start, budget.steps_per_epoch).epochs_of(st.warmup)))
            start = end
        return out

    def _stage_of(self, epoch: int) -> int:
        for i, (start, end, _, _) in enumerate(self.stage_plan):
            if start <= epoch < end:
                return i
        return len(self.stage_plan) - 1  # past the search (DARTS-PT tuning): the last stage, warmed up

    def _widths(self) -> list[int]:
        """The partial channels K of each stage, checked against the space that builds the supernet."""
        space_cfg = getattr(getattr(getattr(self, "run", None), "space", None), "config", None)
        k = int(getattr(space_cfg, "partial_channels", 1))
        C = getattr(space_cfg, "init_channels", None)
        widths = []
        for i, st in enumerate(self.config.stages):
            want = st.partial_channels
            if want is not None and want != k:
                if not hasattr(space_cfg, "partial_channels"):
                    raise refuse(f"optimizer.stages[{i}].partial_channels", "this space has no partial channels "
                                 "to widen", "drop the option or use a space with space.partial_channels")
                if want > k or (C is not None and C % want):
                    raise refuse(f"optimizer.stages[{i}].partial_channels", f"K = {want} cannot follow K = {k}: "
                                 "widening keeps the trained channels, so K can only fall, to a divisor of "
                                 f"space.init_channels = {C}", f"use a K <= {k} that divides {C}")
                k = want
            widths.append(k)
        return widths

    def plan(self, budget: Budget) -> dict[str, Any]:
        progressive = self._is_progressive()
        stages = self._stages(budget) if progressive else \
            [(0, budget.epochs, None, budget.epochs_of(self.config.warmup_epochs))]
        widths = self._widths() if progressive else []
        updates = sum(max(0, end - start - warm) for start, end, _, warm in stages) * budget.steps_per_epoch
        if updates == 0:
            what = "optimizer.stages[].warmup" if len(stages) > 1 else "optimizer.warmup_epochs"
            raise refuse(what, f"the warm-up leaves none of the {budget.epochs}-epoch search for α updates",
                         "use a shorter warm-up (e.g. 0.2) or more epochs")
        out: dict[str, Any] = {"weight_steps": budget.steps, "alpha_updates": updates,
                               "dirichlet_samples_per_step": 2,
                               "schedule": "progressive" if len(stages) > 1 or self._is_progressive() else "plain"}
        if out["schedule"] == "progressive":
            out["stages"] = [f"epochs {s}-{e}: keep {k or 'all'} ops, warm-up {w}"
                             + (f", partial channels K = {kk}" if max(widths) > 1 else "")
                             for (s, e, k, w), kk in zip(stages, widths)]
        return out

    def epoch_start(self, epoch: int) -> None:
        super().epoch_start(epoch)
        stage = self._stage_of(epoch)
        while self.stages_pruned < stage:  # entering a stage (also after a resume that skipped none)
            self.stages_pruned += 1
            keep = self.stage_plan[self.stages_pruned][2]
            if keep is not None:
                self.prune(keep)
            k = self.config.stages[self.stages_pruned].partial_channels
            if k is not None and k != self.supernet.partial_channels:
                self.widen(k)

    def widen(self, k: int) -> None:
        """DrNAS' ``model.wider(k)`` + ``configure_optimizer``: every partial-channel op rebuilt at C/k channels
        (trained channels kept, new ones replicas of trained ones, drawn from this optimizer's stream), the SGD
        momentum widened alike."""
        seed = int(torch.randint(0, 2**62, (1,), generator=self.gen, device=self.gen.device))
        mapping = self.supernet.set_partial_channels(k, torch.Generator().manual_seed(seed))
        self.follow_weights(mapping)

    def prune(self, keep: int) -> None:
        """DrNAS' ``pruning(num_keep)``: each edge keeps its ``keep`` strongest available ops by β (the rest masked)."""
        with torch.no_grad():
            for k, a in self.op_alphas():
                mask = self.supernet.mask(k)
                score = a.detach().masked_fill(~mask, float("-inf"))
                n = min(keep, a.shape[1])
                top = score.topk(n, dim=-1).indices
                new = torch.zeros_like(mask).scatter_(-1, top, True) & mask
                self.supernet.set_mask(k, new)

    def activity(self) -> dict[str, Any]:
        with torch.no_grad():
            conc = {k: float(concentration(a)[self.supernet.mask(k)].sum() / max(1, int(self.supernet.mask(k)
                                                                                   .any(-1).sum())))
                    for k, a in self.op_alphas()}
        out: dict[str, Any] = {"alpha_updates": self.alpha_updates, "mean_concentration_sum_per_edge": conc}
        if self.progressive:
            out["stages_pruned"] = self.stages_pruned
            out["ops_per_edge"] = {k: int(self.supernet.mask(k).sum(-1).max()) for k in self.supernet.cell_types}
            out["partial_channels"] = self.supernet.partial_channels
        return out

    def _alpha_active(self) -> bool:
        if not self.update_alpha:
            return False
        if self.epoch >= self.epochs:  # tuning after the search
            return True
        start, _, _, warm = self.stage_plan[self._stage_of(self.epoch)]
        return self.epoch - start >= warm

    # -- the Dirichlet forward -------------------------------------------------------------------
    def forward_weights(self, phase: str, batch: Batch) -> dict[str, torch.Tensor]:
        """A fresh pathwise draw per forward from this optimizer's own random stream (restored in checkpoints)."""
        devices = [self.gen.device] if self.gen.device.type == "cuda" else []
        seed = int(torch.randint(0, 2**62, (1,), generator=self.gen, device=self.gen.device))
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            with torch.set_grad_enabled(phase == "alpha" and torch.is_grad_enabled()):
                return {k: dirichlet_sample(a, self.supernet.mask(k))
                        for k, a in self.op_alphas()}

    def alpha_regularizer(self) -> torch.Tensor | None:
        if self.config.kl_scale == 0:
            return None
        return self.config.kl_scale * sum(kl_to_uniform(a, self.supernet.mask(k))
                                          for k, a in self.op_alphas())

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "stages_pruned": self.stages_pruned}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        super().load_state_dict(state)
        self.stages_pruned = state.get("stages_pruned", 0)  # the masks themselves are the supernet's buffers
