"""Random search with weight sharing on a shrunk space trains and ranks members only; its ranking and what it
trained are in its activity, and the magnitude selector returns its best candidate."""

from __future__ import annotations

from nasfw.testing import stage, train_steps


def test_rsps_trains_and_ranks_only_members():
    # kit-drop-one keeps the 18 toy cells whose first edge avoids one op: 9 of 27 are outside
    with stage(optimizer={"name": "random", "params": {"num_candidates": 40, "eval_batches": 1}},
               selector="magnitude", shrinker="kit-drop-one", steps=30) as run:
        space = run.space
        members = {space.format(g) for g in space.members}
        assert len(members) == 18
        run.optimizer.epoch_start(0)
        train_steps(run, 30)
        run.optimizer.epoch_end(0)
        act = run.optimizer.activity()
        assert act["trained_only_members"] is True
        assert set(run.optimizer.trained) <= members and act["steps"] == 30
        ranked = [r["genotype"] for r in act["ranking"]]
        assert sorted(ranked) == sorted(members)  # 40 candidates > 18 members: every member ranked once
        accs = [r["val_acc"] for r in act["ranking"]]
        assert accs == sorted(accs, reverse=True)
        chosen = run.selector.select(run.supernet, space, run)
        assert space.format(chosen) == ranked[0]


def test_rsps_candidates_are_distinct_on_a_product_space():
    with stage(optimizer={"name": "random", "params": {"num_candidates": 10, "eval_batches": 1}},
               selector="magnitude", steps=2) as run:
        cands = run.optimizer.candidates()
        assert len(cands) == 10 and len(set(cands)) == 10
