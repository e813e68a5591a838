"""Member-constrained selection (``SearchSpace.restrict_to``): on an explicit member set, ``discretize`` returns
the member whose ops score best (Σ per-edge log-weights), whatever scores a selector hands it; a selector that
bypasses ``discretize`` is projected to a member by the engine."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
import torch

from nasfw.components import Selector
from nasfw.engine import _as_member
from nasfw.errors import GenotypeError
from nasfw.genotype import Genotype
from nasfw.members import LOG_FLOOR, row_log_weights
from nasfw.testing import ToyCellSpace, stage, toy_registry


def _space(keep: int = 2) -> ToyCellSpace:
    from nasfw.testing import ToyCellConfig

    sp = ToyCellSpace(ToyCellConfig(keep=keep))
    sp.name = "toy-cell"
    return sp


def _brute_force(space: ToyCellSpace, members: list[Genotype], logw: torch.Tensor) -> Genotype:
    """argmax over members of Σ log w, written out edge by edge (ties: the earlier member)."""
    best, best_v = None, -math.inf
    for m in members:
        v = sum(float(logw[r, k]) for r, k in space.encode(m)["cell"].nonzero().tolist())
        if v > best_v + 1e-9:
            best, best_v = m, v
    assert best is not None
    return best


@pytest.mark.parametrize("keep", [2, 1])
def test_discretize_returns_the_best_member_for_random_alpha(keep):
    """Property over 200 random (member set, α) draws: always a member, and the one with the highest
    log-likelihood under the per-edge softmax of α (what DARTS' magnitude selector hands discretize)."""
    full = _space(keep)
    cells = list(full.enumerate())
    rng = random.Random(0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        members = rng.sample(cells, rng.randint(1, 8))
        sub = full.restrict_to(members)
        alpha = 3 * torch.randn(3, 3, generator=gen)
        table = sub.op_table()["cell"]  # the supernet's mask: the union of the members' ops
        weights = torch.softmax(alpha.masked_fill(~table, -math.inf), dim=1)  # as the softmax weighting gives
        chosen = sub.discretize({"cell": weights})
        assert chosen in set(members) and sub.contains(chosen)
        logw = torch.where(table, torch.log(weights), torch.full_like(weights, LOG_FLOOR))
        assert chosen == _brute_force(full, members, logw)
        assert sub.last_selection is not None and sub.last_selection["member_constrained"]
        free = full.restrict(sub.op_table()).discretize({"cell": weights})  # argmax over the members' union
        assert sub.last_selection["unconstrained_is_member"] == (free in set(members))
        if free in set(members):  # the product argmax wins whenever it is a member (up to exact ties)
            values = sub.member_scores({"cell": weights})
            assert float(values[members.index(chosen)]) == pytest.approx(float(values[members.index(free)]))


def test_one_hot_decisions_pick_the_nearest_member_and_logits_are_read_as_logits():
    full = _space()
    cells = {full.format(g): g for g in full.enumerate()}
    a = cells["conv_3x3~0->1|conv_3x3~0->2|conv_3x3~1->2"]
    b = cells["skip_connect~0->1|skip_connect~0->2|conv_3x3~1->2"]  # 2 edits from the decision below
    c = cells["skip_connect~0->1|skip_connect~0->2|skip_connect~1->2"]  # 3 edits
    sub = full.restrict_to([c, b])
    decision = full.encode(a)["cell"]  # one-hot: a DARTS-PT-style final decision that is not a member
    assert sub.discretize({"cell": decision}) == b
    # negative scores (e.g. a loss change) are logits: log-softmax per edge
    logits = torch.tensor([[-1.0, -5.0, -9.0], [-1.0, -5.0, -9.0], [-9.0, -1.0, -5.0]])
    expected = _brute_force(full, [c, b], torch.log_softmax(logits, dim=1))
    assert sub.discretize({"cell": logits}) == expected


def test_row_log_weights_normalises_non_negative_rows_and_floors_unavailable():
    s = torch.tensor([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0], [2.0, -1.0, float("-inf")]])
    avail = torch.tensor([[True, True, True], [True, True, False], [True, True, True]])
    out = row_log_weights(s, avail)
    assert out[0, 0] == pytest.approx(math.log(0.25)) and out[0, 1] == pytest.approx(math.log(0.75))
    assert out[0, 2] == pytest.approx(LOG_FLOOR)
    assert out[1, 0] == pytest.approx(math.log(0.5)) and out[1, 2] == pytest.approx(LOG_FLOOR)  # all-zero: uniform
    assert out[2, :2].tolist() == pytest.approx(torch.log_softmax(torch.tensor([2.0, -1.0]), 0).tolist())
    assert out[2, 2] == pytest.approx(LOG_FLOOR)


def test_member_space_is_member_constrained_everywhere():
    full = _space()
    cells = list(full.enumerate())
    members = cells[:5]
    sub = full.restrict_to(members + members[:2])  # duplicates are dropped
    assert sub.size() == 5 and list(sub.enumerate()) == members
    assert all(sub.sample(random.Random(i)) in set(members) for i in range(20))
    assert all(n in set(members) for m in members for n in sub.neighbours(m))
    outsider = next(g for g in cells if g not in set(members))
    assert not sub.contains(outsider)
    with pytest.raises(GenotypeError, match="not one of the 5 members"):
        sub.validate_genotype(outsider)
    union = sub.op_table()["cell"]
    for m in members:
        assert bool((sub.encode(m)["cell"].bool() <= union).all())
    with pytest.raises(ValueError, match="at least one member"):
        full.restrict_to([])


class _Rogue(Selector):
    """Builds its genotype by hand: the first member with the op the shrinker dropped on the first edge."""

    def select(self, supernet: Any, space: Any, run: Any) -> Genotype:
        first = space.members[0]
        dropped = space.decisions()["cell"][0].ops[1]
        edges = [e.model_copy(update={"op": dropped}) if (e.node, e.input) == (1, 0) else e
                 for e in first.cells["cell"]]
        return first.model_copy(update={"cells": {"cell": edges}})


def test_engine_projects_a_selector_that_bypasses_discretize():
    with stage(shrinker="kit-drop-one", registry=toy_registry(load_entrypoints=False)) as run:
        members = set(run.space.members)
        rogue = _Rogue(ctx=run.ctx)
        rogue.name = "rogue"
        run.selector = rogue
        raw = rogue.select(run.supernet, run.space, run)
        with pytest.warns(UserWarning, match="projected to the nearest member"):
            got = _as_member(run, raw)
        assert raw not in members and got in members
        assert run.space.distance(raw, got) == 1  # the nearest member: only the dropped op differs
        act = run.extra_summary["activity"]["selector"]
        assert act["member_constrained"] and act["projected_from"] == run.space.format(raw)
