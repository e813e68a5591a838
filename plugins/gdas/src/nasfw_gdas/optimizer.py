"""GDAS: one op per edge sampled by Gumbel-softmax, a hard one-hot forward with a straight-through gradient.

Each forward pass draws, per edge, ``p = softmax((log_softmax(α) + G) / τ)`` with Gumbel noise ``G`` and takes
the hard one-hot ``h = onehot(argmax p) + (p − stop_grad(p))``: its values are exactly one-hot, so the supernet
(given ``h`` as override weights) computes only the sampled op of every edge, and its gradient is ``p``'s, so
α still learns. Only the sampled op's coefficient sees the loss, which gives the closed form

    ∂L/∂α_row = (v_k · p_k / τ) · (e_k − p),      v_k = ∂L/∂h_k = ⟨∂L/∂node, op_k(x)⟩,

(``tests/test_gdas.py`` checks it). The weight step and the α step each draw their own sample, in GDAS' order:
weights first, then α (``exps/NAS-Bench-201-algos/GDAS.py``). τ falls linearly from ``tau_max`` to ``tau_min``
epoch by epoch (GDAS.py: ``tau_max − (tau_max − tau_min)·epoch/(epochs − 1)``).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field, model_validator

from nasfw.budget import Budget, Span
from nasfw.data import Batch, SearchData
from nasfw.errors import GenotypeError, NasfwError
from nasfw.supernet import Supernet
from nasfw_darts.optimizer import DartsConfig, DartsOptimizer
from nasfw_gdas.paper import recipe


def gumbel_hard(alpha: torch.Tensor, mask: torch.Tensor, tau: float, generator: torch.Generator | None = None,
                max_tries: int = 100) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(hard, probs, index)`` of one Gumbel-softmax draw per row over the available (``mask``) entries.

    ``hard`` is exactly one-hot in value (zero on fully masked rows) with the gradient of ``probs``. Draws with
    an infinite Gumbel value (an exponential draw of exactly 0) are repeated, as GDAS does.
    """
    avail = mask.any(dim=-1, keepdim=True)
    neg = torch.finfo(alpha.dtype).min
    logp = torch.log_softmax(alpha.masked_fill(~mask, neg), dim=-1)
    for _ in range(max_tries):
        gumbel = -torch.empty_like(alpha).exponential_(generator=generator).log()
        if bool(torch.isfinite(gumbel).all()):
            break
    else:  # pragma: no cover - needs max_tries exact zeros in a row
        raise NasfwError(f"GDAS: {max_tries} Gumbel draws in a row were infinite; the random generator is broken")
    z = ((logp + gumbel) / tau).masked_fill(~mask, float("-inf")).masked_fill(~avail, 0.0)
    probs = torch.softmax(z, dim=-1) * (mask & avail).to(alpha.dtype)
    index = probs.detach().argmax(dim=-1)
    one_hot = torch.zeros_like(probs).scatter_(-1, index.unsqueeze(-1), 1.0) * avail.to(alpha.dtype)
    return one_hot + (probs - probs.detach()), probs, index


def tau_at(epoch: int, tau_max: float, tau_min: float, anneal_epochs: int) -> float:
    """GDAS' linear temperature: ``tau_max`` at epoch 0, ``tau_min`` from epoch ``anneal_epochs − 1`` on."""
    if anneal_epochs <= 1:
        return tau_min
    return tau_max - (tau_max - tau_min) * min(1.0, epoch / (anneal_epochs - 1))


class GDASConfig(DartsConfig):
    w_weight_decay: float = Field(default=5e-4, ge=0, description="weight decay (GDAS.config: decay 0.0005)")
    w_nesterov: bool = Field(default=True, description="Nesterov momentum (GDAS.config: nesterov 1)")
    tau_max: float = Field(default=10.0, gt=0, description="Gumbel-softmax temperature at the start")
    tau_min: float = Field(default=0.1, gt=0, description="temperature at the end of the annealing")
    tau_anneal: Span = Field(default=1.0, description="epochs over which τ falls linearly from tau_max to tau_min: "
                                                      "a fraction of the search or a count (GDAS: the whole search)")
    warmup_epochs: Span = Field(default=0, description="epochs that train only w (GDAS: none)")
    genotype_val: bool = Field(default=True, description="at each epoch's end also score the current genotype (the "
                                                         "space's discretization of α) on the search's val batches, "
                                                         "one op per edge: the supernet GDAS trains is single-path")

    @model_validator(mode="after")
    def _first_order(self) -> GDASConfig:
        if self.unrolled:
            raise ValueError("GDAS has no second-order variant (its α gradient is the straight-through one); "
                             "drop unrolled")
        if self.tau_min > self.tau_max:
            raise ValueError(f"tau_min {self.tau_min} is above tau_max {self.tau_max}; GDAS anneals downwards")
        return self


class GDASOptimizer(DartsOptimizer):
    """GDAS on any cell space: DARTS' alternation (SGD on w, Adam on α) with sampled single-path forwards."""

    Config = GDASConfig
    config: GDASConfig
    alpha_first = False  # GDAS updates the weights first, then α

    @classmethod
    def preset(cls, name: str, config: Any) -> Any:
        """``--preset paper``: the official protocol of the run's space (see :mod:`nasfw_gdas.paper`)."""
        return recipe(config.space.name) if name == "paper" else None

    def setup(self, supernet: Supernet, data: SearchData, epochs: int, steps_per_epoch: int) -> None:
        super().setup(supernet, data, epochs, steps_per_epoch)
        c = self.config
        budget = Budget(epochs, steps_per_epoch)
        self.anneal = budget.epochs_of(c.tau_anneal)
        self.tau = tau_at(0, c.tau_max, c.tau_min, self.anneal)
        self.seeded_generator(0x6DA5)
        self.alpha_updates = 0
        self.samples = 0

    def weight_optimizer(self, lr: float) -> torch.optim.Optimizer:
        c = self.config
        return torch.optim.SGD(self.weights, lr=lr, momentum=c.w_momentum, weight_decay=c.w_weight_decay,
                               nesterov=c.w_nesterov and c.w_momentum > 0)

    def plan(self, budget: Budget) -> dict[str, Any]:
        c = self.config
        warm = self.checked_warmup(budget)
        anneal = budget.epochs_of(c.tau_anneal)
        last = tau_at(budget.epochs - 1, c.tau_max, c.tau_min, anneal)
        return {"weight_steps": budget.steps, "alpha_updates": (budget.epochs - warm) * budget.steps_per_epoch,
                "ops_per_edge": 1, "tau": f"{tau_at(0, c.tau_max, c.tau_min, anneal):g} -> {last:g}"}

    def activity(self) -> dict[str, Any]:
        return {"alpha_updates": self.alpha_updates, "samples": self.samples, "tau": self.tau}

    # -- schedule --------------------------------------------------------------------------
    def epoch_start(self, epoch: int) -> None:
        super().epoch_start(epoch)
        c = self.config
        self.tau = tau_at(epoch, c.tau_max, c.tau_min, self.anneal)

    # -- the sampled forward ----------------------------------------------------------------
    def forward_weights(self, phase: str, batch: Batch) -> dict[str, torch.Tensor]:
        """A fresh Gumbel sample per forward, shared by every cell of a type (as GDAS' one ``hardwts``)."""
        self.samples += 1
        return {k: gumbel_hard(a, self.supernet.mask(k), self.tau, self.gen)[0]
                for k, a in self.op_alphas()}

    def step(self, train_batch: Batch, val_batch: Batch) -> dict[str, Any]:
        out = super().step(train_batch, val_batch)  # counts alpha_updates
        out["tau"] = self.tau
        return out

    def epoch_end(self, epoch: int) -> dict[str, float]:
        out: dict[str, float] = {"tau": self.tau}
        run = getattr(self, "run", None)
        if self.config.genotype_val and run is not None and run.data is not None and run.space is not None:
            try:
                genotype = run.space.discretize(self.supernet.strengths())
            except GenotypeError:  # e.g. a node left without enough inputs by a selector's masks
                return out
            dev = next(iter(self.supernet.arch_parameters().values())).device
            onehot = {k: v.to(dev) for k, v in run.space.encode(genotype).items()}
            with self.supernet.override_weights(onehot):
                res = run.evaluate(run.eval_batches("val", run.config.search.eval_batches))
            out["val_acc_genotype"] = res["acc"]
        return out

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "samples": self.samples}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        super().load_state_dict(state)
        self.samples = state.get("samples", 0)
        self.tau = tau_at(self.epoch, self.config.tau_max, self.config.tau_min, self.anneal)
