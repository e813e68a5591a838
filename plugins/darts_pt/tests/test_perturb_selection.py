"""DARTS-PT selection: planted signal beats α magnitude, topology keeps k inputs, resume is exact, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from nasfw.config import ComponentRef, LogSettings, RunConfig, SearchSettings
from nasfw.errors import ConfigError, NasfwError
from nasfw.testing import stage

FAST = {"tune_epochs": 0, "eval_batches": 2}


def _ops(genotype: Any) -> dict[int, str]:
    return {e.input: e.op for e in genotype.cells["cell"]}


def test_perturb_keeps_planted_op_where_magnitude_keeps_decoy(planted_registry, plant_signal):
    with stage(space="planted", selector={"name": "perturb", "params": FAST}, registry=planted_registry,
               batch_size=16) as run:
        plant_signal(run, signal=(0, 1), decoy=(0, 0))
        full = run.evaluate(run.eval_batches("val", 2), train_mode=True)["acc"]
        assert full > 0.9  # the planted read-out classifies the toy images
        magnitude = run.space.discretize(run.supernet.strengths())  # DARTS' rule: the largest weight wins
        assert _ops(magnitude)[0] == "bias"
        genotype = run.selector.select(run.supernet, run.space, run)
        assert _ops(genotype)[0] == "readout_a"
        first = next(d for d in run.selector.state["decisions"] if d["row"] == 0)
        # removing the planted op leaves chance accuracy; removing the decoy (largest α) does not hurt
        acc = dict(zip(first["candidates"], first["acc"]))
        assert acc[1] <= 0.5 < full - 0.3 and acc[0] > 0.9
        # the decision is the supernet's mask: edge 0 now runs the planted read-out alone
        assert run.supernet.mask("cell")[0].tolist() == [False, True, False]


def test_loss_criterion_agrees_on_the_planted_case(planted_registry, plant_signal):
    with stage(space="planted", selector={"name": "perturb", "params": {**FAST, "criterion": "loss"}},
               registry=planted_registry, batch_size=16) as run:
        plant_signal(run, signal=(1, 2), decoy=(1, 1))
        genotype = run.selector.select(run.supernet, run.space, run)
        assert _ops(genotype)[1] == "readout_b"


@pytest.mark.parametrize("keep", [1, 2])
def test_topology_keeps_the_planted_edge_and_exactly_k_inputs(planted_registry, plant_signal, keep):
    with stage(space="planted", space_params={"keep": keep}, selector={"name": "perturb", "params": FAST},
               registry=planted_registry, batch_size=16) as run:
        plant_signal(run, signal=(2, 2), decoy=(0, 0))
        genotype = run.selector.select(run.supernet, run.space, run)
        assert len(genotype.cells["cell"]) == keep
        assert _ops(genotype)[2] == "readout_b"
        mask = run.supernet.mask("cell")
        assert int(mask.any(dim=1).sum()) == keep  # dropped edges are switched off in the supernet
        node = next(d for d in run.selector.state["decisions"] if d["kind"] == "node")
        assert len(node["kept"]) == keep and 2 in node["kept"]


def test_topology_on_darts_cells_keeps_two_inputs_per_node():
    prims = ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"]
    params = {"layers": 2, "init_channels": 4, "steps": 3, "primitives": prims}
    with stage(space="darts", space_params=params, selector={"name": "perturb", "params": {**FAST,
               "eval_batches": 1}}, batch_size=8) as run:
        genotype = run.selector.select(run.supernet, run.space, run)
        run.space.validate_genotype(genotype)
        for cell in ("normal", "reduce"):
            edges = genotype.cells[cell]
            assert sorted(e.node for e in edges) == [2, 2, 3, 3, 4, 4]
            mask = run.supernet.mask(cell).cpu()
            assert all(int(r.sum()) <= 1 for r in mask)  # every edge decided (one op) or dropped (none)
            assert int(mask.any(dim=1).sum()) == 6
        # 3 ops ('none' is no candidate) × 9 edges × 2 cells, plus node 3 (3 inputs: 3 evals) and node 4
        # (4 + 3) per cell; the plan said so before the work
        cost = run.extra_summary["selection"]
        assert cost["evaluations"] == 3 * 9 * 2 + (3 + 4 + 3) * 2 == run.plan["selector"]["evaluations"]
        assert all(d["chosen"] != 0 for d in run.selector.state["decisions"] if d["kind"] == "op")
        assert cost["forward_batches"] == cost["evaluations"]


def _config(tmp: Path, name: str, params: dict[str, Any]) -> RunConfig:
    return RunConfig(space=ComponentRef(name="planted", params={"keep": 2}), optimizer=ComponentRef(name="kit-sgd"),
                     selector=ComponentRef(name=name, params=params), dataset=ComponentRef(name="toy-images"),
                     search=SearchSettings(epochs=1, batch_size=8, steps_per_epoch=2, eval_batches=1),
                     log=LogSettings(progress="none", tensorboard=False, plots=False), seed=3, device="cpu",
                     out=str(tmp))


def test_selection_resumes_mid_way_exactly(planted_registry, tmp_path, monkeypatch):
    from nasfw.engine import execute, prepare, resume_search
    from nasfw_darts_pt.selector import PerturbSelector

    params = {"tune_epochs": 2, "tune_steps": 2, "eval_batches": 2, "tune_lr": 0.01}
    run_a = prepare(_config(tmp_path / "a", "perturb", params), planted_registry, quiet=True)
    summary_a = execute(run_a)

    calls = {"n": 0}
    original = PerturbSelector._tune_epoch

    def killed(self, supernet, run, steps):  # dies in the 4th tuning epoch (round 1), after 3 checkpointed ones
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        original(self, supernet, run, steps)

    monkeypatch.setattr(PerturbSelector, "_tune_epoch", killed)
    run_b = prepare(_config(tmp_path / "b", "perturb", params), planted_registry, quiet=True)
    with pytest.raises(KeyboardInterrupt):
        execute(run_b)
    assert not (tmp_path / "b" / "genotype.json").exists()
    monkeypatch.setattr(PerturbSelector, "_tune_epoch", original)
    run_c, summary_c = resume_search(tmp_path / "b", planted_registry, quiet=True)

    assert summary_c["genotype"] == summary_a["genotype"]
    assert run_c.selector.state["decisions"] == run_a.selector.state["decisions"]
    # 4 rounds (3 op, 1 node), 2 tuning epochs after each but the last
    assert run_c.selector.state["tune_epoch_total"] == run_a.selector.state["tune_epoch_total"] == 6
    sa, sc = run_a.supernet.state_dict(), run_c.supernet.state_dict()
    assert all(torch.equal(sa[k], sc[k]) for k in sa)  # tuning resumed bit-exactly
    assert summary_c["selection"]["tune_steps"] == 12 and summary_c["selection"]["evaluations"] > 0
    logged = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert sum(r["kind"] == "pt_tune" for r in logged) == 6  # the killed epoch left no duplicate records


@pytest.mark.parametrize(("name", "alpha_moves"), [("perturb", True), ("perturb-fixed-alpha", False)])
def test_alpha_trains_while_tuning_unless_fixed(planted_registry, tmp_path, monkeypatch, name, alpha_moves):
    from nasfw.engine import execute, prepare
    from nasfw_darts_pt.selector import PerturbSelector

    params = {"tune_epochs": 1, "tune_steps": 2, "eval_batches": 1}
    run = prepare(_config(tmp_path, name, params), planted_registry, quiet=True)
    seen: list[torch.Tensor] = []
    original = PerturbSelector.select

    def spy(self, supernet, space, r):
        seen.append(supernet.alphas["cell"].detach().clone())
        return original(self, supernet, space, r)

    monkeypatch.setattr(PerturbSelector, "select", spy)
    execute(run)
    assert run.plan["selector"]["alpha_while_tuning"] is alpha_moves
    assert torch.equal(seen[0], run.supernet.alphas["cell"].detach()) is not alpha_moves
    assert run.selector.state["tune_epoch_total"] == 3


def test_bad_options_are_one_line_config_errors(planted_registry):
    for bad in ({"criterion": "accuracy"}, {"tune_epochs": -1}, {"edge_order": "reverse"}, {"tune_lr": 0},
                {"topology": "yes"}, {"no_such_option": 1}):
        with pytest.raises(NasfwError) as info:
            planted_registry.validate("selector", {"name": "perturb", "params": bad})
        assert "\n" not in str(info.value) and "perturb" in str(info.value)


def test_topology_on_without_rule_and_untunable_optimizer_are_config_errors(planted_registry):
    with pytest.raises(ConfigError, match="no topology rule"), stage(  # refused by the plan, before any work
            space="planted", selector={"name": "perturb", "params": {**FAST, "topology": "on"}},
            registry=planted_registry):
        pass
    with stage(space="planted", selector={"name": "perturb", "params": {"tune_epochs": 1}},
               registry=planted_registry) as run:
        run.optimizer.configure_tuning = _unsupported
        with pytest.raises(ConfigError, match="tune_epochs=0"):
            run.selector.select(run.supernet, run.space, run)


def _unsupported(lr: float | None, update_alpha: bool) -> None:
    raise NotImplementedError


TINY_DARTS = {"layers": 3, "init_channels": 4, "steps": 3,
              "primitives": ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3", "dil_conv_3x3"]}


@pytest.mark.parametrize("space", [{"name": "darts", "params": TINY_DARTS},
                                   {"name": "nb201", "params": {"init_channels": 4, "cells_per_stage": 1}}],
                         ids=["darts", "nb201"])
def test_batched_variants_score_and_decide_as_the_sequential_evaluations(space):
    """Every op removal of an edge (and edge removal of a node) as one vmap-ed forward: each variant's accuracy
    and loss equal its own sequential evaluation (BN on each variant's own batch statistics), and a whole
    selection makes the same decisions with the same scores."""
    params = {**FAST, "tune_epochs": 1, "tune_steps": 1}
    runs = {}
    for batched in (False, True):
        with stage(space=space, optimizer="darts", selector={"name": "perturb", "params": {
                **params, "batched_variants": batched}}, steps=2) as run:
            from nasfw.testing import train_steps

            train_steps(run, 2)
            sel, net = run.selector, run.supernet
            sel._init_state(net, run.space)
            cell = run.space.decisions().__iter__().__next__()
            base = sel._base_weights(net, cell)
            variants = []
            for col in range(1, base.shape[1]):
                w = base.clone()
                w[0, col] = 0.0
                variants.append(w)
            batches = list(run.eval_batches("val", 2))
            scores = sel._evaluate_many(net, run, cell, variants, batches)
            assert len({s["loss"] for s in scores}) > 1  # the variants differ, so the comparison means something
            runs[batched] = (scores, sel.select(net, run.space, run), sel.state["decisions"])
    (seq, g_seq, d_seq), (bat, g_bat, d_bat) = runs[False], runs[True]
    for a, b in zip(seq, bat):
        assert a["acc"] == b["acc"] and a["n"] == b["n"]
        assert abs(a["loss"] - b["loss"]) <= 1e-5 * max(1.0, abs(a["loss"]))
    assert g_seq == g_bat
    assert [(d["cell"], d.get("chosen"), d.get("kept")) for d in d_seq] == \
        [(d["cell"], d.get("chosen"), d.get("kept")) for d in d_bat]
    assert [d.get("acc") for d in d_seq] == [d.get("acc") for d in d_bat]


def test_a_supernet_that_cannot_be_vmapped_is_evaluated_one_variant_after_another(monkeypatch, tmp_path):
    """A third-party forward that reads the mixing weights on the host cannot run under vmap: the selector says
    so in metrics.jsonl and scores the variants one by one, with the same decisions."""
    from nasfw.testing import ToySupernet

    def decisions(batched_ok: bool, out: Path) -> list:
        with stage(selector={"name": "perturb", "params": FAST}, out_dir=out) as run:
            if not batched_ok:
                plain = ToySupernet.forward

                def host_reading(self, x):
                    self.mixing_weights()["cell"].tolist()  # fails on a vmap-ed table
                    return plain(self, x)
                monkeypatch.setattr(ToySupernet, "forward", host_reading)
            run.selector.select(run.supernet, run.space, run)
            monkeypatch.undo()
            return [(d["cell"], d.get("chosen"), d.get("kept"), d.get("acc")) for d in run.selector.state["decisions"]]
    ok = decisions(True, tmp_path / "a")
    fallback = decisions(False, tmp_path / "b")
    assert fallback == ok and ok
    notes = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("kind") == "note" and "batched_variants off" in r["text"] for r in notes)
