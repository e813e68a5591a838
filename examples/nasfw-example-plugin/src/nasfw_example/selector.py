"""``sample-best``: sample architectures from the supernet's mixing weights, keep the most accurate one.

Magnitude selection trusts the argmax of α; weight-sharing accuracy often disagrees with it. This
selector treats the normalised mixing weights of each edge as a categorical distribution
(``p ∝ max(w, 0)^(1/T)`` over the ops the space allows), draws distinct architectures with the
Gumbel-max trick — ``argmax_k(log p_k + G_k)``, ``G_k ~ Gumbel(0, 1)``, is an exact sample of
``Categorical(p)`` — pushed through the space's own ``discretize`` (so topology rules such as
DARTS' top-2 inputs still hold), evaluates each with one-hot mixing weights on a few validation
batches, and returns the most accurate (ties: lower loss, then the earlier draw; the argmax
architecture is drawn first). It is the final-selection step of SETN (Dong & Yang, ICCV 2019:
sample candidates from the learned distribution, keep the best one-shot validation accuracy) as a
component any optimizer and space can use.
"""

from __future__ import annotations

import random
from typing import Any

import torch
from pydantic import Field

from nasfw.components import SearchSpace, Selector, StrictModel
from nasfw.genotype import Genotype
from nasfw.supernet import Supernet


class SampleBestConfig(StrictModel):
    num_samples: int = Field(default=16, ge=1, description="distinct candidates evaluated (the argmax one included)")
    eval_batches: int = Field(default=2, ge=1, description="validation batches per candidate")
    temperature: float = Field(default=1.0, gt=0, description="<1 sharpens, >1 flattens the sampling distribution")
    bn_train: bool = Field(default=True, description="evaluate with batch statistics (the supernet's running "
                                                     "statistics describe the mixture, not one path); restored after")
    max_draws_factor: int = Field(default=10, ge=1, description="give up after num_samples x this many draws "
                                                               "(small spaces have few distinct architectures)")


def sampling_log_probs(weights: torch.Tensor, available: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Row-wise ``log p`` with ``p ∝ max(w, 0)^(1/T)`` on available entries, -inf elsewhere.

    A row whose available weights are all zero (e.g. a fresh raw-α weighting) becomes uniform.
    """
    w = weights.detach().float().cpu().clamp(min=0) * available
    w = w ** (1.0 / temperature)
    total = w.sum(dim=1, keepdim=True)
    uniform = available.float() / available.float().sum(dim=1, keepdim=True).clamp(min=1)
    p = torch.where(total > 0, w / total.clamp(min=torch.finfo(w.dtype).tiny), uniform)
    return torch.where(available & (p > 0), p.log(), torch.full_like(p, float("-inf")))


def gumbel_scores(log_p: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``log p + G`` with i.i.d. standard Gumbel noise; the row argmax is a sample of ``Categorical(p)``."""
    u = torch.rand(log_p.shape, generator=generator).clamp(min=1e-20, max=1 - 1e-7)
    return log_p - torch.log(-torch.log(u))


class SampleBestSelector(Selector):
    """Sample distinct architectures from the mixing weights (Gumbel-max), keep the one-shot-best (SETN-style)."""

    Config = SampleBestConfig
    config: SampleBestConfig

    def candidates(self, supernet: Supernet, space: SearchSpace) -> list[Genotype]:
        """The argmax architecture, then distinct Gumbel-max draws that the space contains."""
        c = self.config
        table = space.op_table()
        weights = supernet.mixing_weights()
        log_p = {k: sampling_log_probs(weights[k], table[k] & supernet.mask(k).cpu(), c.temperature) for k in table}
        seed = (self.ctx.seed if self.ctx is not None else 0) * 1_000_003 + 7
        gen = torch.Generator().manual_seed(seed)
        out: list[Genotype] = []
        seen: set[Genotype] = set()
        draws = [log_p] + [None] * (c.num_samples * c.max_draws_factor)
        for scores in draws:
            if len(out) >= c.num_samples:
                break
            g = space.discretize(scores if scores is not None else {k: gumbel_scores(v, gen) for k, v in log_p.items()})
            if g not in seen and space.contains(g):
                seen.add(g)
                out.append(g)
        if not out:  # a member-restricted space whose members the draws missed
            out.append(space.sample(random.Random(seed)))
        return out

    @torch.no_grad()
    def select(self, supernet: Supernet, space: SearchSpace, run: Any) -> Genotype:
        c = self.config
        cands = self.candidates(supernet, space)
        device = next(iter(supernet.arch_parameters().values())).device
        batches = list(run.eval_batches("val", c.eval_batches))
        buffers = {k: v.clone() for k, v in supernet.named_buffers()}
        best: tuple[float, float, int] | None = None
        results = []
        for i, g in enumerate(cands):
            onehot = {k: v.to(device) for k, v in space.encode(g).items()}
            with supernet.override_weights(onehot):
                res = run.evaluate(batches, train_mode=c.bn_train)
            for name, buf in supernet.named_buffers():  # evaluation in train mode moved BN statistics
                buf.copy_(buffers[name])
            results.append({"genotype": space.format(g), "acc": res["acc"], "loss": res["loss"]})
            key = (res["acc"], -res["loss"], -i)
            if best is None or key > best:
                best = key
        assert best is not None, "candidates() returns at least one architecture"
        chosen = cands[-best[2]]
        run.extra_summary["sample_best"] = {"candidates": len(cands), "best_acc": best[0], "argmax_acc":
                                            results[0]["acc"], "chosen_is_argmax": chosen == cands[0]}
        run.log({"kind": "selection", "selector": "sample-best", "candidates": len(cands), "best_acc": best[0],
                 "argmax_acc": results[0]["acc"]})
        return chosen
