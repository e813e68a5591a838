"""LISSNAS on a grid space with planted locality (f(a) known: the oracle or a scripted evaluator, so the
algorithm's rules are tested, not an estimator): pockets, locality, target size, disjoint pockets, the stopping
rule, and the projection."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import Field

from nasfw.components import StrictModel
from nasfw.errors import NasfwError
from nasfw.shrinkage import distance_matrix, pockets
from nasfw_lissnas import evaluators
from nasfw_lissnas.shrinker import ball, quantile


def shrink(g: Any, **params: Any):
    params.setdefault("evaluator", "oracle")
    sh = g.registry.create("shrinker", {"name": "lissnas", "params": params})
    return sh.shrink(g.space, g.run)


def components_apart(space: Any, members: list) -> bool:
    """Members of different pockets are never one edit apart (pockets are disjoint and non-adjacent)."""
    comps = pockets(space, members)
    label = {i: c for c, comp in enumerate(comps) for i in comp}
    d = distance_matrix(space, members)
    return all(label[i] == label[j] or d[i, j] >= 2 for i in range(len(members)) for j in range(i + 1, len(members)))


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_pockets_contain_the_planted_optima(grid, seed):
    out = shrink(grid, samples=60, seeds=10, radius=1, seed=seed, target_size=30)
    found = {grid.ops_of(m) for m in out.members}
    assert set(grid.planted) <= found
    assert len(out.members) == 30
    assert out.info["pockets"] >= 3  # the planted optima are 6 edits apart: one pocket each, at least
    assert out.info["best_member"] == grid.space.format(next(m for m in out.members if grid.ops_of(m) == ("a",) * 6))


def test_members_are_close_to_good_seeds_and_better_than_the_space(grid):
    """Locality: every member lies within `radius` of a seed (no fill was needed), and the kept mean is far
    above the space's."""
    out = shrink(grid, samples=60, seeds=8, radius=2, seed=1, max_iterations=1, target_size=40)
    by_str = {grid.space.format(g): g for g in grid.space.enumerate()}
    seeds = [by_str[s] for s in out.info["seeds"]]
    assert len(seeds) >= 3
    for m in out.members:
        assert min(grid.space.distance(m, s) for s in seeds) <= 2
    full = [grid.accuracy(grid.ops_of(g)) for g in grid.space.enumerate()]
    kept = [grid.accuracy(grid.ops_of(g)) for g in out.members]
    assert sum(kept) / len(kept) > sum(full) / len(full) + 3
    assert out.info["member_scores"] == kept  # the oracle scores with the truth
    assert out.info["scores_are_truth"] is True


@pytest.mark.parametrize(("target", "expected"), [(12, 12), (57, 57), (150, 150), (0.05, 36), ("10%", 73)])
def test_target_size_is_honoured(grid, target, expected):
    """Exactly the target (a count, or a fraction of the 729-cell grid), whether the pockets come out larger
    (cut by score) or smaller (more seeds, then a best-first fill)."""
    out = shrink(grid, samples=40, seeds=5, radius=1, seed=0, target_size=target, min_pockets=2)
    assert len(out.members) == expected == out.info["target_size"]
    assert len(set(out.members)) == expected
    assert out.info["history"][0]["size"] == 729


@pytest.mark.parametrize("min_pockets", [1, 4, 8])
def test_min_pockets_are_disjoint_and_honoured(grid, min_pockets):
    out = shrink(grid, samples=50, seeds=3, radius=1, seed=5, target_size=40, min_pockets=min_pockets)
    assert out.info["pockets"] >= min_pockets
    assert len(pockets(grid.space, out.members)) == out.info["pockets"]
    assert components_apart(grid.space, out.members)


def test_impossible_pocket_count_is_a_clear_error(make_grid):
    g = make_grid(rows=2, ops=2)  # 4 cells on a square: at most 2 pockets two edits apart
    with pytest.raises(NasfwError, match="only 2 mutually non-adjacent seeds"):
        shrink(g, samples=4, seeds=1, min_pockets=3, target_size=3, extra_candidates=1)


def test_default_evaluator_is_not_the_benchmark(grid):
    sh = grid.registry.create("shrinker", "lissnas")
    assert sh.config.evaluator == "proxy" and not evaluators.EVALUATORS[sh.config.evaluator].reads_truth
    assert evaluators.EVALUATORS["oracle"].reads_truth and "ORACLE" in evaluators.EVALUATORS["oracle"].description


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
        # crc32, not hash(): str hashes change with PYTHONHASHSEED, and so would the seeds the shrinker picks
        return [base + 1e-6 * (zlib.crc32(g.key().encode()) % 1000) for g in genotypes]


@pytest.mark.parametrize(("means", "params", "stop", "returned"), [
    ([50, 60, 70, 65], {}, "drop", 2),
    ([50, 60, 70, 65], {"keep_best": False}, "drop", 3),
    ([50, 60, 60.05], {"tolerance": 0.1}, "plateau", 2),
    ([50, 40], {}, "drop", 1),  # never returns the whole space
    ([1, 2, 3, 4, 5, 6], {"max_iterations": 3}, "max_iterations", 3),
])
def test_stopping_rule(grid, monkeypatch, means, params, stop, returned):
    monkeypatch.setitem(evaluators.EVALUATORS, "scripted", Scripted)
    out = shrink(grid, evaluator="scripted", evaluator_params={"means": means}, samples=20, seeds=6, radius=1,
                 keep_quantile=0.0, seed=0, target_size=1, min_pockets=1, **params)
    assert out.info["stop_reason"] == stop
    assert out.info["returned_iteration"] == returned
    hist = out.info["history"]
    assert [round(h["mean"]) for h in hist] == [round(m) for m in means[: len(hist)]]
    assert len(out.members) == 1  # the returned space is then cut to the target


def test_stops_at_the_target(grid):
    out = shrink(grid, samples=40, seeds=5, seed=0, target_size=20, min_pockets=2)
    assert out.info["stop_reason"] in ("target_size", "plateau", "drop", "fixed_point")
    sizes = [h["size"] for h in out.info["history"]]
    assert all(s >= 20 for s in sizes) and all(b <= a for a, b in itertools.pairwise(sizes))


def test_projection_is_a_superset_of_the_pockets(grid):
    out = shrink(grid, samples=60, seeds=10, radius=1, seed=2, target_size=30)
    mask = out.op_mask(grid.space)
    sub = grid.space.restrict(mask)
    assert all(sub.contains(m) for m in out.members)
    assert sub.size() > len(out.members)  # pockets far apart: the product re-expands the space


def test_neighbour_sampling_and_accumulated_seeds(grid):
    out = shrink(grid, samples=40, seeds=5, neighbours_per_seed=3, keep_quantile=0.0, seed=0, max_iterations=1,
                 target_size=10, min_pockets=2)
    assert len(out.members) == 10
    acc = shrink(grid, samples=40, seeds=5, accumulate_seeds=True, seed=0, target_size=10, min_pockets=2)
    assert len(acc.members) == 10 and len(set(acc.members)) == 10


def test_ball_is_the_radius_neighbourhood(grid):
    g0 = next(iter(grid.space.enumerate()))
    b2 = ball(grid.space, g0, 2)
    assert len(b2) == 6 * 2 + 15 * 4  # C(6,1)·2 + C(6,2)·2² on the 6x3 grid
    assert all(1 <= grid.space.distance(g0, g) <= 2 for g in b2)


def test_quantile_matches_numpy_linear():
    np = pytest.importorskip("numpy")
    rng = random.Random(0)
    xs = [rng.random() for _ in range(37)]
    for q in (0.0, 0.1, 0.5, 0.93, 1.0):
        assert quantile(xs, q) == pytest.approx(float(np.quantile(xs, q)))


def test_bad_options_are_config_errors_and_plans_refuse(grid):
    with pytest.raises(NasfwError, match="unknown evaluator 'bench'"):
        grid.registry.validate("shrinker", {"name": "lissnas", "params": {"evaluator": "bench"}})
    with pytest.raises(NasfwError, match="now called 'oracle'"):
        grid.registry.validate("shrinker", {"name": "lissnas", "params": {"evaluator": "benchmark"}})
    with pytest.raises(NasfwError, match="metrc"):
        grid.registry.validate("shrinker", {"name": "lissnas", "params": {"evaluator": "oracle",
                                                                          "evaluator_params": {"metrc": "x"}}})
    with pytest.raises(NasfwError, match="seeds"):
        grid.registry.validate("shrinker", {"name": "lissnas", "params": {"seeds": 0}})
    sh = grid.registry.create("shrinker", {"name": "lissnas", "params": {"evaluator": "oracle",
                                                                         "evaluator_params": {"metric": "nope"}}})
    with pytest.raises(NasfwError, match=r"no metric 'nope'.*acc"):
        sh.shrink(grid.space, grid.run)
    for params, match in [({"target_size": 729}, "not smaller than the space"),
                          ({"target_size": 0}, "keeps nothing"),
                          ({"seeds": 20, "samples": 10}, "cannot come from")]:
        sh = grid.registry.create("shrinker", {"name": "lissnas", "params": params})
        with pytest.raises(NasfwError, match=match):
            sh.plan(grid.space)
    plan = grid.registry.create("shrinker", {"name": "lissnas", "params": {"target_size": 0.02}}).plan(grid.space)
    assert plan["target_members"] == 15 and plan["min_pockets"] == 3 and "oracle" not in plan


@pytest.mark.skipif(os.environ.get("NASFW_HASH_SEED_CHILD") == "1", reason="already the other-hash-seed run")
def test_shrinkers_do_not_depend_on_the_string_hash_seed():
    """The shrinkers' choices must not follow Python's per-process str hash (set iteration order, hash()): CI once
    failed the stopping-rule cases under a hash seed the development machine never drew. These tests again, in a
    process with another PYTHONHASHSEED."""
    here = Path(__file__).resolve()
    env = {**os.environ, "PYTHONHASHSEED": "10", "NASFW_HASH_SEED_CHILD": "1"}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(here), str(here.with_name("test_lissnas_cli_and_parts.py")),
                          "-k", "stopping_rule or op_prune or pockets_contain or min_pockets"],
                         capture_output=True, text=True, env=env, cwd=here.parents[3])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
