"""First- and second-order DARTS (Liu et al., 2019), Eq. 6-8 and the reference ``architect.py``."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch.func import functional_call

from nasfw.components import Optimizer, StrictModel
from nasfw.config import ComponentRef
from nasfw.data import Batch, SearchData
from nasfw.supernet import Supernet


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
    warmup_epochs: int = Field(default=0, ge=0, description="epochs that train only w (α frozen)")
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

    def setup(self, supernet: Supernet, data: SearchData, epochs: int, steps_per_epoch: int) -> None:
        super().setup(supernet, data, epochs, steps_per_epoch)
        c = self.config
        self.weights = supernet.weight_parameters()
        self.alphas = list(supernet.arch_parameters().values())
        self.w_opt = torch.optim.SGD(self.weights, lr=c.w_lr, momentum=c.w_momentum, weight_decay=c.w_weight_decay)
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
        c = self.config
        self.tuning_lr = lr if lr is not None else self.lr
        self.w_opt = torch.optim.SGD(self.weights, lr=self.tuning_lr, momentum=c.w_momentum,
                                     weight_decay=c.w_weight_decay)
        self.update_alpha = update_alpha

    def _alpha_active(self) -> bool:
        return self.update_alpha and self.epoch >= self.config.warmup_epochs

    # -- steps ---------------------------------------------------------------------------
    def step(self, train_batch: Batch, val_batch: Batch) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self._alpha_active():
            grads, val_loss = (self.unrolled_alpha_grad(train_batch, val_batch) if self.config.unrolled
                               else self.first_order_alpha_grad(val_batch))
            self.a_opt.zero_grad(set_to_none=True)
            for a, g in zip(self.alphas, grads):
                a.grad = g
            self.a_opt.step()
            out["val_loss_step"] = val_loss.detach()
        loss, acc = self.weight_step(train_batch)
        out.update({"loss": loss, "acc": acc, "lr": self.lr})
        return out

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

    def first_order_alpha_grad(self, val_batch: Batch) -> tuple[list[torch.Tensor], torch.Tensor]:
        """∇_α L_val(w, α)."""
        x, y = val_batch
        loss = _ce(self.supernet(x), y)
        grads = list(torch.autograd.grad(loss, self.alphas, allow_unused=True, materialize_grads=True))
        if self.dist.enabled:
            loss = loss.detach().clone()
            self.dist.average_([*grads, loss], weight=y.numel())
        return grads, loss

    def unrolled_alpha_grad(self, train_batch: Batch, val_batch: Batch) -> tuple[list[torch.Tensor], torch.Tensor]:
        """∇_α L_val(w', α) − ξ (∇_α L_tr(w⁺) − ∇_α L_tr(w⁻)) / 2ε, with w' = w − ξ(∇_w L_tr + μm + λw)."""
        c = self.config
        net = self.supernet
        xi = self.lr
        names = [n for n, _ in net.named_weight_parameters()]
        arch_names = [f"alphas.{k}" for k in net.arch_parameters()]
        buffers = {n: b.clone() for n, b in net.named_buffers()}  # the virtual pass must not touch BN stats
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
        hvp = self._alpha_grad_at(v, eps, train_batch, buffers, names, arch_names, +1)
        hvn = self._alpha_grad_at(v, eps, train_batch, buffers, names, arch_names, -1)
        self.dist.average_([*hvp, *hvn], weight=x_tr.shape[0])
        out = [da - xi * (p - n) / (2 * eps) for da, p, n in zip(d_alpha, hvp, hvn)]
        return out, loss_val.detach()

    def _alpha_grad_at(self, v: tuple[torch.Tensor, ...], eps: torch.Tensor, batch: Batch,
                       buffers: dict[str, torch.Tensor], names: list[str], arch_names: list[str],
                       sign: int) -> tuple[torch.Tensor, ...]:
        with torch.no_grad():
            shifted = [p + sign * eps * vi for p, vi in zip(self.weights, v)]
        params = dict(zip(names, shifted))
        params.update(dict(zip(arch_names, self.alphas)))
        x, y = batch
        loss = _ce(functional_call(self.supernet, (params, dict(buffers)), (x,)), y)
        return torch.autograd.grad(loss, self.alphas, allow_unused=True, materialize_grads=True)

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"w_opt": self.w_opt.state_dict(), "a_opt": self.a_opt.state_dict(), "epoch": self.epoch,
                "update_alpha": self.update_alpha, "tuning_lr": self.tuning_lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.tuning_lr = state.get("tuning_lr")
        if self.tuning_lr is not None:
            self.configure_tuning(self.tuning_lr, state.get("update_alpha", True))
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.epoch = state["epoch"]
        self.update_alpha = state.get("update_alpha", True)
