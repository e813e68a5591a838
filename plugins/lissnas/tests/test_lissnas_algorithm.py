"""LISSNAS on a grid space with planted locality: pockets, locality, size schedule, stopping rule,
containment probability against its closed form, and the projection."""

from __future__ import annotations

import itertools
import random
from typing import Any, ClassVar

import pytest
from pydantic import Field

from nasfw.components import StrictModel
from nasfw.errors import NasfwError
from nasfw_lissnas import evaluators
from nasfw_lissnas.shrinker import ball, quantile


def shrink(g: Any, **params: Any):
    sh = g.registry.create("shrinker", {"name": "lissnas", "params": params})
    return sh.shrink(g.space, g.run)


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_pockets_contain_the_planted_optima(grid, seed):
    out = shrink(grid, samples=60, seeds=10, radius=1, seed=seed)
    found = {grid.ops_of(m) for m in out.members}
    assert set(grid.planted) <= found
    assert out.info["pockets"] == 3  # one pocket per planted optimum (they are 6 edits apart)
    assert out.info["best_member"] == grid.space.format(next(m for m in out.members if grid.ops_of(m) == ("a",) * 6))


def test_members_are_close_to_good_seeds_and_better_than_the_space(grid):
    """Locality: every member lies within `radius` of a seed, and seeds are the best samples."""
    out = shrink(grid, samples=60, seeds=8, radius=2, seed=1, max_iterations=2)
    by_str = {grid.space.format(g): g for g in grid.space.enumerate()}
    seeds = [by_str[s] for s in out.info["seeds"]]
    assert len(seeds) == 8
    for m in out.members:
        assert min(grid.space.distance(m, s) for s in seeds) <= 2
    full = [grid.accuracy(grid.ops_of(g)) for g in grid.space.enumerate()]
    kept = [grid.accuracy(grid.ops_of(g)) for g in out.members]
    assert sum(kept) / len(kept) > sum(full) / len(full) + 3
    assert out.info["member_scores"] == kept  # the benchmark evaluator scores with the truth


def test_size_schedule_follows_the_config(grid):
    seeds, radius = 7, 1
    out = shrink(grid, samples=50, seeds=seeds, radius=radius, seed=0, max_iterations=3)
    sizes = [h["size"] for h in out.info["history"]]
    assert sizes[0] == 729
    ball_size = 1 + 6 * 2  # a radius-1 ball of the 6x3 grid
    assert sizes[1] <= seeds * ball_size
    assert all(b <= a for a, b in itertools.pairwise(sizes[1:]))
    assert out.info["iterations"] <= 3 and len(out.info["history"]) <= 4
    assert len(out.members) == sizes[out.info["returned_iteration"]]
    # iterations sample min(samples, |S_t|) architectures
    assert all(h["sampled"] == min(50, h["size"]) for h in out.info["history"])
    # min_size stops before a step that would leave fewer members than asked for
    big = shrink(grid, samples=50, seeds=seeds, radius=radius, seed=0, min_size=30)
    assert len(big.members) >= 30 and big.info["stop_reason"] in ("min_size", "plateau", "drop")


def test_containment_probability_matches_its_closed_form(make_grid):
    """With seeds = samples = n and one step, the optimum survives iff one of n uniform samples lands in
    its radius-1 ball: P = 1 - (1 - |B|/|S|)^n."""
    g = make_grid(rows=4, ops=4)
    n, trials = 5, 200
    best = max(g.space.enumerate(), key=lambda a: g.accuracy((*g.ops_of(a), "a", "a")))
    b = len(ball(g.space, best, 1)) + 1
    assert b == 1 + 4 * 3
    p = 1 - (1 - b / 256) ** n
    hits = 0
    for seed in range(trials):
        out = shrink(g, evaluator="benchmark", samples=n, seeds=n, radius=1, max_iterations=1, seed=seed,
                     keep_quantile=0.0)
        hits += best in set(out.members)
    sigma = (p * (1 - p) / trials) ** 0.5
    assert abs(hits / trials - p) < 4 * sigma, (hits / trials, p)


class Scripted(evaluators.Evaluator):
    """An evaluator whose mean per iteration is scripted (plus a tiny per-architecture term)."""

    means: ClassVar[list[float]] = []
    static = False

    class Config(StrictModel):
        means: list[float] = Field(default_factory=list)

    def __init__(self, config: Any, space: Any, run: Any):
        super().__init__(config, space, run)
        self.t = -1

    def on_space(self, sampler: Any) -> None:
        self.t += 1

    def score(self, genotypes: list) -> list[float]:
        base = self.config.means[min(self.t, len(self.config.means) - 1)]
        return [base + 1e-6 * (hash(g.key()) % 1000) for g in genotypes]


@pytest.mark.parametrize(("means", "params", "stop", "returned"), [
    ([50, 60, 70, 65], {}, "drop", 2),
    ([50, 60, 70, 65], {"keep_best": False}, "drop", 3),
    ([50, 60, 60.05], {"tolerance": 0.1}, "plateau", 2),
    ([50, 40], {}, "drop", 1),  # never returns the whole space
    ([1, 2, 3, 4, 5, 6], {"max_iterations": 3}, "max_iterations", 3),
])
def test_stopping_rule(grid, monkeypatch, means, params, stop, returned):
    monkeypatch.setitem(evaluators.EVALUATORS, "scripted", Scripted)
    out = shrink(grid, evaluator="scripted", evaluator_params={"means": means}, samples=30, seeds=10, radius=1,
                 keep_quantile=0.0, seed=0, **params)
    assert out.info["stop_reason"] == stop
    assert out.info["returned_iteration"] == returned
    hist = out.info["history"]
    assert [round(h["mean"]) for h in hist] == [round(m) for m in means[: len(hist)]]


def test_projection_is_a_superset_of_the_pockets(grid):
    out = shrink(grid, samples=60, seeds=10, radius=1, seed=2)
    mask = out.op_mask(grid.space)
    sub = grid.space.restrict(mask)
    assert all(sub.contains(m) for m in out.members)
    assert sub.size() >= len(out.members)
    assert sub.size() > len(out.members)  # three pockets far apart: the product re-expands the space


def test_neighbour_sampling_and_accumulated_seeds(grid):
    out = shrink(grid, samples=40, seeds=5, neighbours_per_seed=3, keep_quantile=0.0, seed=0, max_iterations=1)
    assert len(out.members) <= 5 * (1 + 3)
    acc = shrink(grid, samples=40, seeds=5, accumulate_seeds=True, seed=0)
    assert len(acc.members) >= 1 and len(set(acc.members)) == len(acc.members)


def test_quantile_matches_numpy_linear():
    np = pytest.importorskip("numpy")
    rng = random.Random(0)
    xs = [rng.random() for _ in range(37)]
    for q in (0.0, 0.1, 0.5, 0.93, 1.0):
        assert quantile(xs, q) == pytest.approx(float(np.quantile(xs, q)))


def test_bad_evaluator_options_are_config_errors(grid):
    with pytest.raises(NasfwError, match="unknown evaluator 'bench'"):
        grid.registry.validate("shrinker", {"name": "lissnas", "params": {"evaluator": "bench"}})
    with pytest.raises(NasfwError, match="metrc"):
        grid.registry.validate("shrinker", {"name": "lissnas", "params": {"evaluator_params": {"metrc": "x"}}})
    with pytest.raises(NasfwError, match="seeds"):
        grid.registry.validate("shrinker", {"name": "lissnas", "params": {"seeds": 0}})
    sh = grid.registry.create("shrinker", {"name": "lissnas", "params": {"evaluator_params": {"metric": "nope"}}})
    with pytest.raises(NasfwError, match=r"no metric 'nope'.*acc"):
        sh.shrink(grid.space, grid.run)
