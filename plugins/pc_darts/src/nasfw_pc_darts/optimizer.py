"""PC-DARTS' search: first-order DARTS on a supernet with partial channels and edge normalisation.

The method's structure lives in the supernet, as options any optimizer can use (``space.partial_channels``: each
edge's ops see 1/K of the channels, the rest bypass them, then channel shuffle; ``space.edge_normalization``: a β
per edge, softmax over each node's inputs, and the edge choice ranks β × op weight). β is an architecture
parameter, so this optimizer trains it with α. What PC-DARTS adds as an optimizer is its protocol: SGD 0.1 cosine
to 0, α Adam 6e-4, and α frozen for the first 15 of 50 epochs (``train_search.py``: ``if epoch >= 15``).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from nasfw.budget import Budget, Span, refuse
from nasfw.config import ComponentRef
from nasfw.data import SearchData
from nasfw.supernet import Supernet
from nasfw_darts.optimizer import DartsConfig, DartsOptimizer
from nasfw_pc_darts.paper import recipe, tiny_recipe


class PCDartsConfig(DartsConfig):
    w_lr: float = Field(default=0.1, gt=0, description="weight learning rate (PC-DARTS: 0.1 at batch 256)")
    lr_schedule: ComponentRef = Field(default_factory=lambda: ComponentRef(name="cosine", params={"min_lr": 0.0}),
                                      description="weight lr schedule (PC-DARTS: cosine to 0)")
    arch_lr: float = Field(default=6e-4, gt=0, description="α and β learning rate (Adam)")
    warmup_epochs: Span = Field(default=0.3, description="epochs that train only w: a fraction of the search or a "
                                                         "count (PC-DARTS: 15 of 50 = 0.3)")
    require_pc_supernet: bool = Field(default=True, description="refuse a supernet with neither partial channels "
                                                                "nor edge normalisation (that would be plain DARTS)")


class PCDartsOptimizer(DartsOptimizer):
    """PC-DARTS (Xu et al., ICLR 2020); refuses a supernet that has neither partial channels nor edge weights."""

    Config = PCDartsConfig
    config: PCDartsConfig

    @classmethod
    def preset(cls, name: str, config: Any) -> Any:
        """``--preset paper``: the official CIFAR-10 protocol (see :mod:`nasfw_pc_darts.paper`); ``tiny``: the
        smallest partial-channel supernet on which α moves from the first step."""
        if name == "tiny":
            return tiny_recipe()
        return recipe(config.space.name) if name == "paper" else None

    def setup(self, supernet: Supernet, data: SearchData, epochs: int, steps_per_epoch: int) -> None:
        super().setup(supernet, data, epochs, steps_per_epoch)

    def plan(self, budget: Budget) -> dict[str, Any]:
        # plan() runs before setup (no supernet yet): read the options off the space that will build it
        space_cfg = getattr(getattr(getattr(self, "run", None), "space", None), "config", None)
        k = int(getattr(space_cfg, "partial_channels", 1))
        edge_norm = bool(getattr(space_cfg, "edge_normalization", False))
        if self.config.require_pc_supernet and k == 1 and not edge_norm:
            raise refuse("optimizer pc-darts", "the supernet has neither partial channels nor edge normalisation, "
                         "so this would be plain DARTS", "use --space darts-pc or nb201-pc, or set "
                         "space.partial_channels=4 and space.edge_normalization=true "
                         "(or optimizer.require_pc_supernet=false)")
        warm = self.checked_warmup(budget)
        return {"weight_steps": budget.steps, "warmup_epochs": warm,
                "alpha_updates": (budget.epochs - warm) * budget.steps_per_epoch, "partial_channels": k,
                "edge_normalization": edge_norm}

    def activity(self) -> dict[str, Any]:
        return {"alpha_updates": self.alpha_updates}
