"""ZARTS (Wang et al., NeurIPS 2022): zero-order architecture optimizers for any nasfw space.

The outer objective L(α) = L_val(w^(M)(α), α) is a black box: w^(M) is the supernet's current
weights after M SGD steps with α frozen. It is only evaluated at sampled points α + Δα by the
*oracle* (:meth:`ZartsOptimizer.perturbed_loss`), which

* resets a preallocated scratch copy of the weights (and BN buffers) to the main supernet's — no
  module is rebuilt, the main supernet's modules run the scratch tensors through
  ``torch.func.functional_call``;
* trains the scratch weights for M steps with a fresh SGD (lr, momentum, weight decay, split and
  batch size configurable; defaults from the authors' visualisation script, which does this right);
* returns one no-grad validation loss, in train-mode BN, on the step's val batch.

All samples of one α update use the same M inner batches and the same val batch (common random
numbers). The released search script's inner loop steps the *main* optimizer, so the copy never
trains (effectively M = 0); ``legacy_shared_optimizer=true`` reproduces that (see README).

The update is added to α directly (no Adam, no α weight decay), every ``update_every`` (= M)
weight steps after ``warmup_epochs``; the weight step is DARTS' SGD step.

Under torchrun every rank draws the same perturbations (the sampling generator is seeded alike and
checked at each epoch start), the oracle's inner-step gradients and its losses are averaged over the
ranks' shards, so every rank computes the same move and α stays identical everywhere.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch.func import functional_call

from nasfw.components import Optimizer, StrictModel
from nasfw.config import ComponentRef
from nasfw.data import Batch, SearchData
from nasfw.supernet import Supernet
from nasfw_zarts import estimators as est

#: RobustDARTS spaces, for which the authors' ``run_search_rdarts.sh`` uses σ₀ = 0.2 instead of 0.025.
ROBUST_DARTS_SPACES = ("s1", "s2", "s3", "s4")


def _ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy in at least fp32 (logits may be bf16 under autocast)."""
    return F.cross_entropy(logits if logits.dtype == torch.float64 else logits.float(), y)


class ZartsConfig(StrictModel):
    """Options shared by the three ZARTS optimizers (defaults: the authors' DARTS-space scripts)."""

    w_lr: float = Field(default=0.025, gt=0, description="weight learning rate (SGD)")
    w_momentum: float = Field(default=0.9, ge=0, lt=1)
    w_weight_decay: float = Field(default=3e-4, ge=0)
    grad_clip: float | None = Field(default=5.0, gt=0, description="clip weight gradients to this norm")
    lr_schedule: ComponentRef = Field(default_factory=lambda: ComponentRef(name="cosine", params={"min_lr": 0.001}))
    warmup_epochs: int = Field(default=10, ge=0, description="epochs that train only w (no α update)")
    inner_steps: int = Field(default=10, ge=0, description="M: SGD steps on the scratch weights per sample")
    update_every: int | None = Field(default=None, ge=1,
                                     description="weight steps between α updates (default: inner_steps, as in ZARTS)")
    num_samples: int = Field(default=4, ge=1, description="N: sampled α perturbations per update")
    inner_lr: float = Field(default=0.001, ge=0, description="lr of the fresh inner SGD on the scratch weights")
    inner_momentum: float = Field(default=0.0, ge=0, lt=1)
    inner_weight_decay: float = Field(default=3e-4, ge=0)
    inner_grad_clip: float | None = Field(default=None, gt=0)
    inner_split: Literal["train", "val"] = Field(default="val", description="split of the inner batches (code: val)")
    inner_batch_size: int = Field(default=48, ge=1)
    legacy_shared_optimizer: bool = Field(
        default=False, description="reproduce the released search script: inner steps call the main optimizer, "
                                   "so the scratch weights never train")
    seed_offset: int = Field(default=0, ge=0, description="added to the run seed for the sampling generator")
    edge_weighting: ComponentRef | None = Field(default=None, description="edge weighting (default softmax)")


class ZartsOptimizer(Optimizer):
    """Shared machinery: weight steps, the α-update schedule, the scratch oracle, exact resume."""

    Config = ZartsConfig
    config: ZartsConfig
    distributed = True

    def setup(self, supernet: Supernet, data: SearchData, epochs: int, steps_per_epoch: int) -> None:
        super().setup(supernet, data, epochs, steps_per_epoch)
        c = self.config
        self.weights = supernet.weight_parameters()
        self.w_names = [n for n, _ in supernet.named_weight_parameters()]
        self.w_opt = torch.optim.SGD(self.weights, lr=c.w_lr, momentum=c.w_momentum, weight_decay=c.w_weight_decay)
        registry = self.ctx.registry if self.ctx is not None else None
        if registry is not None:
            self.schedule = registry.create("lr_schedule", c.lr_schedule, self.ctx)
        else:
            from nasfw.builtin.schedules import Cosine

            self.schedule = Cosine(Cosine.Config(min_lr=0.001))
        # preallocated scratch weights and buffers (masks stay the main supernet's, so selectors' edits apply)
        masks = {f"mask_{k}" for k in supernet.arch_parameters()}
        with torch.no_grad():
            self.scratch = {n: p.detach().clone().requires_grad_(True) for n, p in zip(self.w_names, self.weights)}
            self.scratch_buffers = {n: b.detach().clone() for n, b in supernet.named_buffers() if n not in masks}
        self._main_buffers = {n: b for n, b in supernet.named_buffers() if n not in masks}
        seed = (self.ctx.seed if self.ctx is not None else 0) + 7_654_321 + c.seed_offset
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self.step_in_epoch = 0
        self.update_alpha = True
        self.tuning_lr: float | None = None
        self.stats: dict[str, float] = {}
        self.updates = 0

    # -- schedule ------------------------------------------------------------------------
    @property
    def lr(self) -> float:
        return self.w_opt.param_groups[0]["lr"]

    @property
    def period(self) -> int:
        c = self.config
        return c.update_every if c.update_every is not None else max(c.inner_steps, 1)

    def epoch_start(self, epoch: int) -> None:
        # the engine calls this again for a resumed, half-done epoch: keep the restored step position then
        if epoch != self.epoch:
            self.step_in_epoch = 0
        self.epoch = epoch
        lr = self.tuning_lr if self.tuning_lr is not None else self.schedule.lr(epoch, self.epochs, self.config.w_lr)
        for g in self.w_opt.param_groups:
            g["lr"] = lr
        if self.dist.enabled:  # same perturbations on every rank needs the same generator (and α)
            self.dist.assert_same({"generator": self.generator.get_state(), "alpha": self.current_alpha()},
                                  "the ZARTS sampling generator and α")

    def configure_tuning(self, lr: float | None, update_alpha: bool) -> None:
        """DARTS-PT fine-tuning: a fresh weight SGD at a constant lr; α updates on or off."""
        c = self.config
        self.tuning_lr = lr if lr is not None else self.lr
        self.w_opt = torch.optim.SGD(self.weights, lr=self.tuning_lr, momentum=c.w_momentum,
                                     weight_decay=c.w_weight_decay)
        self.update_alpha = update_alpha

    def alpha_due(self) -> bool:
        """ZARTS: after the warm-up, an α update at every ``update_every``-th weight step of an epoch."""
        return self.update_alpha and self.epoch >= self.config.warmup_epochs and self.step_in_epoch % self.period == 0

    # -- steps ---------------------------------------------------------------------------
    def step(self, train_batch: Batch, val_batch: Batch) -> dict[str, Any]:
        if self.alpha_due():
            info = self.alpha_update(val_batch)
            self.updates += 1
            for k, v in info.items():
                self.stats[k] = self.stats.get(k, 0.0) + float(v)
            run = getattr(self, "run", None)
            if run is not None:
                run.log({"kind": "zarts", **{k: float(v) for k, v in info.items()}})
        loss, acc = self.weight_step(train_batch)
        self.step_in_epoch += 1
        return {"loss": loss, "acc": acc, "lr": self.lr}

    def weight_step(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        self.w_opt.zero_grad(set_to_none=True)
        logits = self.supernet(x)
        loss = _ce(logits, y)
        loss.backward(inputs=self.weights)
        out = loss.detach(), (logits.argmax(1) == y).float().mean().detach()
        if self.dist.enabled:  # the global batch's gradient (and metrics) on every rank, before clipping
            out = out[0].clone(), out[1]
            self.dist.average_([*(p.grad for p in self.weights), *out], weight=y.numel())
        if self.config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.weights, self.config.grad_clip)
        self.w_opt.step()
        return out

    def alpha_update(self, val_batch: Batch) -> dict[str, float]:
        """Move α once; returns diagnostics (subclasses)."""
        raise NotImplementedError

    def epoch_end(self, epoch: int) -> dict[str, float]:
        out = {"alpha_updates": float(self.updates)}
        if self.updates:
            out.update({f"zarts_{k}": v / self.updates for k, v in self.stats.items()})
        self.stats, self.updates = {}, 0
        return out

    # -- helpers for the subclasses ---------------------------------------------------------
    def current_alpha(self) -> est.Arch:
        return {k: a.detach().cpu().to(torch.float64) for k, a in self.supernet.arch_parameters().items()}

    def arch_masks(self) -> est.Arch:
        return {k: m.detach().cpu() for k, m in self.supernet.masks().items()}

    def apply_move(self, move: est.Arch, scale: float = 1.0) -> float:
        """α ← α + scale·move, directly (no optimizer); returns ‖scale·move‖."""
        with torch.no_grad():
            for k, a in self.supernet.arch_parameters().items():
                a.add_(scale * move[k].to(device=a.device, dtype=a.dtype))
        return abs(scale) * float(est.flat(move).norm())

    def inner_batches(self) -> list[Batch]:
        """M batches for the inner steps, shared by every sample of this update (common random numbers)."""
        c = self.config
        if c.inner_steps == 0:
            return []
        stream = self.data.stream("zarts-inner", c.inner_split, c.inner_batch_size)
        run = getattr(self, "run", None)
        dev = self.weights[0].device
        out = []
        for _ in range(c.inner_steps):
            b = stream.next()
            out.append(run.to_device(b) if run is not None else (b[0].to(dev), b[1].to(dev)))
        return out

    def reset_scratch(self) -> None:
        """Copy the main supernet's weights and BN buffers into the preallocated scratch tensors."""
        with torch.no_grad():
            for n, p in zip(self.w_names, self.weights):
                self.scratch[n].copy_(p)
                self.scratch[n].grad = None
            for n, b in self._main_buffers.items():
                self.scratch_buffers[n].copy_(b)

    def perturbed_loss(self, alpha: est.Arch, inner: list[Batch], val_batch: Batch) -> float:
        """The oracle L(α'): scratch ← w, M inner SGD steps at α' (frozen), then L_val at α' (no grad)."""
        c = self.config
        net = self.supernet
        self.reset_scratch()
        arch = {f"alphas.{k}": alpha[k].to(device=a.device, dtype=a.dtype)
                for k, a in net.arch_parameters().items()}
        params = {**self.scratch, **arch}
        tensors = list(self.scratch.values())
        was = net.training
        net.train()
        try:
            if c.legacy_shared_optimizer:
                inner_opt = self.w_opt  # the released bug: grads land on the scratch, the step is the main's
            else:
                inner_opt = torch.optim.SGD(tensors, lr=c.inner_lr, momentum=c.inner_momentum,
                                            weight_decay=c.inner_weight_decay)
            for x, y in inner:
                inner_opt.zero_grad(set_to_none=True)
                for t in tensors:
                    t.grad = None
                loss = _ce(functional_call(net, (params, self.scratch_buffers), (x,)), y)
                loss.backward(inputs=tensors)
                if self.dist.enabled:
                    self.dist.average_([t.grad for t in tensors], weight=y.numel())
                if c.inner_grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(tensors, c.inner_grad_clip)
                inner_opt.step()
            for t in tensors:
                t.grad = None
            with torch.no_grad():
                x, y = val_batch
                return self._global(_ce(functional_call(net, (params, self.scratch_buffers), (x,)), y), y)
        finally:
            net.train(was)

    def plain_loss(self, val_batch: Batch) -> float:
        """L_val(w, α) with the main weights, no adaptation (no grad)."""
        with torch.no_grad():
            return self._global(_ce(self.supernet(val_batch[0]), val_batch[1]), val_batch[1])

    def _global(self, loss: torch.Tensor, y: torch.Tensor) -> float:
        """A shard's mean loss → the global batch's (the same float on every rank)."""
        if self.dist.enabled:
            loss = loss.detach().clone()
            self.dist.average_([loss], weight=y.numel())
        return float(loss)

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"w_opt": self.w_opt.state_dict(), "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
                "generator": self.generator.get_state(), "update_alpha": self.update_alpha,
                "tuning_lr": self.tuning_lr, "stats": dict(self.stats), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.tuning_lr = state.get("tuning_lr")
        if self.tuning_lr is not None:
            self.configure_tuning(self.tuning_lr, state.get("update_alpha", True))
        self.w_opt.load_state_dict(state["w_opt"])
        self.epoch = int(state["epoch"])
        self.step_in_epoch = int(state["step_in_epoch"])
        self.generator.set_state(state["generator"])
        self.update_alpha = bool(state.get("update_alpha", True))
        self.stats = {k: float(v) for k, v in state.get("stats", {}).items()}
        self.updates = int(state.get("updates", 0))


# =========================================================================== MGS


class MgsConfig(ZartsConfig):
    std: float | None = Field(default=None, gt=0, description="σ₀; default 0.025, or 0.2 on RobustDARTS s1-s4")
    std_decay: Literal["stable", "cosine"] = Field(default="cosine", description="σ schedule after the warm-up")
    tau: float = Field(default=0.01, gt=0, description="temperature τ of the importance weights")
    lamb: float = Field(default=1e-3, ge=0, le=1, description="λ: weight of the zero-mean Gaussian component")
    precedence: Literal["intended", "released"] = Field(
        default="intended", description="q̃'s second term: exp(-‖Δα‖²/(2σ²)) (intended) or exp(-‖Δα‖²σ²/2) (released)")


class ZartsMGS(ZartsOptimizer):
    """ZARTS-MGS: Gaussian samples around −∇_α L_val, weighted by exp(−L/τ)/q̃ (soft best-of-N)."""

    Config = MgsConfig
    config: MgsConfig

    def sigma0(self) -> float:
        if self.config.std is not None:
            return self.config.std
        space = getattr(getattr(self, "run", None), "space", None)
        return 0.2 if getattr(space, "name", "") in ROBUST_DARTS_SPACES else 0.025

    def sigma(self) -> float:
        c = self.config
        return est.sigma_at(self.epoch, self.sigma0(), c.warmup_epochs, self.epochs, c.std_decay)

    def alpha_update(self, val_batch: Batch) -> dict[str, float]:
        c = self.config
        x, y = val_batch
        alphas = self.supernet.arch_parameters()
        loss0 = _ce(self.supernet(x), y)
        grads = torch.autograd.grad(loss0, list(alphas.values()), allow_unused=True, materialize_grads=True)
        if self.dist.enabled:
            loss0 = loss0.detach().clone()
            self.dist.average_([*grads, loss0], weight=y.numel())
        grad = {k: g.detach().cpu().to(torch.float64) for k, g in zip(alphas, grads)}
        inner = self.inner_batches()
        sigma = self.sigma()
        base = float(loss0.detach())
        move, info = est.mgs_step(self.current_alpha(), grad, base, lambda a: self.perturbed_loss(a, inner, val_batch),
                                  self.arch_masks(), sigma, c.tau, c.lamb, c.num_samples, self.generator, c.precedence)
        norm = self.apply_move(move)
        return {**info, "loss0": base, "sigma": sigma, "move_norm": norm}


# =========================================================================== RS


class RsConfig(ZartsConfig):
    rs_delta: float = Field(default=0.1, gt=0, description="δ: smoothing radius of the finite differences")
    rs_lr: float = Field(default=1e-4, gt=0, description="η: α ← α − η ĝ")
    estimator: Literal["antithetic", "forward", "single"] = Field(
        default="antithetic", description="(L⁺−L⁻)u two-point, (L⁺−L_0)u one-sided, or L⁺u")
    directions: Literal["sphere", "gaussian"] = Field(default="sphere",
                                                      description="unit-sphere (φ=d) or Gaussian (φ=1) directions")


class ZartsRS(ZartsOptimizer):
    """ZARTS-RS: a random-direction finite-difference gradient of L(α), then a plain descent step."""

    Config = RsConfig
    config: RsConfig

    def alpha_update(self, val_batch: Batch) -> dict[str, float]:
        c = self.config
        inner = self.inner_batches()

        def oracle(a: est.Arch) -> float:
            return self.perturbed_loss(a, inner, val_batch)

        alpha = self.current_alpha()
        loss0 = oracle(alpha) if c.estimator == "forward" else None
        grad, info = est.rs_gradient(alpha, oracle, self.arch_masks(), c.rs_delta, c.num_samples,
                                     self.generator, c.estimator, c.directions, loss0)
        norm = self.apply_move(grad, -c.rs_lr)
        return {**info, "move_norm": norm}


# =========================================================================== GLD


class GldConfig(ZartsConfig):
    max_radius: float = Field(default=0.13, gt=0, description="R: the largest search radius")
    num_radii: int = Field(default=15, ge=1, description="radii R, R/2, …, R/2^(n−1)")
    baseline: Literal["adapted", "plain"] = Field(
        default="adapted", description="what a move must beat: L(α) through the same M-step oracle (adapted), "
                                       "or L_val(w, α) of the main weights (plain)")


class ZartsGLD(ZartsOptimizer):
    """ZARTS-GLD: GradientLess Descent — try one random move per radius, keep the best that improves."""

    Config = GldConfig
    config: GldConfig

    def alpha_update(self, val_batch: Batch) -> dict[str, float]:
        c = self.config
        inner = self.inner_batches()

        def oracle(a: est.Arch) -> float:
            return self.perturbed_loss(a, inner, val_batch)

        alpha = self.current_alpha()
        loss0 = oracle(alpha) if c.baseline == "adapted" else self.plain_loss(val_batch)
        move, info = est.gld_step(alpha, oracle, self.arch_masks(), est.gld_radii(c.max_radius, c.num_radii),
                                  self.generator, loss0)
        norm = self.apply_move(move)
        return {**info, "move_norm": norm}
