"""LISSNAS: locality-based iterative search-space shrinkage (Gopal et al., IJCAI 2023), reconstructed.

Confirmed by the paper's sources (abstract, introduction, Figure 3 caption): sample networks from the
current space, take the best as seeds, grow neighbourhoods ("pockets") of structurally close good
networks around them, repeat until the average accuracy plateaus or drops. Everything else (sample
counts, radius, the neighbour filter, the estimator, keeping the better of the last two spaces) is
ours and is a config knob; see the plugin README for the exact split.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from pydantic import Field, model_validator

from nasfw.components import SearchSpace, Shrinker, ShrunkSpace, StrictModel
from nasfw.genotype import Genotype
from nasfw.shrink_cmd import pockets
from nasfw_lissnas.evaluators import make_evaluator, validate_evaluator


class EvaluatorConfig(StrictModel):
    """Shared part of both shrinkers' configs: which f(a) to use."""

    evaluator: str = Field(default="benchmark", description="benchmark (table lookup), proxy (zero-cost, "
                           "e.g. synflow) or supernet (weight-sharing accuracy)")
    evaluator_params: dict[str, Any] = Field(default_factory=dict, description="options of the evaluator")

    @model_validator(mode="after")
    def _check_evaluator(self) -> EvaluatorConfig:
        self.evaluator_params = validate_evaluator(self.evaluator, self.evaluator_params)
        return self


class LissnasConfig(EvaluatorConfig):
    samples: int = Field(default=100, ge=1, description="N_SAMPLES: architectures sampled from the current space "
                         "per iteration (all of it when it is smaller)")
    seeds: int = Field(default=10, ge=1, description="TOP_K: best samples taken as seeds (phase 1)")
    radius: int = Field(default=1, ge=1, description="pocket radius in the space's edit distance (phase 2)")
    neighbours_per_seed: int | None = Field(default=None, ge=1, description="sample this many of each seed's "
                                            "neighbours (default: all within the radius)")
    keep_quantile: float = Field(default=0.5, ge=0, le=1, description="keep a neighbour only if its score is at "
                                 "least this quantile of the iteration's sample scores ('good neighbours'; "
                                 "0 keeps all)")
    accumulate_seeds: bool = Field(default=False, description="seeds are the top-k of this and all earlier "
                                   "iterations' samples that are still in the space")
    max_iterations: int = Field(default=10, ge=1, description="shrink steps at most")
    tolerance: float = Field(default=0.0, ge=0, description="EPS: stop when the mean score rises by <= this")
    keep_best: bool = Field(default=True, description="on a drop, return the previous space (the one with the "
                            "higher mean) instead of the last one")
    min_size: int = Field(default=1, ge=1, description="stop before a step that would leave fewer members")
    seed: int | None = Field(default=None, ge=0, description="RNG seed (default: the run's seed)")


def ball(space: SearchSpace, centre: Genotype, radius: int,
         cache: dict[Genotype, list[Genotype]] | None = None) -> list[Genotype]:
    """Members of ``space`` within ``radius`` one-step moves of ``centre`` (centre excluded), nearest first.
    ``cache`` memoises each genotype's one-step neighbours across calls."""
    cache = {} if cache is None else cache
    seen = {centre}
    frontier = [centre]
    out: list[Genotype] = []
    for _ in range(radius):
        nxt = []
        for g in frontier:
            if g not in cache:
                cache[g] = list(space.neighbours(g))
            for nb in cache[g]:
                if nb not in seen:
                    seen.add(nb)
                    nxt.append(nb)
        out += nxt
        frontier = nxt
    return out


def quantile(values: list[float], q: float) -> float:
    """The q-quantile (linear interpolation, as numpy's default)."""
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


class Lissnas(Shrinker):
    """Iterative architecture-level shrinkage into pockets around good seeds; stops on a mean plateau."""

    Config = LissnasConfig
    config: LissnasConfig

    def shrink(self, space: SearchSpace, run: Any) -> ShrunkSpace:
        c = self.config
        rng = random.Random(c.seed if c.seed is not None else (self.ctx.seed if self.ctx else 0) * 7919 + 11)
        scorer = make_evaluator(c.evaluator, c.evaluator_params, space, run)
        current: list[Genotype] | None = None  # None: the whole space S_0
        spaces: list[list[Genotype] | None] = []
        made_by: list[list[Genotype]] = [[]]  # the seeds that generated each space
        near: dict[Genotype, list[Genotype]] = {}
        history: list[dict[str, Any]] = []
        pool: list[Genotype] = []
        stop = "max_iterations"
        for t in range(c.max_iterations + 1):
            members = current
            sampler: Callable[[random.Random], Genotype] = space.sample if members is None else (
                lambda r, m=members: r.choice(m))
            scorer.new_iteration(sampler)
            samples = self._sample(space, members, rng)
            scores = scorer(samples)
            mean = sum(scores) / len(scores)
            spaces.append(members)
            history.append({"iteration": t, "size": space.size() if members is None else len(members),
                            "sampled": len(samples), "mean": round(mean, 6), "best": max(scores),
                            "evaluations": scorer.evaluations})
            if t >= 1 and mean - history[t - 1]["mean"] <= c.tolerance:
                stop = "plateau" if mean >= history[t - 1]["mean"] else "drop"
                break
            if t == c.max_iterations:
                break
            # phase 1: seeds
            if c.accumulate_seeds:
                alive = set(members) if members is not None else None
                pool = [g for g in dict.fromkeys(pool + samples) if alive is None or g in alive]
                ranked = sorted(pool, key=lambda g: -scorer([g])[0])
            else:
                ranked = [samples[i] for i in sorted(range(len(samples)), key=lambda i: -scores[i])]
            seeds = list(dict.fromkeys(ranked))[: c.seeds]
            # phase 2: good neighbours of every seed, intersected with the current space
            threshold = quantile(scores, c.keep_quantile) if c.keep_quantile > 0 else None
            alive = set(members) if members is not None else None
            nxt: list[Genotype] = list(seeds)
            for s in seeds:
                nbs = ball(space, s, c.radius, near)
                if alive is not None:
                    nbs = [g for g in nbs if g in alive]
                if c.neighbours_per_seed is not None and len(nbs) > c.neighbours_per_seed:
                    nbs = rng.sample(nbs, c.neighbours_per_seed)
                if threshold is not None:
                    nbs = [g for g, f in zip(nbs, scorer(nbs)) if f >= threshold]
                nxt += nbs
            nxt = list(dict.fromkeys(nxt))
            if len(nxt) < c.min_size:
                stop = "min_size"
                if members is None:  # never return the whole (implicit) space
                    current = nxt
                    spaces.append(nxt)
                    made_by.append(seeds)
                    history.append({"iteration": t + 1, "size": len(nxt), "sampled": 0, "mean": None,
                                    "best": None, "evaluations": scorer.evaluations})
                break
            if members is not None and set(nxt) == set(members):
                stop = "fixed_point"
                break
            current = nxt
            made_by.append(seeds)
        chosen = len(spaces) - 1
        if stop == "drop" and c.keep_best and chosen >= 2:
            chosen -= 1  # S_{t-1} had the higher mean; S_0 (the whole space) is never returned
        final = spaces[chosen]
        assert final is not None
        member_scores = scorer(final)
        comps = pockets(space, final)
        best = max(range(len(final)), key=lambda i: member_scores[i])
        info = {
            "method": "lissnas",
            "evaluator": c.evaluator,
            "stop_reason": stop,
            "iterations": len(history) - 1,
            "returned_iteration": chosen,
            "history": history,
            "size_before": space.size(),
            "size": len(final),
            "pockets": len(comps),
            "pocket_sizes": [len(p) for p in comps],
            "evaluations": scorer.evaluations,
            "best_member": space.format(final[best]),
            "best_score": member_scores[best],
            "member_scores": member_scores,
            "seeds": [space.format(g) for g in made_by[chosen]],
        }
        return ShrunkSpace(final, info)

    def _sample(self, space: SearchSpace, members: list[Genotype] | None, rng: random.Random) -> list[Genotype]:
        n = self.config.samples
        if members is None:
            return [space.sample(rng) for _ in range(n)]
        if len(members) <= n:
            return list(members)
        return rng.sample(members, n)

