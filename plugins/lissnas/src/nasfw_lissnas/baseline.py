"""Baselines for LISSNAS.

* ``op-prune``: operational pruning, the ABS-style baseline LISSNAS argues against (Hu et al. 2020, as the
  LISSNAS introduction describes it): rank every candidate op by the mean score of the sampled
  architectures that use it, and delete the worst ops from every edge (``scope: global``; ``scope: edge``
  ranks and deletes (edge, op) pairs instead). The result is a product space again.
* ``random-sample``: sample architectures uniformly, score them, keep the best ``target_size`` (at equal
  evaluations, the baseline any shrinker must beat); with ``rank: false`` a uniform random subset.
"""

from __future__ import annotations

import random
from typing import Any, Literal

import torch
from pydantic import Field

from nasfw.budget import Span, refuse
from nasfw.components import SearchSpace, Shrinker, ShrunkSpace
from nasfw.errors import ConfigError
from nasfw.genotype import Genotype
from nasfw.runlog import progress_of
from nasfw.shrinkage import SCORES_ARE_TRUTH, pockets
from nasfw_lissnas.evaluators import EVALUATORS, make_evaluator
from nasfw_lissnas.presets import OP_PRUNE_PRESETS
from nasfw_lissnas.shrinker import EvaluatorConfig, TargetConfig


def _rng(shrinker: Shrinker, seed: int | None, salt: int) -> random.Random:
    return random.Random(seed if seed is not None else (shrinker.ctx.seed if shrinker.ctx else 0) * 7919 + salt)


class OpPruneConfig(EvaluatorConfig):
    samples: int = Field(default=100, ge=1, description="architectures sampled per round to rank the ops")
    rounds: int = Field(default=2, ge=1, description="pruning rounds (at most, with target_size)")
    prune_per_round: int = Field(default=1, ge=1, description="ops (or (edge, op) pairs) deleted per round")
    scope: Literal["global", "edge"] = Field(default="global", description="global: delete an op from every edge "
                                             "(the baseline the paper describes); edge: delete (edge, op) pairs")
    target_size: Span | None = Field(default=None, description="stop pruning once the space has at most this many "
                                     "members (a count or a fraction of the space); None: run all rounds")
    min_ops: int = Field(default=1, ge=1, description="never leave an edge with fewer available ops")
    max_members: int = Field(default=20000, ge=1, description="members listed explicitly; a larger (or "
                             "non-enumerable) pruned space is represented by this many unique samples")
    score_members: bool = Field(default=False, description="also score every member (for the report's "
                                "Kendall-tau; costs one evaluation per member)")
    seed: int | None = Field(default=None, ge=0, description="RNG seed (default: the run's seed)")


class OpPrune(Shrinker):
    """Operational pruning: drop the ops whose architectures score worst on average."""

    Config = OpPruneConfig
    config: OpPruneConfig
    presets = OP_PRUNE_PRESETS

    def _target(self, space: SearchSpace) -> int | None:
        t = self.config.target_size
        if t is None:
            return None
        size = space.size()
        if isinstance(t, float):
            if size is None:
                raise refuse("shrinker.target_size", f"a fraction of space '{space.name}' is unknown (its size is "
                             "not known)", "give a member count")
            return max(1, round(t * size))
        return int(t)

    def plan(self, space: SearchSpace) -> dict[str, Any]:
        c = self.config
        table = space.op_table()
        prunable = sum(max(0, int(row.sum()) - c.min_ops) for t in table.values() for row in t)
        if prunable == 0:
            raise refuse("shrinker.min_ops", f"every edge of '{space.name}' already has at most {c.min_ops} op(s): "
                         "there is nothing to prune", "lower min_ops or use another shrinker")
        target, size = self._target(space), space.size()
        if target is not None and size is not None and target >= size:
            raise refuse("shrinker.target_size", f"the target ({target}) is not smaller than the space ({size})",
                          "lower target_size")
        out: dict[str, Any] = {"rounds": f"<= {c.rounds}" if target is not None else c.rounds,
                               "evaluations": f"<= {c.samples * c.rounds}" + (" + members" if c.score_members else ""),
                               "scope": c.scope, "evaluator": c.evaluator}
        if target is not None:
            out["target_members"] = target
        if EVALUATORS[c.evaluator].reads_truth:
            out["oracle"] = "reads the benchmark (upper bound)"
        return out

    def shrink(self, space: SearchSpace, run: Any) -> ShrunkSpace:
        with progress_of(run).phase("op-prune rounds", total=self.config.rounds):
            return self._shrink(space, run)

    def _shrink(self, space: SearchSpace, run: Any) -> ShrunkSpace:
        c = self.config
        self.plan(space)
        target = self._target(space)
        rng = _rng(self, c.seed, 13)
        scorer = make_evaluator(c.evaluator, c.evaluator_params, space, run)
        current = space
        pruned: list[str] = []
        rounds = []
        for r in range(c.rounds):
            if target is not None and (current.size() or 0) <= target:
                break
            scorer.new_iteration(current.sample)
            samples = [current.sample(rng) for _ in range(c.samples)]
            scores = scorer(samples)
            mask = current.op_table()
            before = {k: v.clone() for k, v in mask.items()}
            if c.scope == "global":
                means = _means(samples, scores, lambda g: set(g.ops()))
                worst = sorted(means, key=lambda op: means[op])[: c.prune_per_round]
                for cell, edges in space.decisions().items():
                    for row, edge in enumerate(edges):
                        for op in worst:
                            if op in edge.ops:
                                col = edge.ops.index(op)
                                if bool(mask[cell][row, col]) and int(mask[cell][row].sum()) > c.min_ops:
                                    mask[cell][row, col] = False
                labels = {op: op for op in means}
            else:
                means = _means(samples, scores, lambda g: _edge_ops(space, g))
                order = sorted(means, key=lambda key: means[key])
                worst = []
                for key in order:
                    cell, row, col = key
                    if bool(mask[cell][row, col]) and int(mask[cell][row].sum()) > c.min_ops:
                        mask[cell][row, col] = False
                        worst.append(key)
                        if len(worst) == c.prune_per_round:
                            break
                labels = {k: f"{k[0]}[{k[1]}]:{space.decisions()[k[0]][k[1]].ops[k[2]]}" for k in means}
            op_means = {labels[k]: round(v, 6) for k, v in sorted(means.items(), key=lambda t: labels[t[0]])}
            rounds.append({"round": r, "op_means": op_means, "pruned": [labels[k] for k in worst],
                           "mean": sum(scores) / len(scores)})
            progress_of(run).advance("pruned " + ",".join(labels[k] for k in worst))
            if all(torch.equal(mask[k], before[k]) for k in mask):
                break
            pruned += [labels[k] for k in worst]
            current = space.restrict(mask)
        members, sampled = self._members(current, rng)
        if not members:
            raise ConfigError("op-prune left an empty space; prune fewer ops (rounds, prune_per_round)")
        info: dict[str, Any] = {
            "method": "op-prune", "evaluator": c.evaluator, SCORES_ARE_TRUTH: scorer.reads_truth, "scope": c.scope,
            "pruned_ops": pruned, "rounds": rounds, "size_before": space.size(), "size": len(members),
            "members_sampled": sampled, "pruned_size": current.size(), "evaluations": scorer.evaluations,
        }
        if target is not None:
            info["target_size"] = target
        if c.score_members:
            scorer.new_iteration(current.sample)
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


def _means(samples: list[Genotype], scores: list[float], keys: Any) -> dict[Any, float]:
    sums: dict[Any, list[float]] = {}
    for g, f in zip(samples, scores):
        for k in sorted(keys(g)):  # sorted: a set's order follows PYTHONHASHSEED, and ties keep insertion order
            sums.setdefault(k, []).append(f)
    return {k: sum(v) / len(v) for k, v in sums.items()}


def _edge_ops(space: SearchSpace, g: Genotype) -> set[tuple[str, int, int]]:
    """The (cell, row, column) entries a genotype uses."""
    return {(cell, int(r), int(k)) for cell, t in space.encode(g).items() for r, k in t.nonzero().tolist()}


class RandomSampleConfig(EvaluatorConfig, TargetConfig):
    samples: int = Field(default=1000, ge=1, description="architectures drawn uniformly (distinct) and scored")
    rank: bool = Field(default=True, description="keep the best-scored target_size of them; false: a uniform "
                       "random subset of target_size (no evaluations)")
    seed: int | None = Field(default=None, ge=0, description="RNG seed (default: the run's seed)")


class RandomSample(Shrinker):
    """Uniform samples, scored by the evaluator; the best ``target_size`` are the shrunk space."""

    Config = RandomSampleConfig
    config: RandomSampleConfig

    def plan(self, space: SearchSpace) -> dict[str, Any]:
        c = self.config
        size, target = space.size(), c.resolve_target(space)
        if size is not None and target >= size:
            raise refuse("shrinker.target_size", f"the target ({target}) is not smaller than the space ({size})",
                         "lower target_size")
        if c.rank and c.samples < target:
            raise refuse("shrinker.samples", f"{c.samples} samples cannot fill a target of {target}",
                         f"raise samples to at least {target} or lower target_size")
        return {"evaluations": c.samples if c.rank else 0, "target_members": target,
                "evaluator": c.evaluator if c.rank else "none"}

    def shrink(self, space: SearchSpace, run: Any) -> ShrunkSpace:
        c = self.config
        self.plan(space)
        target = c.resolve_target(space)
        rng = _rng(self, c.seed, 17)
        want = c.samples if c.rank else target
        size = space.size()
        if size is not None:
            want = min(want, size)
        seen: dict[Genotype, None] = {}
        for _ in range(want * 20):
            seen.setdefault(space.sample(rng), None)
            if len(seen) >= want:
                break
        drawn = list(seen)
        info: dict[str, Any] = {"method": "random-sample", "rank": c.rank, "drawn": len(drawn),
                                "size_before": space.size()}
        if not c.rank:
            kept = drawn[:target]
            return ShrunkSpace(kept, {**info, "evaluator": None, "evaluations": 0, "size": len(kept),
                                      "target_size": target})
        scorer = make_evaluator(c.evaluator, c.evaluator_params, space, run)
        scorer.new_iteration(space.sample)
        scores = scorer(drawn)
        order = sorted(range(len(drawn)), key=lambda i: -scores[i])[:target]
        keep = sorted(order)
        return ShrunkSpace([drawn[i] for i in keep], {
            **info, "evaluator": c.evaluator, SCORES_ARE_TRUTH: scorer.reads_truth, "evaluations": scorer.evaluations,
            "size": len(keep), "target_size": target, "member_scores": [scores[i] for i in keep]})
