"""LISSNAS: locality-based iterative search-space shrinkage (Gopal et al., IJCAI 2023), reconstructed.

Confirmed by the paper's sources (abstract, introduction, Figure 3 caption): sample networks from the
current space, take the best as seeds, grow neighbourhoods ("pockets") of structurally close good
networks around them, repeat until the average accuracy plateaus or drops, keeping many pockets rather than
one region. Everything else is ours and is a config knob (see the plugin README for the exact split): the
sample counts, the radius, the "good neighbour" filter, the estimator (a zero-cost proxy by default: the
benchmark is never read), the target size, and the minimum number of disjoint pockets.

Size and diversity are controlled, not left to a fixed point: the space never shrinks below
``target_size``; a step whose pockets would hold fewer members takes more seeds (and, if needed, grows the
pockets best-first through scored neighbours) until they hold exactly the target; a stop above the target
keeps the best-scored members. Pockets are kept disjoint and non-adjacent (a neighbour that touches another
pocket is not added), so the shrunk space has at least ``min_pockets`` connected components.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from typing import Any

import torch
from pydantic import Field, model_validator

from nasfw.budget import Span, refuse, resolve
from nasfw.components import SearchSpace, Shrinker, ShrunkSpace, StrictModel
from nasfw.errors import NasfwError
from nasfw.genotype import Genotype
from nasfw.runlog import progress_of
from nasfw.shrinkage import SCORES_ARE_TRUTH, pockets, row_codes, uses_edit_distance
from nasfw_lissnas.evaluators import EVALUATORS, CachedScorer, make_evaluator, validate_evaluator
from nasfw_lissnas.presets import LISSNAS_PRESETS


class EvaluatorConfig(StrictModel):
    """Shared part of the shrinkers' configs: which f(a) to use."""

    evaluator: str = Field(default="proxy", description="proxy (zero-cost, SynFlow by default: never reads a "
                           "benchmark), supernet (weight-sharing accuracy) or oracle (reads the benchmark's true "
                           "accuracy: an upper bound, not a shrinkage method)")
    evaluator_params: dict[str, Any] = Field(default_factory=dict, description="options of the evaluator")

    @model_validator(mode="after")
    def _check_evaluator(self) -> EvaluatorConfig:
        self.evaluator_params = validate_evaluator(self.evaluator, self.evaluator_params)
        return self


class TargetConfig(StrictModel):
    """The size a shrinker aims for: a member count, or a fraction of the space (capped)."""

    target_size: Span = Field(default=0.01, description="members to keep: a count (e.g. 64) or a fraction of the "
                              "space (e.g. 0.01 or '1%'; NB201: 156 of 15,625)")
    max_members: int = Field(default=500, ge=1, description="a fractional target never exceeds this (every member "
                             "is listed and scored; a fraction of a huge space would be millions)")

    def resolve_target(self, space: SearchSpace, minimum: int = 1) -> int:
        size = space.size()
        span = self.target_size
        if isinstance(span, float):
            if size is None:
                return max(minimum, self.max_members)
            return max(minimum, min(resolve(span, size, minimum=1), self.max_members))
        return max(minimum, int(span))


class LissnasConfig(EvaluatorConfig, TargetConfig):
    samples: int = Field(default=100, ge=1, description="N_SAMPLES: architectures sampled from the current space "
                         "per iteration (all of it when it is smaller)")
    seeds: int = Field(default=10, ge=1, description="TOP_K: best samples taken as seeds (phase 1); more are taken "
                       "when the pockets would hold fewer than target_size members or min_pockets pockets")
    min_pockets: int = Field(default=3, ge=1, description="disjoint, non-adjacent pockets the shrunk space keeps "
                             "at least (the paper's 'many pockets'; ours: a hard guarantee)")
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
    extra_candidates: int = Field(default=5, ge=0, description="when the samples cannot seed enough pockets or "
                                  "members, draw up to this many more batches of `samples` from the space")
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
            for nb in _near(space, g, cache):
                if nb not in seen:
                    seen.add(nb)
                    nxt.append(nb)
        out += nxt
        frontier = nxt
    return out


def _near(space: SearchSpace, g: Genotype, cache: dict[Genotype, list[Genotype]]) -> list[Genotype]:
    if g not in cache:
        cache[g] = list(space.neighbours(g))
    return cache[g]


def quantile(values: list[float], q: float) -> float:
    """The q-quantile (linear interpolation, as numpy's default)."""
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


class Pockets:
    """Pockets grown inside the current space ``alive`` (None = whole space), with ``min_pockets`` of them kept
    apart: the founders' pockets never touch (no member is added that would link two of them), so the space
    keeps at least that many connected components. Other pockets merge freely with whatever they touch.

    Touching means one edit apart in the space's distance (what the report's pocket count links), checked
    against every owned member at once through :func:`nasfw.shrinkage.row_codes` when the space keeps the
    default edit distance."""

    def __init__(self, space: SearchSpace, alive: set[Genotype] | None):
        self.space, self.alive = space, alive
        self.owner: dict[Genotype, int] = {}
        self.seeds: list[Genotype] = []  # the founders, one per protected pocket
        self.all_seeds: list[Genotype] = []  # every seed used (founders included)
        self.parent: list[int] = []  # union-find over pockets
        self.founder: list[bool] = []
        self.bulk = uses_edit_distance(space)
        self._code_of: dict[Genotype, torch.Tensor] = {}
        self._codes: list[torch.Tensor] = []
        self._stack: torch.Tensor | None = None
        self._pids: list[int] = []

    def __len__(self) -> int:
        return len(self.owner)

    def members(self) -> list[Genotype]:
        return list(self.owner)

    def _code(self, g: Genotype) -> torch.Tensor:
        if g not in self._code_of:
            self._code_of[g] = row_codes(self.space, g)
        return self._code_of[g]

    def distance_to(self, g: Genotype, others: list[Genotype]) -> list[float]:
        if not others:
            return []
        if self.bulk:
            return (torch.stack([self._code(o) for o in others]) != self._code(g)).sum(dim=1).tolist()
        return [self.space.distance(g, o) for o in others]

    def find(self, pid: int) -> int:
        while self.parent[pid] != pid:
            self.parent[pid] = self.parent[self.parent[pid]]
            pid = self.parent[pid]
        return pid

    def _touching(self, g: Genotype) -> set[int]:
        """Pocket components that own g or a member within one edit of it."""
        if g in self.owner:
            return {self.find(self.owner[g])}
        if not self.owner:
            return set()
        if self.bulk:
            if self._stack is None or self._stack.shape[0] != len(self._codes):
                self._stack = torch.stack(self._codes)
            near = ((self._stack != self._code(g)).sum(dim=1) <= 1).nonzero().flatten().tolist()
            return {self.find(self._pids[i]) for i in near}
        return {self.find(pid) for m, pid in self.owner.items() if self.space.distance(g, m) <= 1}

    def _joinable(self, roots: set[int]) -> bool:
        return sum(self.founder[r] for r in roots) <= 1

    def can_join(self, g: Genotype, pid: int) -> bool:
        return ((self.alive is None or g in self.alive) and g not in self.owner
                and self._joinable(self._touching(g) | {self.find(pid)}))

    def _own(self, g: Genotype, pid: int, touching: set[int]) -> None:
        root = self.find(pid)
        for r in touching:  # g links them: one component now
            r = self.find(r)
            if r != root:
                keep, gone = (r, root) if self.founder[r] else (root, r)
                self.parent[gone] = keep
                root = keep
        self.owner[g] = root
        self._pids.append(root)
        self._codes.append(self._code(g) if self.bulk else torch.zeros(0))

    def _new(self, founder: bool) -> int:
        self.parent.append(len(self.parent))
        self.founder.append(founder)
        return len(self.parent) - 1

    def found(self, g: Genotype) -> None:
        """A protected pocket seeded at g (the caller keeps founders apart)."""
        self.seeds.append(g)
        self.all_seeds.append(g)
        self._own(g, self._new(True), set())

    def add_seed(self, g: Genotype) -> int | None:
        """Grow from g: its own pocket, or the component it touches; None if it would link two founders."""
        touching = self._touching(g)
        if not self._joinable(touching):
            return None
        self.all_seeds.append(g)
        if g in self.owner:
            return self.find(self.owner[g])
        pid = next(iter(sorted(touching, key=lambda r: not self.founder[r]))) if touching else self._new(False)
        self._own(g, pid, touching)
        return self.find(pid)

    def add(self, g: Genotype, pid: int) -> bool:
        if not self.can_join(g, pid):
            return False
        self._own(g, pid, self._touching(g))
        return True


class Lissnas(Shrinker):
    """Iterative architecture-level shrinkage into pockets around good seeds, to a target size with at least
    ``min_pockets`` disjoint pockets; stops on a mean plateau (the paper's rule) or at the target."""

    Config = LissnasConfig
    config: LissnasConfig
    presets = LISSNAS_PRESETS

    # -- plan and refusals -------------------------------------------------------------------
    def target(self, space: SearchSpace) -> int:
        return self.config.resolve_target(space, minimum=self.config.min_pockets)

    def plan(self, space: SearchSpace) -> dict[str, Any]:
        c = self.config
        if c.target_size == 0:
            raise refuse("shrinker.target_size", "a target of 0 members keeps nothing",
                         "give a count or a fraction > 0")
        size = space.size()
        target = self.target(space)
        if size is not None and target >= size:
            raise refuse("shrinker.target_size", f"the target ({target} members) is not smaller than the space "
                         f"({size})", "lower target_size (e.g. 0.01 = 1% of the space) or min_pockets")
        if c.seeds > c.samples and not c.accumulate_seeds:
            raise refuse("shrinker.seeds", f"{c.seeds} seeds cannot come from {c.samples} samples per iteration",
                         "raise samples or lower seeds")
        first = min(c.samples, size) if size is not None else c.samples
        return {"iterations": f"<= {c.max_iterations}", "samples_per_iteration": c.samples,
                "evaluations_first_iteration": f"~{first + c.seeds * self._ball_estimate(space)}",
                "target_members": target, "min_pockets": c.min_pockets, "evaluator": c.evaluator,
                **({"oracle": "reads the benchmark (upper bound)"} if EVALUATORS[c.evaluator].reads_truth else {})}

    def _ball_estimate(self, space: SearchSpace) -> int:
        """Scored neighbours per seed: the one-step ring of a sample, to the radius (an estimate)."""
        if self.config.keep_quantile == 0:
            return 0
        ring = sum(1 for _ in space.neighbours(space.sample(random.Random(0))))
        n = sum(math.comb(ring, d) for d in range(1, self.config.radius + 1))
        return min(n, self.config.neighbours_per_seed or n)

    # -- the loop ------------------------------------------------------------------------------
    def shrink(self, space: SearchSpace, run: Any) -> ShrunkSpace:
        with progress_of(run).phase("lissnas iterations", total=self.config.max_iterations + 1):
            return self._shrink(space, run)

    def _shrink(self, space: SearchSpace, run: Any) -> ShrunkSpace:
        c = self.config
        self.plan(space)
        target = self.target(space)
        rng = random.Random(c.seed if c.seed is not None else (self.ctx.seed if self.ctx else 0) * 7919 + 11)
        scorer = make_evaluator(c.evaluator, c.evaluator_params, space, run)
        near: dict[Genotype, list[Genotype]] = {}
        current: list[Genotype] | None = None  # None: the whole space S_0
        spaces: list[list[Genotype] | None] = []
        made_by: list[list[Genotype]] = [[]]  # the seeds that generated each space
        founders: list[list[Genotype]] = [[]]  # the seed of each of its pockets
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
            progress_of(run).advance(f"size={history[-1]['size']} mean={mean:.4g}")
            if t >= 1 and mean - history[t - 1]["mean"] <= c.tolerance:
                stop = "plateau" if mean >= history[t - 1]["mean"] else "drop"
                break
            if members is not None and len(members) <= target:
                stop = "target_size"
                break
            if t == c.max_iterations:
                break
            # phase 1: seeds, best first (with the earlier samples still alive, if accumulating)
            alive = set(members) if members is not None else None
            if c.accumulate_seeds:
                pool = [g for g in dict.fromkeys(pool + samples) if alive is None or g in alive]
                ranked = sorted(pool, key=lambda g: -scorer([g])[0])
            else:
                ranked = [samples[i] for i in sorted(range(len(samples)), key=lambda i: -scores[i])]
            threshold = quantile(scores, c.keep_quantile) if c.keep_quantile > 0 else None
            # phase 2: good neighbours of every seed, inside the current space, pockets kept apart
            grown = self._grow(space, members, alive, list(dict.fromkeys(ranked)), threshold, target, scorer, rng,
                               near)
            nxt = grown.members()
            if len(nxt) < target:
                if members is None:
                    raise NasfwError(f"lissnas could grow only {len(nxt)} of the {target} target members in "
                                     f"{len(grown.seeds)} disjoint pockets; lower target_size or min_pockets")
                stop = "target_size"  # disjoint pockets inside S_t cannot hold the target: S_t is cut instead
                break
            if members is not None and set(nxt) == set(members):
                stop = "fixed_point"
                break
            current = nxt
            made_by.append(list(dict.fromkeys(grown.all_seeds)))
            founders.append(list(grown.seeds))
            history[-1].update({"pockets_grown": len(grown.seeds), "seeds_used": len(grown.all_seeds),
                                "next_size": len(nxt)})
        chosen = len(spaces) - 1
        if stop == "drop" and c.keep_best and chosen >= 2:
            chosen -= 1  # S_{t-1} had the higher mean; S_0 (the whole space) is never returned
        final = spaces[chosen]
        assert final is not None  # S_0 is never chosen: every stop comes at t >= 1
        seeds = made_by[min(chosen, len(made_by) - 1)]
        scorer.new_iteration(lambda r, m=final: r.choice(m))
        final, member_scores = self._cut(final, founders[min(chosen, len(founders) - 1)], target, scorer)
        comps = pockets(space, final)
        if len(comps) < c.min_pockets:
            raise NasfwError(f"lissnas kept only {len(comps)} disjoint pockets (min_pockets={c.min_pockets}); "
                             f"lower min_pockets or raise target_size/samples")
        best = max(range(len(final)), key=lambda i: member_scores[i])
        info = {
            "method": "lissnas",
            "evaluator": c.evaluator,
            SCORES_ARE_TRUTH: scorer.reads_truth,
            "stop_reason": stop,
            "iterations": len(history) - 1,
            "returned_iteration": chosen,
            "history": history,
            "size_before": space.size(),
            "target_size": target,
            "size": len(final),
            "pockets": len(comps),
            "pocket_sizes": [len(p) for p in comps],
            "evaluations": scorer.evaluations,
            "best_member": space.format(final[best]),
            "best_score": member_scores[best],
            "member_scores": member_scores,
            "seeds": [space.format(g) for g in seeds],
        }
        return ShrunkSpace(final, info)

    def _grow(self, space: SearchSpace, members: list[Genotype] | None, alive: set[Genotype] | None,
              ranked: list[Genotype], threshold: float | None, target: int, scorer: CachedScorer,
              rng: random.Random, near: dict[Genotype, list[Genotype]]) -> Pockets:
        """Pockets around the ranked candidates: first the ``min_pockets`` best mutually non-adjacent ones are
        placed as pocket seeds; then the candidates, best first, grow their good neighbours (a candidate next
        to a pocket grows that pocket, one far from all starts a new one) — the top ``seeds`` always, more
        until the pockets hold ``target`` members; then a best-first fill if still short."""
        c = self.config
        grown = Pockets(space, alive)
        batches = [ranked]

        def more() -> bool:
            if len(batches) > c.extra_candidates:
                return False
            fresh = [g for g in dict.fromkeys(self._sample(space, members, rng)) if g not in grown.owner]
            batches.append(sorted(fresh, key=lambda g: -scorer([g])[0]))
            return True

        # founders: the best candidates at least `spacing` apart (2·radius + 2: their balls cannot touch), the
        # spacing lowered step by step (to 2: not adjacent) when the space is too small for it
        for spacing in range(2 * c.radius + 2, 1, -1):
            founders: list[Genotype] = []
            b = 0
            while len(founders) < c.min_pockets:
                for s in batches[b]:
                    if len(founders) >= c.min_pockets:
                        break
                    if s not in founders and all(d >= spacing for d in grown.distance_to(s, founders)):
                        founders.append(s)
                b += 1
                if b == len(batches) and len(founders) < c.min_pockets and not more():
                    break
            if len(founders) >= c.min_pockets:
                break
        if len(founders) < c.min_pockets:
            raise NasfwError(f"lissnas found only {len(founders)} mutually non-adjacent seeds in a space of "
                             f"{len(alive) if alive is not None else space.size()} (min_pockets={c.min_pockets}); "
                             f"lower min_pockets, or raise samples/extra_candidates")
        for s in founders:
            grown.found(s)
        used = 0

        def enough() -> bool:
            return used >= c.seeds and len(grown) >= target

        b = 0
        while not enough():
            for s in batches[b]:
                if enough():
                    break
                pid = grown.add_seed(s)
                if pid is None:
                    continue
                used += 1
                nbs = [g for g in ball(space, s, c.radius, near) if grown.can_join(g, pid)]
                if c.neighbours_per_seed is not None and len(nbs) > c.neighbours_per_seed:
                    nbs = rng.sample(nbs, c.neighbours_per_seed)
                if threshold is not None and nbs:
                    nbs = [g for g, f in zip(nbs, scorer(nbs)) if f >= threshold]
                for g in nbs:
                    grown.add(g, pid)
            b += 1
            if b == len(batches) and not enough() and not more():
                break
        if len(grown) < target:
            self._fill(grown, target, scorer, near)
        return grown

    def _fill(self, grown: Pockets, target: int, scorer: CachedScorer,
              near: dict[Genotype, list[Genotype]]) -> None:
        """Grow the pockets best-first through scored one-step neighbours until they hold ``target``."""
        heap: list[tuple[float, int, Genotype, int]] = []
        tick = 0

        def push(g: Genotype) -> None:
            nonlocal tick
            pid = grown.owner[g]
            cands = [n for n in _near(grown.space, g, near) if grown.can_join(n, pid)]
            for n, f in zip(cands, scorer(cands) if cands else []):
                heapq.heappush(heap, (-f, tick, n, pid))
                tick += 1

        for g in list(grown.owner):
            push(g)
        while heap and len(grown) < target:
            _, _, g, pid = heapq.heappop(heap)
            if grown.add(g, pid):
                push(g)

    def _cut(self, members: list[Genotype], seeds: list[Genotype], target: int,
             scorer: CachedScorer) -> tuple[list[Genotype], list[float]]:
        """Exactly ``target`` members (fewer only if the space has fewer): the best ``min_pockets`` pocket
        seeds (their pockets are disjoint and non-adjacent, so the pockets survive), then the best-scored
        others; members keep their order."""
        scores = scorer(members)
        if len(members) <= target:
            return members, scores
        score_of = dict(zip(members, scores))
        alive = [g for g in seeds if g in score_of]
        keep = set(sorted(alive, key=lambda g: -score_of[g])[: self.config.min_pockets])
        for i in sorted(range(len(members)), key=lambda i: -scores[i]):
            if len(keep) >= target:
                break
            keep.add(members[i])
        kept = [(g, f) for g, f in zip(members, scores) if g in keep]
        return [g for g, _ in kept], [f for _, f in kept]

    def _sample(self, space: SearchSpace, members: list[Genotype] | None, rng: random.Random) -> list[Genotype]:
        n = self.config.samples
        if members is None:
            return [space.sample(rng) for _ in range(n)]
        if len(members) <= n:
            return list(members)
        return rng.sample(members, n)
