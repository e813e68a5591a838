"""Random search with weight sharing (Li & Talwalkar, 2019): the baseline every NAS method must beat.

Each step trains the shared weights on one uniformly sampled architecture (its one-hot edge weights
override α). After the search, ``num_candidates`` distinct sampled architectures are ranked by their
accuracy on ``eval_batches`` validation batches with the shared weights, and the best is written
into α (as a scaled one-hot encoding), so any magnitude-style selector returns exactly it.

Architectures come from ``run.space.sample``: on a shrunk space (``restrict_to``) only members are trained
and ranked, and when there are no more members than candidates every member is ranked.
"""

from __future__ import annotations

import random
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field

from nasfw.budget import Budget
from nasfw.components import Optimizer, StrictModel
from nasfw.config import ComponentRef, RunConfig
from nasfw.data import Batch, SearchData
from nasfw.presets import Recipe
from nasfw.supernet import Supernet
from nasfw_darts.presets import RANDOM_NB201, RANDOM_PAPER, RANDOM_TINY, on_nb201


class RandomConfig(StrictModel):
    w_lr: float = Field(default=0.025, gt=0)
    w_momentum: float = Field(default=0.9, ge=0, lt=1)
    w_weight_decay: float = Field(default=3e-4, ge=0)
    grad_clip: float | None = Field(default=5.0, gt=0)
    lr_schedule: ComponentRef = Field(default_factory=lambda: ComponentRef(name="cosine", params={"min_lr": 0.001}))
    num_candidates: int = Field(default=20, ge=1, description="distinct architectures ranked after the search "
                                "(all members of a smaller shrunk space)")
    eval_batches: int = Field(default=4, ge=1, description="validation batches per candidate")


class RandomSearch(Optimizer):
    """Random search with weight sharing; the best of N random architectures ends up in α."""

    Config = RandomConfig
    config: RandomConfig
    samples_architectures = True
    distributed = True  # every rank samples the same architecture (same RNG); gradients are averaged

    @classmethod
    def preset(cls, name: str, config: RunConfig) -> Recipe | None:
        """``paper``: Li & Talwalkar's DARTS-space protocol, or NAS-Bench-201's RANDOM-NAS on ``nb201``."""
        if name == "paper":
            return RANDOM_NB201 if on_nb201(config) else RANDOM_PAPER
        return {"tiny": RANDOM_TINY}.get(name)

    @classmethod
    def preset_names(cls, config: RunConfig) -> list[str]:
        return ["paper", "tiny"]

    def plan(self, budget: Budget) -> dict[str, Any]:
        c = self.config
        return {"architectures_trained": budget.steps, "candidates": c.num_candidates,
                "candidate_eval_batches": c.num_candidates * c.eval_batches}

    def setup(self, supernet: Supernet, data: SearchData, epochs: int, steps_per_epoch: int) -> None:
        super().setup(supernet, data, epochs, steps_per_epoch)
        c = self.config
        self.weights = supernet.weight_parameters()
        self.w_opt = torch.optim.SGD(self.weights, lr=c.w_lr, momentum=c.w_momentum, weight_decay=c.w_weight_decay)
        self.schedule = self.ctx.registry.create("lr_schedule", c.lr_schedule, self.ctx)
        self.rng = random.Random(self.ctx.seed + 17)
        self.tuning_lr: float | None = None
        self.ranked: dict[str, Any] = {}  # what the final ranking did (activity)
        self.trained: dict[str, int] = {}  # architecture -> training steps it got
        self.ranking: list[tuple[str, float]] = []  # (architecture, shared-weight val accuracy), ranked

    @property
    def space(self) -> Any:
        return self.run.space  # type: ignore[attr-defined]

    def _onehot(self, genotype: Any) -> dict[str, torch.Tensor]:
        dev = next(iter(self.supernet.arch_parameters().values())).device
        return {k: v.to(dev) for k, v in self.space.encode(genotype).items()}

    def epoch_start(self, epoch: int) -> None:
        lr = self.tuning_lr if self.tuning_lr is not None else self.schedule.lr(epoch, self.epochs, self.config.w_lr)
        for g in self.w_opt.param_groups:
            g["lr"] = lr

    def configure_tuning(self, lr: float | None, update_alpha: bool) -> None:
        self.tuning_lr = lr if lr is not None else self.w_opt.param_groups[0]["lr"]
        for g in self.w_opt.param_groups:
            g["lr"] = self.tuning_lr

    def step(self, train_batch: Batch, val_batch: Batch) -> dict[str, Any]:
        x, y = train_batch
        arch = self.space.sample(self.rng)
        key = self.space.format(arch)
        self.trained[key] = self.trained.get(key, 0) + 1
        self.w_opt.zero_grad(set_to_none=True)
        with self.supernet.override_weights(self._onehot(arch)):
            logits = self.supernet(x)
        loss = F.cross_entropy(logits.float(), y)
        loss.backward(inputs=self.weights)
        out = {"loss": loss.detach(), "acc": (logits.argmax(1) == y).float().mean().detach()}
        if self.dist.enabled:
            out["loss"] = out["loss"].clone()
            self.dist.average_([*(p.grad for p in self.weights), out["loss"], out["acc"]], weight=y.numel())
        if self.config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.weights, self.config.grad_clip)
        self.w_opt.step()
        return out

    def candidates(self) -> list[Any]:
        """``num_candidates`` distinct architectures of the space (every member of a smaller shrunk space)."""
        n = self.config.num_candidates
        members = self.space.members
        if members is not None:
            return list(members) if len(members) <= n else self.rng.sample(list(members), n)
        seen: dict[Any, None] = {}
        for _ in range(20 * n):  # a space with fewer distinct architectures than n gives all it has
            seen.setdefault(self.space.sample(self.rng), None)
            if len(seen) == n:
                break
        return list(seen)

    def epoch_end(self, epoch: int) -> dict[str, float]:
        if epoch != self.epochs - 1:
            return {}
        best, best_acc = None, -1.0
        run = self.run  # type: ignore[attr-defined]
        batches = list(run.eval_batches("val", self.config.eval_batches))
        ranking = []
        candidates = self.candidates()
        with run.progress.phase("random search: ranking candidates", total=len(candidates)):
            for arch in candidates:
                with self.supernet.override_weights(self._onehot(arch)):
                    acc = run.evaluate(batches, train_mode=True, keep_bn_stats=True)["acc"]
                ranking.append((self.space.format(arch), acc))
                if acc > best_acc:
                    best, best_acc = arch, acc
                run.progress.advance(f"best={best_acc:.3f}")
        self.ranking = sorted(ranking, key=lambda t: -t[1])
        accs = [a for _, a in ranking]
        with torch.no_grad():
            for k, a in self.supernet.arch_parameters().items():
                a.copy_(10.0 * self._onehot(best)[k])
        self.ranked = {"candidates_evaluated": len(accs), "best_candidate_val_acc": best_acc,
                       "candidate_val_acc_spread": max(accs) - min(accs),
                       "best": self.space.format(best) if best is not None else None}
        return {"best_candidate_val_acc": best_acc}

    def activity(self) -> dict[str, Any]:
        """Architectures trained (distinct, and whether all are members of a shrunk space) and the ranking of
        the candidates by shared-weight validation accuracy (what a Kendall-τ against a benchmark needs)."""
        out: dict[str, Any] = {"architectures_trained": len(self.trained), "steps": sum(self.trained.values()),
                               "candidates_ranked": len(self.ranking)}
        members = self.space.members if getattr(self, "run", None) is not None else None
        if members is not None:
            keys = {self.space.format(g) for g in members}
            out["trained_only_members"] = all(k in keys for k in self.trained)
        out.update(self.ranked)
        out["ranking"] = [{"genotype": g, "val_acc": round(a, 6)} for g, a in self.ranking]
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"w_opt": self.w_opt.state_dict(), "rng": list(self.rng.getstate()[1]), "tuning_lr": self.tuning_lr,
                "rng_version": self.rng.getstate()[0], "rng_gauss": self.rng.getstate()[2], "ranked": dict(self.ranked),
                "trained": dict(self.trained), "ranking": [list(r) for r in self.ranking]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.w_opt.load_state_dict(state["w_opt"])
        self.rng.setstate((state["rng_version"], tuple(state["rng"]), state["rng_gauss"]))
        self.tuning_lr = state.get("tuning_lr")
        self.ranked = dict(state.get("ranked", {}))
        self.trained = dict(state.get("trained", {}))
        self.ranking = [(g, float(a)) for g, a in state.get("ranking", [])]
