"""First- and second-order DARTS (Liu et al., 2019), Eq. 6-8 and the reference ``architect.py``."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch.func import functional_call

from nasfw.budget import Budget, Span, refuse, resolve
from nasfw.components import Optimizer, StrictModel
from nasfw.config import ComponentRef, RunConfig
from nasfw.data import Batch, SearchData
from nasfw.errors import ConfigError
from nasfw.presets import Recipe
from nasfw.supernet import Supernet
from nasfw.widening import Widening, remap_optimizer
from nasfw_darts.presets import DARTS_NB201, DARTS_PAPER, DARTS_TINY, on_nb201


class DartsConfig(StrictModel):
    w_lr: float = Field(default=0.025, gt=0, description="weight learning rate (SGD)")
    w_momentum: float = Field(default=0.9, ge=0, lt=1)
    w_weight_decay: float = Field(default=3e-4, ge=0)
    grad_clip: float | None = Field(default=5.0, gt=0, description="clip weight gradients to this norm")
    lr_schedule: ComponentRef = Field(default_factory=lambda: ComponentRef(name="cosine", params={"min_lr": 0.001}))
    arch_lr: float = Field(default=3e-4, gt=0, description="α learning rate (Adam)")
    arch_betas: tuple[float, float] = (0.5, 0.999)
    arch_weight_decay: float = Field(default=1e-3, ge=0)
    unrolled: bool = Field(default=False, description="second-order (unrolled) architecture gradient")
    fd_r: float = Field(default=1e-2, gt=0, description="finite-difference ε = fd_r / ‖v‖")
    fd_updates_bn: bool = Field(default=True, description=(
        "the two finite-difference passes of the 2nd-order step update the supernet's BN running statistics, "
        "as the reference architect.py does (they run on the real model there: running statistics move 4 "
        "times per step); false runs them on a copy (2 moves per step)"))
    warmup_epochs: Span = Field(default=0, description="epochs that train only w (α frozen): a count, or a fraction "
                                                       "of the search (0.2 = the first fifth); DARTS: none")
    edge_weighting: ComponentRef | None = Field(default=None, description="edge weighting (default softmax)")


def _ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy in at least fp32 (logits may be bf16 under autocast; fp64 stays fp64)."""
    return F.cross_entropy(logits if logits.dtype == torch.float64 else logits.float(), y)


class DartsOptimizer(Optimizer):
    """DARTS: α by Adam on the validation loss, w by SGD on the training loss, alternating every step.

    Under torchrun every gradient (w, α, and the second-order terms) is averaged over the ranks' shards
    before it is used, so all ranks take the step of the whole global batch.
    """

    Config = DartsConfig
    config: DartsConfig
    distributed = True
    #: whether each step updates α before w (DARTS) or after (GDAS' order)
    alpha_first: ClassVar[bool] = True

    @classmethod
    def preset(cls, name: str, config: RunConfig) -> Recipe | None:
        """``paper``: DARTS' own CIFAR-10 protocol, or NAS-Bench-201's on ``nb201``; ``tiny``: no warm-up."""
        if name == "paper":
            return DARTS_NB201 if on_nb201(config) else DARTS_PAPER
        return {"tiny": DARTS_TINY}.get(name)

    @classmethod
    def preset_names(cls, config: RunConfig) -> list[str]:
        return ["paper", "tiny"]

    def warmup(self, epochs: int) -> int:
        """The warm-up in epochs of a search of ``epochs`` epochs."""
        return resolve(self.config.warmup_epochs, epochs)

    def checked_warmup(self, budget: Budget) -> int:
        """The warm-up in epochs of a search of ``budget``; refused (one line) when it leaves no α update."""
        warm = self.warmup(budget.epochs)
        if warm >= budget.epochs:
            raise refuse("optimizer.warmup_epochs", f"a warm-up of {warm} epochs leaves no α update in a "
                         f"{budget.epochs}-epoch search", "give a fraction of the run (e.g. 0.2) or a smaller count, "
                         "or more --epochs")
        return warm

    def seeded_generator(self, salt: int) -> torch.Generator:
        """``self.gen``: a generator on α's device, seeded from the run's seed and a per-method ``salt``, for
        sampling methods; its state goes into this optimizer's checkpoints (``state_dict``)."""
        device = next(iter(self.supernet.arch_parameters().values())).device
        seed = (self.ctx.seed if self.ctx is not None else 0) * 1_000_003 + salt
        self.gen = torch.Generator(device=device).manual_seed(seed)
        return self.gen

    def plan(self, budget: Budget) -> dict[str, Any]:
        warm = self.checked_warmup(budget)
        updates = (budget.epochs - warm) * budget.steps_per_epoch
        per_update = 4 if self.config.unrolled else 1  # F+B passes: val (1st order); +virtual step, w± (2nd)
        out = {"warmup_epochs": warm, "alpha_updates": updates, "forward_backward": updates * per_update + budget.steps}
        if self.ctx is not None:
            schedule = self.ctx.registry.create("lr_schedule", self.config.lr_schedule, self.ctx)
            try:
                out.update(schedule.plan(budget.epochs))
            except ConfigError as exc:
                raise ConfigError(f"optimizer.lr_schedule.params.{exc}") from None
        return out

    def activity(self) -> dict[str, Any]:
        return {"alpha_updates": self.alpha_updates, "warmup_epochs": self.warmup(self.epochs)}

    def setup(self, supernet: Supernet, data: SearchData, epochs: int, steps_per_epoch: int) -> None:
        super().setup(supernet, data, epochs, steps_per_epoch)
        c = self.config
        self.weights = supernet.weight_parameters()
        self.alphas = list(supernet.arch_parameters().values())
        self.w_opt = self.weight_optimizer(c.w_lr)
        self.a_opt = torch.optim.Adam(self.alphas, lr=c.arch_lr, betas=c.arch_betas, weight_decay=c.arch_weight_decay)
        registry = self.ctx.registry if self.ctx is not None else None
        if registry is not None:
            self.schedule = registry.create("lr_schedule", c.lr_schedule, self.ctx)
        else:
            from nasfw.builtin.schedules import Cosine

            self.schedule = Cosine(Cosine.Config(min_lr=0.001))
        self.epoch = 0
        self.update_alpha = True
        self.tuning_lr: float | None = None
        self.alpha_updates = 0

    # -- schedule ------------------------------------------------------------------------
    @property
    def lr(self) -> float:
        return self.w_opt.param_groups[0]["lr"]

    def epoch_start(self, epoch: int) -> None:
        self.epoch = epoch
        lr = self.tuning_lr if self.tuning_lr is not None else self.schedule.lr(epoch, self.epochs, self.config.w_lr)
        for g in self.w_opt.param_groups:
            g["lr"] = lr

    def configure_tuning(self, lr: float | None, update_alpha: bool) -> None:
        self.tuning_lr = lr if lr is not None else self.lr
        self.w_opt = self.weight_optimizer(self.tuning_lr)
        self.update_alpha = update_alpha

    def follow_weights(self, mapping: Widening | None = None) -> None:
        """Point the weight step and its optimizer at the supernet's parameters after the supernet replaced some
        (partial channels widened mid-search, or rebuilt wider by a checkpoint): with ``mapping`` the optimizer's
        state is widened along (:func:`nasfw.widening.remap_optimizer`), without it only its parameter list moves
        (positionally, before a ``load_state_dict`` brings the state)."""
        if mapping:
            remap_optimizer(self.w_opt, mapping)
        current = self.supernet.weight_parameters()
        if [id(p) for p in current] != [id(p) for p in self.weights]:
            self.weights = current
            if not mapping:
                if len(self.w_opt.param_groups) != 1:
                    raise RuntimeError("the weight optimizer has several parameter groups: pass the mapping")
                self.w_opt.param_groups[0]["params"] = list(current)
                self.w_opt.state.clear()

    def weight_optimizer(self, lr: float) -> torch.optim.Optimizer:
        """The optimizer of the supernet's weights (SGD with momentum), for the search and for tuning."""
        c = self.config
        return torch.optim.SGD(self.weights, lr=lr, momentum=c.w_momentum, weight_decay=c.w_weight_decay)

    # -- extension points for methods built on DARTS' alternation ----------------------------
    def forward_weights(self, phase: str, batch: Batch) -> dict[str, torch.Tensor] | None:
        """The mixing coefficients of the forward pass of ``phase`` ("weight" or "alpha") on ``batch``, or None
        for the supernet's own (its edge weighting of α). Methods that sample or perturb the architecture
        (GDAS, DrNAS, SDARTS) return them here; they may carry gradients to α and must be zero where masked."""
        return None

    def op_alphas(self) -> list[tuple[str, torch.Tensor]]:
        """The (rows, ops) α table of every cell type (not PC-DARTS' per-edge β, which the supernet applies itself)."""
        return [(k, self.supernet.alphas[k]) for k in self.supernet.cell_types]

    def alpha_regularizer(self) -> torch.Tensor | None:
        """A term added to the first-order α objective (DrNAS' KL to its anchor), or None."""
        return None

    def logits(self, phase: str, batch: Batch) -> torch.Tensor:
        """The supernet's logits on ``batch`` with :meth:`forward_weights` of ``phase`` (if any)."""
        weights = self.forward_weights(phase, batch)
        ctx = nullcontext() if weights is None else self.supernet.override_weights(weights)
        with ctx:
            return self.supernet(batch[0])

    def _alpha_active(self) -> bool:
        return self.update_alpha and self.epoch >= self.warmup(self.epochs)

    # -- steps ---------------------------------------------------------------------------
    def step(self, train_batch: Batch, val_batch: Batch) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if not self.alpha_first:
            loss, acc = self.weight_step(train_batch)
        if self._alpha_active():
            grads, val_loss = (self.unrolled_alpha_grad(train_batch, val_batch) if self.config.unrolled
                               else self.first_order_alpha_grad(val_batch))
            self.a_opt.zero_grad(set_to_none=True)
            for a, g in zip(self.alphas, grads):
                a.grad = g
            self.a_opt.step()
            self.alpha_updates += 1
            out["val_loss_step"] = val_loss.detach()
        if self.alpha_first:
            loss, acc = self.weight_step(train_batch)
        out.update({"loss": loss, "acc": acc, "lr": self.lr})
        return out

    def weight_step(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        y = batch[1]
        self.w_opt.zero_grad(set_to_none=True)
        logits = self.logits("weight", batch)
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

    def first_order_alpha_grad(self, val_batch: Batch) -> tuple[list[torch.Tensor], torch.Tensor]:
        """∇_α L_val(w, α)."""
        y = val_batch[1]
        loss = _ce(self.logits("alpha", val_batch), y)
        grads = list(torch.autograd.grad(loss, self.alphas, allow_unused=True, materialize_grads=True))
        if self.dist.enabled:
            loss = loss.detach().clone()
            self.dist.average_([*grads, loss], weight=y.numel())
        reg = self.alpha_regularizer()
        if reg is not None:  # the same on every rank (α is): added after the average
            extra = torch.autograd.grad(reg, self.alphas, allow_unused=True, materialize_grads=True)
            grads = [g + e for g, e in zip(grads, extra)]
            loss = loss.detach() + reg.detach()
        return grads, loss

    def unrolled_alpha_grad(self, train_batch: Batch, val_batch: Batch) -> tuple[list[torch.Tensor], torch.Tensor]:
        """∇_α L_val(w', α) − ξ (∇_α L_tr(w⁺) − ∇_α L_tr(w⁻)) / 2ε, with w' = w − ξ(∇_w L_tr + μm + λw)."""
        c = self.config
        net = self.supernet
        xi = self.lr
        names = [n for n, _ in net.named_weight_parameters()]
        arch_names = [f"alphas.{k}" for k in net.arch_parameters()]
        # L_val(w') runs on a copy of the BN buffers, as the reference runs it on a fresh model loaded from the
        # state dict; the reference's finite-difference passes run on the real model (``fd_updates_bn``)
        buffers = {n: b.clone() for n, b in net.named_buffers()}
        x_tr, y_tr = train_batch
        # 1. virtual step
        loss_tr = _ce(net(x_tr), y_tr)
        g_w = torch.autograd.grad(loss_tr, self.weights, allow_unused=True, materialize_grads=True)
        self.dist.average_(g_w, weight=y_tr.numel())  # w' must be the same on every rank
        w_prime = []
        with torch.no_grad():
            for p, g in zip(self.weights, g_w):
                buf = self.w_opt.state.get(p, {}).get("momentum_buffer")
                moment = c.w_momentum * buf if buf is not None else torch.zeros_like(p)
                w_prime.append(p - xi * (moment + g + c.w_weight_decay * p))
        w_prime = [w.requires_grad_(True) for w in w_prime]
        # 2. L_val at w'
        x_val, y_val = val_batch
        params = dict(zip(names, w_prime))
        params.update(dict(zip(arch_names, self.alphas)))
        loss_val = _ce(functional_call(net, (params, buffers), (x_val,)), y_val)
        grads = torch.autograd.grad(loss_val, [*self.alphas, *w_prime], allow_unused=True, materialize_grads=True)
        d_alpha, v = list(grads[: len(self.alphas)]), grads[len(self.alphas):]
        if self.dist.enabled:  # the global ∇L_val, so ε and w ± εv agree across ranks
            loss_val = loss_val.detach().clone()
            self.dist.average_([*grads, loss_val], weight=y_val.numel())
        # 3. finite-difference Hessian-vector product at w ± εv
        eps = c.fd_r / torch.sqrt(sum((g.detach() ** 2).sum() for g in v))
        fd_buffers = None if c.fd_updates_bn else buffers
        hvp = self._alpha_grad_at(v, eps, train_batch, fd_buffers, names, arch_names, +1)
        hvn = self._alpha_grad_at(v, eps, train_batch, fd_buffers, names, arch_names, -1)
        self.dist.average_([*hvp, *hvn], weight=x_tr.shape[0])
        out = [da - xi * (p - n) / (2 * eps) for da, p, n in zip(d_alpha, hvp, hvn)]
        return out, loss_val.detach()

    def _alpha_grad_at(self, v: tuple[torch.Tensor, ...], eps: torch.Tensor, batch: Batch,
                       buffers: dict[str, torch.Tensor] | None, names: list[str], arch_names: list[str],
                       sign: int) -> tuple[torch.Tensor, ...]:
        """∇_α L_tr(w + sign·ε·v, α); BN updates the supernet's own running statistics unless ``buffers``."""
        with torch.no_grad():
            shifted = [p + sign * eps * vi for p, vi in zip(self.weights, v)]
        params = dict(zip(names, shifted))
        params.update(dict(zip(arch_names, self.alphas)))
        x, y = batch
        state = params if buffers is None else (params, dict(buffers))
        loss = _ce(functional_call(self.supernet, state, (x,)), y)
        return torch.autograd.grad(loss, self.alphas, allow_unused=True, materialize_grads=True)

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        out = {"w_opt": self.w_opt.state_dict(), "a_opt": self.a_opt.state_dict(), "epoch": self.epoch,
               "update_alpha": self.update_alpha, "tuning_lr": self.tuning_lr, "alpha_updates": self.alpha_updates}
        if getattr(self, "gen", None) is not None:
            out["gen"] = self.gen.get_state()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.tuning_lr = state.get("tuning_lr")
        self.follow_weights()  # the supernet's load may have rebuilt widened ops
        if self.tuning_lr is not None:
            self.configure_tuning(self.tuning_lr, state.get("update_alpha", True))
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.epoch = state["epoch"]
        self.update_alpha = state.get("update_alpha", True)
        self.alpha_updates = state.get("alpha_updates", 0)
        if getattr(self, "gen", None) is not None and "gen" in state:
            self.gen.set_state(state["gen"])
