"""ZARTS (Wang et al., NeurIPS 2022): zero-order architecture optimizers for any nasfw space.

The outer objective L(α) = L_val(w^(M)(α), α) is a black box: w^(M) is the supernet's current
weights after M SGD steps with α frozen. It is only evaluated at sampled points α + Δα by the
*oracle* (:meth:`ZartsOptimizer.perturbed_losses`), which, for all the points of one α update at once,

* starts N scratch copies of the weights from the main supernet's (no module is rebuilt: the main
  supernet's modules run the scratch tensors through ``torch.func.functional_call``);
* trains them for M steps with a fresh SGD (lr, momentum, weight decay, clipping, split and batch size
  configurable; defaults from the authors' code) — by default as **one batched computation**
  (``torch.func.vmap`` over the N stacked weight copies and α's, so every op runs once for all samples);
* returns one no-grad validation loss per sample, in train-mode BN, on the step's val batch.

BN normalises with batch statistics throughout (train mode, as in the code) and the oracle leaves every
running statistic untouched, so the N trainings are independent and exact under ``vmap``. All samples of one
α update use the same M inner batches and the same val batch (common random numbers). The released search
script's inner loop steps the *main* optimizer, so the copy never trains (effectively M = 0);
``legacy_shared_optimizer=true`` reproduces that (see README).

The update is added to α directly (no Adam, no α weight decay), every ``update_every`` weight steps after
the warm-up; the weight step is DARTS' SGD step. Between DARTS-PT decisions (``configure_tuning``) the
optimizer runs on its own tuning clock: the search's schedules (lr, σ, warm-up) stay where the search
ended, α updates keep their period, and an update with nothing left to decide (every edge decided) is
skipped.

Under torchrun every rank draws the same perturbations (the sampling generator is seeded alike and
checked at each epoch start), the oracle's inner-step gradients and its losses are averaged over the
ranks' shards, so every rank computes the same move and α stays identical everywhere.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch.func import functional_call

from nasfw.budget import Budget, Span, refuse, resolve
from nasfw.components import Optimizer, StrictModel
from nasfw.config import ComponentRef, RunConfig
from nasfw.data import Batch, SearchData
from nasfw.engine import batch_statistics_only
from nasfw.presets import Recipe
from nasfw.supernet import Supernet
from nasfw_zarts import estimators as est
from nasfw_zarts import presets as ps

#: RobustDARTS spaces, for which the authors' ``run_search_rdarts.sh`` uses σ₀ = 0.2 instead of 0.025.
ROBUST_DARTS_SPACES = ("s1", "s2", "s3", "s4")


def _ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy in at least fp32 (logits may be bf16 under autocast)."""
    return F.cross_entropy(logits if logits.dtype == torch.float64 else logits.float(), y)


class ZartsConfig(StrictModel):
    """Options shared by the three ZARTS optimizers (defaults: the authors' DARTS-space scripts, with the
    schedules as proportions of the run)."""

    w_lr: float = Field(default=0.025, gt=0, description="weight learning rate (SGD)")
    w_momentum: float = Field(default=0.9, ge=0, lt=1)
    w_weight_decay: float = Field(default=3e-4, ge=0)
    grad_clip: float | None = Field(default=5.0, gt=0, description="clip weight gradients to this norm")
    lr_schedule: ComponentRef = Field(default_factory=lambda: ComponentRef(name="cosine", params={"min_lr": 0.001}))
    warmup_epochs: Span = Field(default=0.2, description="weight-only warm-up before the first α update: a count of "
                                                         "epochs, or a fraction of the search (paper: 10 of 50 = 0.2)")
    inner_steps: int = Field(default=2, ge=0, description="M: SGD steps on the scratch weights per sample "
                                                          "(paper: 10, --preset paper; see the README on cost)")
    update_every: Span | None = Field(
        default=10, description="weight steps between α updates: a count of steps or a fraction of the search "
                                "(paper: 10; null: M steps, as ZARTS' iter_w sets both)")
    num_samples: int = Field(default=4, ge=1, description="N: sampled α perturbations per update")
    inner_lr: float = Field(default=0.001, ge=0, description="lr of the fresh inner SGD on the scratch weights")
    inner_momentum: float = Field(default=0.0, ge=0, lt=1)
    inner_weight_decay: float = Field(default=3e-4, ge=0)
    inner_grad_clip: float | None = Field(default=5.0, gt=0, description="clip each scratch step's gradient "
                                                                         "(official train_weight: grad_clip 5)")
    inner_split: Literal["train", "val"] = Field(default="val", description="split of the inner batches (code: val)")
    inner_batch_size: int = Field(default=48, ge=1)
    batched: bool = Field(default=True, description="train the N scratch copies as one vmap-batched computation "
                                                    "(false: one after the other; same results up to fp rounding)")
    samples_per_batch: int | None = Field(default=None, ge=1, description="cap on the samples batched together "
                                                                         "(memory; default: all of an update)")
    legacy_shared_optimizer: bool = Field(
        default=False, description="reproduce the released search script: inner steps call the main optimizer, "
                                   "so the scratch weights never train")
    seed_offset: int = Field(default=0, ge=0, description="added to the run seed for the sampling generator")
    edge_weighting: ComponentRef | None = Field(default=None, description="edge weighting (default softmax)")


class ZartsOptimizer(Optimizer):
    """Shared machinery: weight steps, the α-update schedule (search and tuning clocks), the batched
    scratch oracle, plan/activity, exact resume."""

    Config = ZartsConfig
    config: ZartsConfig
    distributed = True
    paper_recipe: Recipe = ps.MGS_PAPER
    tiny_recipe: Recipe = ps.TINY

    @classmethod
    def preset(cls, name: str, config: RunConfig) -> Recipe | None:
        """``paper``: the authors' search protocol (train_search.py / run_search.sh); ``tiny``: the smallest
        settings at which α still moves."""
        return {"paper": cls.paper_recipe, "tiny": cls.tiny_recipe}.get(name)

    @classmethod
    def preset_names(cls, config: RunConfig) -> list[str]:
        return ["paper", "tiny"]

    # -- schedule (pure functions of the config and the run's budget) -----------------------
    def warmup_steps(self, budget: Budget) -> int:
        return budget.steps_of(self.config.warmup_epochs, unit="epochs")

    def period_of(self, budget: Budget) -> int:
        c = self.config
        if c.update_every is None:
            return max(c.inner_steps, 1)
        return max(resolve(c.update_every, budget.steps, minimum=1), 1) if isinstance(c.update_every, float) \
            else max(int(c.update_every), 1)

    def oracle_calls_per_update(self) -> int:
        """Scratch trainings per α update (subclasses)."""
        raise NotImplementedError

    def extra_passes_per_update(self) -> dict[str, int]:
        """Passes of an update outside the scratch trainings: {"fb": F+B, "f": forwards} (subclasses)."""
        return {"fb": 0, "f": 0}

    def plan(self, budget: Budget) -> dict[str, Any]:
        c = self.config
        warm, period, total = self.warmup_steps(budget), self.period_of(budget), budget.steps
        if warm >= total:
            raise refuse("optimizer.warmup_epochs", f"a warm-up of {warm} weight steps leaves no α update in a "
                                                    f"{total}-step search", "give a fraction of the run (e.g. 0.2) "
                                                    "or a smaller count of epochs, or more --epochs")
        if period > total - warm:
            raise refuse("optimizer.update_every", f"an α update every {period} weight steps is longer than the "
                                                   f"{total - warm} steps after the warm-up, so at most one α "
                                                   f"update", "give a smaller count or fraction, or more --epochs")
        updates = math.ceil((total - warm) / period)
        calls = self.oracle_calls_per_update()
        extra = self.extra_passes_per_update()
        return {"warmup_steps": warm, "update_every": period, "alpha_updates": updates,
                "oracle_calls": updates * calls, "inner_steps": c.inner_steps,
                "scratch_forward_backward": updates * calls * c.inner_steps,
                "forward_backward": total + updates * (calls * c.inner_steps + extra["fb"]),
                "forward": updates * (calls + extra["f"]),
                "batched": c.batched and not c.legacy_shared_optimizer}

    def setup(self, supernet: Supernet, data: SearchData, epochs: int, steps_per_epoch: int) -> None:
        super().setup(supernet, data, epochs, steps_per_epoch)
        c = self.config
        self.budget = Budget(epochs, steps_per_epoch)
        self.weights = supernet.weight_parameters()
        self.w_names = [n for n, _ in supernet.named_weight_parameters()]
        self.w_opt = torch.optim.SGD(self.weights, lr=c.w_lr, momentum=c.w_momentum, weight_decay=c.w_weight_decay)
        registry = self.ctx.registry if self.ctx is not None else None
        if registry is not None:
            self.schedule = registry.create("lr_schedule", c.lr_schedule, self.ctx)
        else:
            from nasfw.builtin.schedules import Cosine

            self.schedule = Cosine(Cosine.Config(min_lr=0.001))
        # preallocated scratch weights of the sequential oracle (masks stay the main supernet's)
        with torch.no_grad():
            self.scratch = {n: p.detach().clone().requires_grad_(True) for n, p in zip(self.w_names, self.weights)}
        seed = (self.ctx.seed if self.ctx is not None else 0) + 7_654_321 + c.seed_offset
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self.search_step = 0  # weight steps of the search so far (the α-update clock of the search)
        self.tune_step = 0  # weight steps of fine-tuning between selection decisions (its own clock)
        self.tuning = False
        self.update_alpha = True
        self.tuning_lr: float | None = None
        self.stats: dict[str, float] = {}
        self.updates = 0  # α updates this epoch (for the epoch record)
        self.counts = {"search": 0, "tuning": 0, "skipped": 0, "moved": 0}
        self._batched_ok = True

    @property
    def lr(self) -> float:
        return self.w_opt.param_groups[0]["lr"]

    @property
    def period(self) -> int:
        return self.period_of(self.budget)

    def epoch_start(self, epoch: int) -> None:
        self.epoch = epoch
        lr = self.tuning_lr if self.tuning else self.schedule.lr(epoch, self.epochs, self.config.w_lr)
        for g in self.w_opt.param_groups:
            g["lr"] = lr
        if self.dist.enabled:  # same perturbations on every rank needs the same generator (and α)
            self.dist.assert_same({"generator": self.generator.get_state(), "alpha": self.current_alpha()},
                                  "the ZARTS sampling generator and α")

    def tune_epoch_start(self, epoch: int) -> None:
        """A DARTS-PT tuning epoch: the search's schedules stay at its last epoch (σ, warm-up done), the lr is
        the constant tuning lr, and α updates follow the tuning clock (every ``update_every`` tuning steps)."""
        self.epoch_start(max(self.epochs - 1, 0))

    def configure_tuning(self, lr: float | None, update_alpha: bool) -> None:
        """DARTS-PT fine-tuning: a fresh weight SGD at a constant lr; α updates on or off."""
        c = self.config
        self.tuning = True
        self.tuning_lr = lr if lr is not None else self.lr
        self.w_opt = torch.optim.SGD(self.weights, lr=self.tuning_lr, momentum=c.w_momentum,
                                     weight_decay=c.w_weight_decay)
        self.update_alpha = update_alpha

    def alpha_due(self) -> bool:
        """Search: after the warm-up, every ``update_every`` weight steps; tuning: every ``update_every``
        tuning steps (the warm-up is over)."""
        if not self.update_alpha:
            return False
        if self.tuning:
            return self.tune_step % self.period == 0
        warm = self.warmup_steps(self.budget)
        return self.search_step >= warm and (self.search_step - warm) % self.period == 0

    # -- steps ---------------------------------------------------------------------------
    def step(self, train_batch: Batch, val_batch: Batch) -> dict[str, Any]:
        if self.alpha_due():
            if not any(bool(m.any()) for m in self.free_masks().values()):
                self.counts["skipped"] += 1  # every edge decided: no α can change the supernet
            else:
                info = self.alpha_update(val_batch)
                self.updates += 1
                self.counts["tuning" if self.tuning else "search"] += 1
                self.counts["moved"] += int(info.get("move_norm", 0.0) > 0)
                for k, v in info.items():
                    self.stats[k] = self.stats.get(k, 0.0) + float(v)
                run = getattr(self, "run", None)
                if run is not None:
                    run.log({"kind": "zarts", "tuning": self.tuning, **{k: float(v) for k, v in info.items()}})
        loss, acc = self.weight_step(train_batch)
        if self.tuning:
            self.tune_step += 1
        else:
            self.search_step += 1
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

    def activity(self) -> dict[str, Any]:
        c = self.counts
        return {"alpha_updates": c["search"] + c["tuning"], "alpha_updates_search": c["search"],
                "alpha_updates_tuning": c["tuning"], "alpha_updates_moved": c["moved"],
                "alpha_updates_skipped_nothing_to_decide": c["skipped"],
                "warmup_steps": self.warmup_steps(self.budget), "update_every": self.period,
                "batched": self.config.batched and self._batched_ok and not self.config.legacy_shared_optimizer}

    # -- helpers for the subclasses ---------------------------------------------------------
    def current_alpha(self) -> est.Arch:
        return {k: a.detach().cpu().to(torch.float64) for k, a in self.supernet.arch_parameters().items()}

    def free_masks(self) -> est.Arch:
        """Where α can move anything: entries of edges with two or more live candidates (decided edges and
        dropped ones are fixed whatever their α)."""
        return est.free_entries({k: m.detach().cpu() for k, m in self.supernet.masks().items()})

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

    def oracle(self, inner: list[Batch], val_batch: Batch) -> est.LossesFn:
        """The batch loss function of this update's estimator (the same inner and val batches for all)."""
        return lambda alphas: self.perturbed_losses(alphas, inner, val_batch)

    def perturbed_losses(self, alphas: list[est.Arch], inner: list[Batch], val_batch: Batch) -> list[float]:
        """The oracle L(α') for every α' in ``alphas``: batched (``vmap``) when possible, else one by one."""
        c = self.config
        if not alphas:
            return []
        if c.legacy_shared_optimizer or not c.batched or not self._batched_ok:
            return [self.perturbed_loss(a, inner, val_batch) for a in alphas]
        chunk = c.samples_per_batch or len(alphas)
        out: list[float] = []
        try:
            for i in range(0, len(alphas), chunk):
                out += self.batched_losses(alphas[i:i + chunk], inner, val_batch)
        except RuntimeError as exc:
            text = str(exc).lower()
            if not any(word in text for word in ("vmap", "batched", "functorch", "randomness")):
                raise
            self._batched_ok = False  # e.g. a space with random ops (S4's noise): exact only one by one
            run = getattr(self, "run", None)
            if run is not None:
                run.progress.line(f"ZARTS: the scratch trainings cannot be batched here ({str(exc).splitlines()[0]}); "
                                  f"running them one after the other")
            return [self.perturbed_loss(a, inner, val_batch) for a in alphas]
        return out

    def _arch_args(self, alpha: est.Arch) -> dict[str, torch.Tensor]:
        return {f"alphas.{k}": alpha[k].to(device=a.device, dtype=a.dtype)
                for k, a in self.supernet.arch_parameters().items()}

    def perturbed_loss(self, alpha: est.Arch, inner: list[Batch], val_batch: Batch) -> float:
        """The oracle for one α': scratch ← w, M inner SGD steps at α' (frozen), then L_val at α' (no grad)."""
        c = self.config
        net = self.supernet
        with torch.no_grad():
            for n, p in zip(self.w_names, self.weights):
                self.scratch[n].copy_(p)
                self.scratch[n].grad = None
        params = {**self.scratch, **self._arch_args(alpha)}
        tensors = list(self.scratch.values())
        was = net.training
        net.train()
        try:
            with batch_statistics_only(net):
                if c.legacy_shared_optimizer:
                    inner_opt = self.w_opt  # the released bug: grads land on the scratch, the step is the main's
                else:
                    inner_opt = torch.optim.SGD(tensors, lr=c.inner_lr, momentum=c.inner_momentum,
                                                weight_decay=c.inner_weight_decay)
                for x, y in inner:
                    inner_opt.zero_grad(set_to_none=True)
                    for t in tensors:
                        t.grad = None
                    loss = _ce(functional_call(net, params, (x,)), y)
                    loss.backward(inputs=tensors)
                    if self.dist.enabled:
                        self.dist.average_([t.grad for t in tensors], weight=y.numel())
                    if c.inner_grad_clip is not None and not c.legacy_shared_optimizer:
                        torch.nn.utils.clip_grad_norm_(tensors, c.inner_grad_clip)
                    inner_opt.step()
                for t in tensors:
                    t.grad = None
                with torch.no_grad():
                    x, y = val_batch
                    return self._global(_ce(functional_call(net, params, (x,)), y), y)
        finally:
            net.train(was)

    def batched_losses(self, alphas: list[est.Arch], inner: list[Batch], val_batch: Batch) -> list[float]:
        """The oracle for N α's as one computation: N stacked weight copies trained together (a ``vmap``-ed
        forward, then one ordinary backward of the summed losses) with the same SGD arithmetic as
        :meth:`perturbed_loss` (weight decay, momentum, per-sample gradient clipping), then N validation losses
        from one vmapped forward."""
        c = self.config
        net = self.supernet
        n = len(alphas)
        names = self.w_names
        with torch.no_grad():
            stacked = {nm: p.detach().unsqueeze(0).repeat(n, *([1] * p.dim())) for nm, p in zip(names, self.weights)}
        per_alpha = [self._arch_args(a) for a in alphas]
        arch = {k: torch.stack([pa[k] for pa in per_alpha]) for k in per_alpha[0]}

        def loss_of(params: dict[str, torch.Tensor], a: dict[str, torch.Tensor], x: torch.Tensor,
                    y: torch.Tensor) -> torch.Tensor:
            return _ce(functional_call(net, {**params, **a}, (x,)), y)

        losses_of = torch.func.vmap(loss_of, in_dims=(0, 0, None, None))

        def per_sample_grads(w: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
            # the vmapped forward, then plain autograd on the physical batched graph: d(Σ_i L_i)/dw_i = dL_i/dw_i
            # since sample i's loss reads only its own weights. Faster than vmap(grad(...)), whose backward goes
            # through the batching rules op by op (plugins/zarts/README.md, "Speed and cost").
            leaves = {nm: t.detach().requires_grad_() for nm, t in w.items()}
            with torch.enable_grad():
                total = losses_of(leaves, arch, x, y).sum()
                grads = torch.autograd.grad(total, [leaves[nm] for nm in names], allow_unused=True,
                                            materialize_grads=True)  # ops off the graph (decided edges)
            return dict(zip(names, grads))
        was = net.training
        net.train()
        try:
            with batch_statistics_only(net):
                momentum: dict[str, torch.Tensor] = {}
                for x, y in inner:
                    g = per_sample_grads(stacked, x, y)
                    if self.dist.enabled:
                        self.dist.average_([g[nm] for nm in names], weight=y.numel())
                    with torch.no_grad():
                        if c.inner_grad_clip is not None:  # clip_grad_norm_ of each sample's own gradient
                            norms = torch.stack([g[nm].reshape(n, -1).norm(dim=1) for nm in names]).norm(dim=0)
                            coef = (c.inner_grad_clip / (norms + 1e-6)).clamp(max=1.0)
                            g = {nm: g[nm] * coef.view(n, *([1] * (g[nm].dim() - 1))) for nm in names}
                        for nm in names:  # torch.optim.SGD (dampening 0, no Nesterov), elementwise
                            d = g[nm]
                            if c.inner_weight_decay:
                                d = d.add(stacked[nm], alpha=c.inner_weight_decay)
                            if c.inner_momentum:
                                if nm in momentum:
                                    d = momentum[nm].mul_(c.inner_momentum).add_(d)
                                else:
                                    d = momentum[nm] = d.clone()
                            stacked[nm].add_(d, alpha=-c.inner_lr)
                x, y = val_batch
                # grad mode on (nothing requires grad, so no graph is built): the supernet then runs its
                # mask-only op table instead of reading the (batched) mixing weights on the host
                with torch.enable_grad():
                    losses = losses_of(stacked, arch, x, y)
        finally:
            net.train(was)
        if self.dist.enabled:
            losses = losses.detach().clone()
            self.dist.average_([losses], weight=val_batch[1].numel())
        return [float(v) for v in losses.detach().cpu()]

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
        return {"w_opt": self.w_opt.state_dict(), "epoch": self.epoch, "search_step": self.search_step,
                "tune_step": self.tune_step, "tuning": self.tuning, "generator": self.generator.get_state(),
                "update_alpha": self.update_alpha, "tuning_lr": self.tuning_lr, "stats": dict(self.stats),
                "updates": self.updates, "counts": dict(self.counts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        if state.get("tuning"):
            self.configure_tuning(state.get("tuning_lr"), state.get("update_alpha", True))
        self.w_opt.load_state_dict(state["w_opt"])
        self.epoch = int(state["epoch"])
        self.search_step = int(state.get("search_step", 0))
        self.tune_step = int(state.get("tune_step", 0))
        self.generator.set_state(state["generator"])
        self.update_alpha = bool(state.get("update_alpha", True))
        self.stats = {k: float(v) for k, v in state.get("stats", {}).items()}
        self.updates = int(state.get("updates", 0))
        self.counts.update({k: int(v) for k, v in state.get("counts", {}).items()})


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

    @classmethod
    def preset(cls, name: str, config: RunConfig) -> Recipe | None:
        if name == "paper" and ps.on_robust_darts(config):
            return ps.MGS_PAPER_RDARTS
        return super().preset(name, config)

    def oracle_calls_per_update(self) -> int:
        return self.config.num_samples

    def extra_passes_per_update(self) -> dict[str, int]:
        return {"fb": 1, "f": 0}  # g and L_0 from one F+B on the val batch

    def sigma0(self) -> float:
        if self.config.std is not None:
            return self.config.std
        space = getattr(getattr(self, "run", None), "space", None)
        return 0.2 if getattr(space, "name", "") in ROBUST_DARTS_SPACES else 0.025

    def sigma(self) -> float:
        """σ of the current epoch; a fine-tuning epoch gets the last search epoch's (the schedule stopped)."""
        c = self.config
        warm_epochs = self.warmup_steps(self.budget) / max(self.steps_per_epoch, 1)
        epoch = self.epochs - 1 if self.tuning else self.epoch
        return est.sigma_at(epoch, self.sigma0(), warm_epochs, self.epochs, c.std_decay)

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
        move, info = est.mgs_step(self.current_alpha(), grad, base, self.oracle(inner, val_batch), self.free_masks(),
                                  sigma, c.tau, c.lamb, c.num_samples, self.generator, c.precedence)
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
    paper_recipe = ps.RS_PAPER

    def oracle_calls_per_update(self) -> int:
        c = self.config
        return {"antithetic": 2 * c.num_samples, "forward": c.num_samples + 1}.get(c.estimator, c.num_samples)

    def alpha_update(self, val_batch: Batch) -> dict[str, float]:
        c = self.config
        grad, info = est.rs_gradient(self.current_alpha(), self.oracle(self.inner_batches(), val_batch),
                                     self.free_masks(), c.rs_delta, c.num_samples, self.generator, c.estimator,
                                     c.directions)
        norm = self.apply_move(grad, -c.rs_lr)
        return {**info, "move_norm": norm}


# =========================================================================== GLD


class GldConfig(ZartsConfig):
    max_radius: float = Field(default=0.13, gt=0, description="R: the largest search radius (rs_maxr)")
    num_radii: int | None = Field(default=None, ge=1, description="radii R, R/2, …, R/2^(n−1) (default: from the "
                                                                  "space, as the official code: DARTS 15, S1/S2 14, "
                                                                  "NB201 13)")
    radius_error: float = Field(default=0.01, gt=0, description="rs_error: the smallest radius is R·r/(2·rows) with "
                                                                "r = rs_error/√entries (sets the default num_radii)")
    baseline: Literal["plain", "adapted"] = Field(
        default="plain", description="what a move must beat: L_val(w, α) of the unadapted supernet (plain, the "
                                     "official code) or L(α) through the same M-step oracle (adapted, one more call)")


class ZartsGLD(ZartsOptimizer):
    """ZARTS-GLD: GradientLess Descent — try one random move per radius, keep the best that improves."""

    Config = GldConfig
    config: GldConfig
    paper_recipe = ps.GLD_PAPER
    tiny_recipe = ps.GLD_TINY

    def radii_count(self, shapes: dict[str, tuple[int, int]] | None = None) -> int:
        """``num_radii``, or the official count for the space's α tables (the widest one)."""
        if self.config.num_radii is not None:
            return self.config.num_radii
        if shapes is None:
            space = getattr(getattr(self, "run", None), "space", None)
            if space is not None:
                shapes = space.arch_shapes()
            else:
                shapes = {k: tuple(a.shape) for k, a in self.supernet.arch_parameters().items()}
        return max(est.gld_num_radii(r, r * k, self.config.radius_error) for r, k in shapes.values())

    def oracle_calls_per_update(self) -> int:
        return self.radii_count() + (1 if self.config.baseline == "adapted" else 0)

    def extra_passes_per_update(self) -> dict[str, int]:
        return {"fb": 0, "f": 1 if self.config.baseline == "plain" else 0}

    def plan(self, budget: Budget) -> dict[str, Any]:
        return {**super().plan(budget), "radii": self.radii_count()}

    def alpha_update(self, val_batch: Batch) -> dict[str, float]:
        c = self.config
        inner = self.inner_batches()
        loss0 = self.plain_loss(val_batch) if c.baseline == "plain" else None
        move, info = est.gld_step(self.current_alpha(), self.oracle(inner, val_batch), self.free_masks(),
                                  est.gld_radii(c.max_radius, self.radii_count()), self.generator, loss0)
        norm = self.apply_move(move)
        return {**info, "move_norm": norm}
