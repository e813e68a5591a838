"""Operational pruning, the ABS-style baseline LISSNAS argues against (Hu et al. 2020, as the LISSNAS
introduction describes it): rank every candidate op by the mean score of the sampled architectures
that use it, and delete the worst ops from every edge. The result is a product space again."""

from __future__ import annotations

import random
from typing import Any

import torch
from pydantic import Field

from nasfw.components import SearchSpace, Shrinker, ShrunkSpace
from nasfw.errors import ConfigError
from nasfw.genotype import Genotype
from nasfw.shrink_cmd import pockets
from nasfw_lissnas.evaluators import make_evaluator
from nasfw_lissnas.shrinker import EvaluatorConfig


class OpPruneConfig(EvaluatorConfig):
    samples: int = Field(default=100, ge=1, description="architectures sampled per round to rank the ops")
    rounds: int = Field(default=2, ge=1, description="pruning rounds")
    prune_per_round: int = Field(default=1, ge=1, description="ops deleted (from every edge) per round")
    min_ops: int = Field(default=1, ge=1, description="never leave an edge with fewer available ops")
    max_members: int = Field(default=20000, ge=1, description="members listed explicitly; a larger (or "
                             "non-enumerable) pruned space is represented by this many unique samples")
    score_members: bool = Field(default=True, description="score every member (for the report's Kendall-tau)")
    seed: int | None = Field(default=None, ge=0, description="RNG seed (default: the run's seed)")


class OpPrune(Shrinker):
    """Global operational pruning: drop the ops whose architectures score worst on average."""

    Config = OpPruneConfig
    config: OpPruneConfig

    def shrink(self, space: SearchSpace, run: Any) -> ShrunkSpace:
        c = self.config
        rng = random.Random(c.seed if c.seed is not None else (self.ctx.seed if self.ctx else 0) * 7919 + 13)
        scorer = make_evaluator(c.evaluator, c.evaluator_params, space, run)
        current = space
        pruned: list[str] = []
        rounds = []
        for r in range(c.rounds):
            scorer.new_iteration(current.sample)
            samples = [current.sample(rng) for _ in range(c.samples)]
            scores = scorer(samples)
            sums: dict[str, list[float]] = {}
            for g, f in zip(samples, scores):
                for op in set(g.ops()):
                    sums.setdefault(op, []).append(f)
            means = {op: sum(v) / len(v) for op, v in sums.items()}
            worst = sorted(means, key=lambda op: means[op])[: c.prune_per_round]
            mask = current.op_table()
            before = {k: v.clone() for k, v in mask.items()}
            for cell, edges in space.decisions().items():
                for row, edge in enumerate(edges):
                    for op in worst:
                        if op in edge.ops:
                            col = edge.ops.index(op)
                            if bool(mask[cell][row, col]) and int(mask[cell][row].sum()) > c.min_ops:
                                mask[cell][row, col] = False
            rounds.append({"round": r, "op_means": {k: round(v, 6) for k, v in sorted(means.items())},
                           "pruned": worst, "mean": sum(scores) / len(scores)})
            if all(torch.equal(mask[k], before[k]) for k in mask):
                break
            pruned += worst
            current = space.restrict(mask)
        members, sampled = self._members(current, rng)
        if not members:
            raise ConfigError("op-prune left an empty space; prune fewer ops (rounds, prune_per_round)")
        info: dict[str, Any] = {
            "method": "op-prune", "evaluator": c.evaluator, "pruned_ops": pruned, "rounds": rounds,
            "size_before": space.size(), "size": len(members), "members_sampled": sampled,
            "pruned_size": current.size(), "evaluations": scorer.evaluations,
        }
        if c.score_members:
            info["member_scores"] = scorer(members)
            info["evaluations"] = scorer.evaluations
        info["pockets"] = len(pockets(space, members)) if len(members) <= 5000 else None
        return ShrunkSpace(members, info)

    def _members(self, sub: SearchSpace, rng: random.Random) -> tuple[list[Genotype], bool]:
        size = sub.size()
        if size is not None and size <= self.config.max_members:
            try:
                return list(sub.enumerate()), False
            except NotImplementedError:
                pass
        seen: dict[Genotype, None] = {}
        for _ in range(self.config.max_members * 4):
            seen[sub.sample(rng)] = None
            if len(seen) >= self.config.max_members:
                break
        return list(seen), True
