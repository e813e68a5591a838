"""SDARTS-RS and SDARTS-ADV: DARTS whose weight step sees perturbed mixing weights.

Each step is DARTS' (α by Adam on the validation loss, unperturbed), then a weight step whose forward uses
``w₀ + δ`` instead of ``w₀ = softmax(α)`` (the official ``softmax_arch_parameters`` → perturb →
``model(input, updateType='weight')`` → ``restore_arch_parameters``). RS draws ``δ ~ U(−ε, ε)``; ADV runs a
7-step L∞ PGD attack on the training batch (random start, signed steps of 2ε/7, kept only if it raised the
loss). ε grows linearly from 0.03 to 0.3 over the search. The weights stay a distribution on each edge and
inside the ε-ball (see :mod:`nasfw_sdarts.perturb`).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from nasfw.budget import Budget, Span
from nasfw.data import Batch, SearchData
from nasfw.supernet import Supernet
from nasfw_darts.optimizer import DartsConfig, DartsOptimizer
from nasfw_sdarts.paper import recipe
from nasfw_sdarts.perturb import epsilon_at, project


class SDARTSConfig(DartsConfig):
    epsilon_min: float = Field(default=0.03, ge=0, le=1, description="perturbation radius ε at the start")
    epsilon_max: float = Field(default=0.3, ge=0, le=1, description="ε at the end of the ramp (epsilon_alpha)")
    epsilon_ramp: Span = Field(default=1.0, description="epochs over which ε grows linearly to epsilon_max: a "
                                                        "fraction of the search or a count (SDARTS: the whole search)")
    projection: Literal["box-simplex", "official"] = Field(
        default="box-simplex", description="back onto the simplex inside the ε-ball (exact projection), or the "
                                           "official clamp-and-renormalise (can leave the ball)")
    warmup_epochs: Span = Field(default=0, description="epochs that train only w (SDARTS: none)")

    @model_validator(mode="after")
    def _ordered(self) -> SDARTSConfig:
        if self.epsilon_min > self.epsilon_max:
            raise ValueError(f"epsilon_min {self.epsilon_min} is above epsilon_max {self.epsilon_max}")
        return self


class SDARTSADVConfig(SDARTSConfig):
    attack_steps: int = Field(default=7, ge=1, description="PGD steps per weight step")
    attack_step_size: float | None = Field(default=None, gt=0, description="signed step size (default 2ε/steps)")
    random_start: bool = Field(default=True, description="start the attack at a random point of the ball")
    attack_bn: Literal["eval", "train"] = Field(
        default="eval", description="BN during the attack: eval (official: model.eval()) or train (batch "
                                    "statistics; running statistics restored afterwards)")


class SDARTSOptimizer(DartsOptimizer):
    """SDARTS-RS: DARTS with the mixing weights of every weight step perturbed uniformly in the ε-ball."""

    Config = SDARTSConfig
    config: SDARTSConfig

    @classmethod
    def preset(cls, name: str, config: Any) -> Any:
        """``--preset paper``: the official protocol of the run's space (see :mod:`nasfw_sdarts.paper`)."""
        return recipe(config.space.name, adversarial=issubclass(cls.Config, SDARTSADVConfig)) \
            if name == "paper" else None

    def setup(self, supernet: Supernet, data: SearchData, epochs: int, steps_per_epoch: int) -> None:
        super().setup(supernet, data, epochs, steps_per_epoch)
        c = self.config
        budget = Budget(epochs, steps_per_epoch)
        self.ramp = budget.epochs_of(c.epsilon_ramp)
        self.epsilon = epsilon_at(0, c.epsilon_min, c.epsilon_max, self.ramp)
        self.seeded_generator(0x5DA7)
        self.counts: dict[str, float] = {"perturbed_steps": 0, "epsilon_sum": 0.0}

    def plan(self, budget: Budget) -> dict[str, Any]:
        c = self.config
        warm = self.checked_warmup(budget)
        ramp = budget.epochs_of(c.epsilon_ramp)
        eps = [epsilon_at(e, c.epsilon_min, c.epsilon_max, ramp) for e in (0, budget.epochs - 1)]
        return {"weight_steps": budget.steps, "alpha_updates": (budget.epochs - warm) * budget.steps_per_epoch,
                "perturbed_weight_steps": budget.steps, "epsilon": f"{eps[0]:.3g} -> {eps[1]:.3g}",
                "extra_passes_per_step": self._extra_passes()}

    def _extra_passes(self) -> str:
        return "none (one uniform draw)"

    def activity(self) -> dict[str, Any]:
        n = self.counts["perturbed_steps"]
        return {"alpha_updates": self.alpha_updates, "perturbed_steps": int(n),
                "mean_epsilon": self.counts["epsilon_sum"] / n if n else None}

    # -- schedule --------------------------------------------------------------------------
    def epoch_start(self, epoch: int) -> None:
        super().epoch_start(epoch)
        c = self.config
        self.epsilon = epsilon_at(epoch, c.epsilon_min, c.epsilon_max, self.ramp)

    def step(self, train_batch: Batch, val_batch: Batch) -> dict[str, Any]:
        out = super().step(train_batch, val_batch)  # counts alpha_updates
        out["epsilon"] = self.epsilon
        return out

    # -- the perturbation ----------------------------------------------------------------------
    def _base(self) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {k: w.detach() for k, w in self.supernet.mixing_weights().items()}

    def _uniform(self, base: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        eps = self.epsilon
        return {k: w + (2 * torch.rand(w.shape, generator=self.gen, device=w.device, dtype=w.dtype) - 1) * eps
                for k, w in base.items()}

    def _project(self, w: dict[str, torch.Tensor], base: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: project(w[k], base[k], self.epsilon, self.supernet.mask(k), self.config.projection) for k in w}

    def perturbed(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The weight step's mixing weights: ``project(w₀ + U(−ε, ε))``."""
        base = self._base()
        return self._project(self._uniform(base), base)

    def forward_weights(self, phase: str, batch: Batch) -> dict[str, torch.Tensor] | None:
        if phase != "weight" or self.epsilon == 0:
            return None
        self.counts["perturbed_steps"] += 1
        self.counts["epsilon_sum"] += self.epsilon
        return self.perturbed(batch)

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "counts": dict(self.counts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        super().load_state_dict(state)
        self.counts.update(state.get("counts", {}))
        self.epsilon = epsilon_at(self.epoch, self.config.epsilon_min, self.config.epsilon_max, self.ramp)


class SDARTSADVOptimizer(SDARTSOptimizer):
    """SDARTS-ADV: the weight step's mixing weights are an L∞ PGD attack on the training loss inside the ε-ball."""

    Config = SDARTSADVConfig
    config: SDARTSADVConfig

    def setup(self, supernet: Supernet, data: SearchData, epochs: int, steps_per_epoch: int) -> None:
        super().setup(supernet, data, epochs, steps_per_epoch)
        self.counts.update({"attacks_kept": 0, "loss_increase_sum": 0.0})

    def _extra_passes(self) -> str:
        c = self.config
        return f"{c.attack_steps} forward+backward and 2 forward (PGD)"

    def activity(self) -> dict[str, Any]:
        out = super().activity()
        n = self.counts["perturbed_steps"]
        out.update({"attacks_kept": int(self.counts["attacks_kept"]),
                    "mean_loss_increase": self.counts["loss_increase_sum"] / n if n else None})
        return out

    def _loss(self, weights: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        x, y = batch
        with self.supernet.override_weights(weights):
            logits = self.supernet(x)
        return F.cross_entropy(logits if logits.dtype == torch.float64 else logits.float(), y)

    def _global(self, loss: torch.Tensor, n: int) -> torch.Tensor:
        loss = loss.detach().clone()
        self.dist.average_([loss], weight=n)
        return loss

    def perturbed(self, batch: Batch) -> dict[str, torch.Tensor]:
        """``Linf_PGD_alpha``: ascend the training loss by signed steps, project after each; keep the result
        only if it raised the loss (else w₀)."""
        c = self.config
        base = self._base()
        n = batch[1].numel()
        lr = c.attack_step_size if c.attack_step_size is not None else 2 * self.epsilon / c.attack_steps
        was = self.supernet.training
        saved = None
        if c.attack_bn == "eval":
            self.supernet.eval()
        else:  # batch statistics, but the attack's passes must not move the running ones
            saved = {k: b.clone() for k, b in self.supernet.named_buffers()}
        try:
            with torch.no_grad():
                before = self._global(self._loss(base, batch), n)
            w = self._project(self._uniform(base), base) if c.random_start else dict(base)
            for _ in range(c.attack_steps):
                leaves = {k: v.detach().requires_grad_(True) for k, v in w.items()}
                grads = torch.autograd.grad(self._loss(leaves, batch), list(leaves.values()))
                self.dist.average_(grads, weight=n)
                w = self._project({k: v.detach() + lr * g.sign() for (k, v), g in zip(leaves.items(), grads)}, base)
            with torch.no_grad():
                after = self._global(self._loss(w, batch), n)
        finally:
            self.supernet.train(was)
            if saved is not None:
                with torch.no_grad():
                    for k, b in self.supernet.named_buffers():
                        b.copy_(saved[k])
        if bool(before > after):  # official: revert an attack that lowered the loss
            return base
        self.counts["attacks_kept"] += 1
        self.counts["loss_increase_sum"] += float(after - before)
        return w
