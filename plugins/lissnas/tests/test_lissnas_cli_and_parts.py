"""`nasfw shrink`, `nasfw run --shrinker lissnas` (searches stay inside the members), the contract kit,
evaluators (synflow's closed form, weight sharing, the default never reads the benchmark), the report's
metrics (no τ for an oracle run), the baselines, and NB201 (skipped without the table)."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from nasfw.cli import cli, main
from nasfw.components import ShrunkSpace
from nasfw.genotype import Genotype
from nasfw.registry import get_registry, set_registry
from nasfw.shrinkage import distance_matrix, diversity, kendall_tau, pockets, shrink_report
from nasfw.testing import ToyBenchmark, check_shrinker, stage, toy_registry
from nasfw_lissnas.evaluators import make_evaluator, synflow

NB201_CSV = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "nb201_nats_tss_acc" / "nats_bench.csv"
TINY_DARTS = ["--space", "darts", "--set", "space.layers=2", "--set", "space.init_channels=4",
              "--set", "search.steps_per_epoch=2", "--set", "search.eval_batches=1", "--batch-size", "16",
              "--epochs", "1", "--quiet", "--shrinker", "lissnas",
              "--set", 'shrinker.evaluator_params={"network": {"C": 4, "layers": 2, "auxiliary": false}}',
              "--set", "shrinker.samples=5", "--set", "shrinker.seeds=2", "--set", "shrinker.neighbours_per_seed=2",
              "--set", "shrinker.max_iterations=1", "--set", "shrinker.target_size=6",
              "--set", "shrinker.min_pockets=2",
              "--set", "log.plots=false", "--set", "log.tensorboard=false"]
TOY_SHRINK = ["shrink", "--space", "toy-cell", "--shrinker", "lissnas", "--dataset", "toy-images",
              "--set", "shrinker.samples=8", "--set", "shrinker.seeds=2", "--set", "shrinker.target_size=6",
              "--set", "shrinker.min_pockets=2", "--quiet"]


@pytest.fixture
def toy_cli():
    old = get_registry()
    set_registry(toy_registry())
    yield
    set_registry(old)


# --------------------------------------------------------------------------- CLI and engine


def test_shrink_command_reports_and_saves(tmp_path, toy_cli, monkeypatch):
    """Default evaluator (a proxy): the benchmark is read only by the report, after shrinking."""
    queries = {"n": 0}
    real = ToyBenchmark.query

    def counting(self, g):
        queries["n"] += 1
        return real(self, g)

    monkeypatch.setattr(ToyBenchmark, "query", counting)
    from nasfw_lissnas.shrinker import Lissnas

    real_shrink = Lissnas.shrink

    def shrink_then_check(self, space, run):
        out = real_shrink(self, space, run)
        assert queries["n"] == 0, "the default evaluator read the benchmark"
        return out

    monkeypatch.setattr(Lissnas, "shrink", shrink_then_check)
    out = tmp_path / "s"
    res = CliRunner().invoke(cli, [*TOY_SHRINK, "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert queries["n"] > 0  # the report did read it
    data = json.loads((out / "shrunk_space.json").read_text())
    rep = data["report"]
    assert rep["size_before"] == 27 and rep["size_after"] == len(data["members"]) == 6
    assert rep["pockets"] >= 2 and 0 < rep["diversity"]["op_coverage"] <= 1
    b = rep["benchmark"]
    assert b["name"] == "toy-table" and b["metric"] == "val_acc" and isinstance(b["optimum_survived"], bool)
    assert b["optimum_survived"] == (b["best"] == b["full_best"])
    assert isinstance(rep["kendall_tau"], float) and rep["kendall_tau_n"] == 6  # proxy scores vs the truth
    assert data["info"]["scores_are_truth"] is False and data["plan"]["target_members"] == 6
    assert "size:     27 -> 6" in res.output and "kendall-tau (shrinker score vs truth" in res.output
    assert "optimum " in res.output


def test_oracle_run_reports_no_tau(tmp_path, toy_cli):
    out = tmp_path / "o"
    res = CliRunner().invoke(cli, [*TOY_SHRINK, "--set", "shrinker.evaluator=oracle", "--out", str(out)],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    data = json.loads((out / "shrunk_space.json").read_text())
    assert data["info"]["scores_are_truth"] is True and data["plan"]["oracle"]
    assert data["report"]["kendall_tau"] is None and "by construction" in data["report"]["kendall_tau_note"]
    assert "kendall-tau: not computed" in res.output


def test_report_flags_scores_equal_to_the_truth(grid):
    """Even without the flag, scores identical to the truth are not a τ of 1 worth reporting."""
    bench = grid.registry.create("benchmark", "planted")
    members = list(itertools.islice(grid.space.enumerate(), 10))
    truth = [bench.query(g)["acc"] for g in members]
    rep = shrink_report(grid.space, ShrunkSpace(members, {"member_scores": truth}), bench, "planted")
    assert rep["kendall_tau"] is None
    noisy = [t + (0.5 if i % 2 else -0.5) for i, t in enumerate(truth)]
    rep = shrink_report(grid.space, ShrunkSpace(members, {"member_scores": noisy}), bench, "planted")
    assert rep["kendall_tau"] == pytest.approx(kendall_tau(noisy, truth), abs=1e-4)


def test_shrink_command_bad_input_exits_2(tmp_path, toy_cli, capsys):
    for args in (["shrink", "--space", "toy-cell", "--out", str(tmp_path / "a")],
                 ["shrink", "--space", "toy-cell", "--shrinker", "lissnas", "--set", "shrinker.evaluator=benchmark",
                  "--out", str(tmp_path / "b")],
                 ["shrink", "--space", "toy-cell", "--shrinker", "lissnas", "--dataset", "toy-images",
                  "--set", "shrinker.target_size=27", "--out", str(tmp_path / "c")]):
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "no shrinker given" in err and "now called 'oracle'" in err
    assert "target (27 members) is not smaller than the space (27)" in err
    assert "Traceback" not in err


def test_run_with_sampling_optimizer_searches_the_pockets(tmp_path):
    out = tmp_path / "r"
    res = CliRunner().invoke(cli, ["run", *TINY_DARTS, "--optimizer", "random", "--set", "optimizer.num_candidates=3",
                                   "--set", "optimizer.eval_batches=1", "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    shrunk = json.loads((out / "shrunk_space.json").read_text())
    members = {Genotype.from_dict(g) for g in shrunk["members"]}
    assert Genotype.load(out / "genotype.json") in members
    summary = json.loads((out / "summary.json").read_text())
    assert summary["shrink"]["method"] == "lissnas" and summary["shrink"]["size"] == len(members) == 6
    act = summary["activity"]
    assert act["optimizer"]["trained_only_members"] is True and act["optimizer"]["candidates_ranked"] == 3
    assert act["shrinker"]["members"] == 6 and act["shrinker"]["pockets"] >= 2
    assert "samples only the 6 members" in act["shrinker"]["search"]


def test_run_with_differentiable_optimizer_returns_a_member(tmp_path):
    out = tmp_path / "d"
    res = CliRunner().invoke(cli, ["run", *TINY_DARTS, "--optimizer", "darts", "--out", str(out)],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    shrunk = json.loads((out / "shrunk_space.json").read_text())
    members = [Genotype.from_dict(g) for g in shrunk["members"]]
    assert Genotype.load(out / "genotype.json") in set(members)
    summary = json.loads((out / "summary.json").read_text())
    sel = summary["activity"]["selector"]
    assert sel["member_constrained"] is True and sel["members"] == len(members)
    assert "trains the union" in summary["activity"]["shrinker"]["search"]


@pytest.mark.parametrize("name", ["lissnas", "op-prune", "random-sample"])
def test_contract_kit(name):
    params = {"lissnas": {"samples": 8, "seeds": 2, "target_size": 5, "min_pockets": 2}, "op-prune": {"samples": 10},
              "random-sample": {"samples": 10, "target_size": 5}}[name]
    out = check_shrinker(name, params)
    assert out.info["method"] == name


# --------------------------------------------------------------------------- evaluators


class _Chain(nn.Module):
    def __init__(self, widths: list[int], bn: bool = False):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in itertools.pairwise(widths):
            layers.append(nn.Linear(a, b, bias=False))
            if bn:
                layers.append(nn.BatchNorm1d(b))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.mark.parametrize("widths", [[6, 4, 3], [6, 5, 4, 3]])
def test_synflow_equals_depth_times_r_for_linear_chains(widths):
    """R = 1ᵀ|W_L|…|W_1|1 is linear in each layer, so Σ θ·∂R/∂θ = L·R (Euler's theorem per layer)."""
    torch.manual_seed(0)
    net = _Chain(widths)
    r = torch.ones(1, widths[0], dtype=torch.float64)
    for m in net.net:
        if isinstance(m, nn.Linear):
            r = r @ m.weight.detach().double().abs().T
    expected = (len(widths) - 1) * float(r.sum())
    assert synflow(net, torch.randn(2, 1, 1, widths[0]), torch.zeros(2, dtype=torch.long)) == pytest.approx(expected)
    with_bn = _Chain(widths, bn=True)
    src = [m for m in net.net if isinstance(m, nn.Linear)]
    dst = [m for m in with_bn.net if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for a, b in zip(src, dst):
            b.weight.copy_(a.weight)
    before = [p.clone() for p in with_bn.parameters()]
    assert synflow(with_bn, torch.randn(2, 1, 1, widths[0]), torch.zeros(2)) == pytest.approx(expected)  # BN removed
    assert all(torch.equal(a, b) for a, b in zip(before, with_bn.parameters()))  # the caller's net is untouched


def test_proxy_and_supernet_evaluators_on_the_toy_space():
    with stage(space="toy-cell", space_params={"ops": ["conv_3x3", "skip_connect", "none"]}) as run:
        space = run.space
        gs = list(space.enumerate())[:5]
        params = make_evaluator("proxy", {"proxy": "params", "log": False}, space, run)
        counts = params(gs)
        assert counts == [float(sum(p.numel() for p in space.build_network(g, run.data.shape).parameters()))
                          for g in gs]
        sup = make_evaluator("supernet", {"steps": 3, "steps_per_iteration": 1, "eval_batches": 1}, space, run)
        sup.new_iteration(space.sample)
        scores = sup(gs)
        assert all(0.0 <= s <= 100.0 for s in scores) and sup.evaluations == 5
        sup.new_iteration(space.sample)  # fine-tuned weights: scores are recomputed
        sup(gs)
        assert sup.evaluations == 10


# --------------------------------------------------------------------------- report metrics


def test_kendall_tau_b_hand_counted():
    """τ-b = (C − D) / √((C + D + Tx)(C + D + Ty)), pairs counted by hand."""
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)  # C = 5, D = 1
    assert kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))  # C = 2, Tx = 1
    assert kendall_tau([3, 2, 1], [1, 2, 3]) == pytest.approx(-1.0)
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3])) and math.isnan(kendall_tau([1], [2]))


def test_pockets_and_diversity_on_known_sets(grid):
    enc = {grid.ops_of(g): g for g in grid.space.enumerate()}
    a6, b6 = enc[("a",) * 6], enc[("b",) * 6]
    a5b = enc[("a",) * 5 + ("b",)]
    members = [a6, a5b, b6]
    comps = pockets(grid.space, members)
    assert comps == [[0, 1], [2]]
    d = distance_matrix(grid.space, members)
    assert d.tolist() == [[0, 1, 6], [1, 0, 5], [6, 5, 0]]
    div = diversity(grid.space, members)
    assert div["mean_distance"] == pytest.approx(4.0)
    assert div["normalised_distance"] == pytest.approx(4 / 6, abs=5e-5)  # reported to 4 decimals
    assert div["op_coverage"] == pytest.approx(12 / 18, abs=5e-5)  # ops a and b on all six rows; c nowhere


def test_report_without_member_scores_has_no_tau(grid):
    bench = grid.registry.create("benchmark", "planted")
    members = list(itertools.islice(grid.space.enumerate(), 10))
    rep = shrink_report(grid.space, ShrunkSpace(members), bench, "planted")
    assert "kendall_tau" not in rep and rep["benchmark"]["metric"] == "acc" and rep["size_before"] == 729


# --------------------------------------------------------------------------- baseline


def test_op_prune_removes_ops_everywhere(grid):
    sh = grid.registry.create("shrinker", {"name": "op-prune", "params": {"samples": 200, "rounds": 1, "seed": 0,
                                                                          "evaluator": "oracle",
                                                                          "score_members": True}})
    out = sh.shrink(grid.space, grid.run)
    pruned = out.info["pruned_ops"]
    assert len(pruned) == 1 and len(out.members) == 2**6
    assert not any(op in pruned for m in out.members for op in m.ops())
    assert out.info["pockets"] == 1 and len(out.info["member_scores"]) == 64
    means = out.info["rounds"][0]["op_means"]
    assert min(means, key=means.get) == pruned[0]
    keep_one = grid.registry.create("shrinker", {"name": "op-prune", "params": {"rounds": 5, "prune_per_round": 2,
                                                                                "evaluator": "oracle"}})
    assert len(keep_one.shrink(grid.space, grid.run).members) == 1  # min_ops=1 keeps one op per edge


def test_op_prune_target_edge_scope_plan_and_refusals(grid):
    sh = grid.registry.create("shrinker", {"name": "op-prune", "params": {
        "evaluator": "oracle", "scope": "edge", "rounds": 20, "target_size": 100, "samples": 60, "seed": 1}})
    plan = sh.plan(grid.space)
    assert plan["target_members"] == 100 and plan["evaluations"] == "<= 1200" and plan["scope"] == "edge"
    out = sh.shrink(grid.space, grid.run)
    assert 100 // 3 < len(out.members) <= 100  # one (edge, op) per round: stops at the first size <= target
    assert all(":" in p for p in out.info["pruned_ops"]) and out.info["evaluations"] <= 1200
    for params, match in [({"target_size": 729}, "not smaller"), ({"min_ops": 3}, "nothing to prune")]:
        with pytest.raises(Exception, match=match):
            grid.registry.create("shrinker", {"name": "op-prune", "params": params}).plan(grid.space)


def test_random_sample_keeps_the_best_scored(grid):
    sh = grid.registry.create("shrinker", {"name": "random-sample", "params": {
        "evaluator": "oracle", "samples": 100, "target_size": 10, "seed": 3}})
    out = sh.shrink(grid.space, grid.run)
    assert len(out.members) == 10 and out.info["evaluations"] == 100 and out.info["drawn"] == 100
    kept = sorted(grid.accuracy(grid.ops_of(g)) for g in out.members)
    assert kept == sorted(out.info["member_scores"]) and out.info["scores_are_truth"] is True
    uniform = grid.registry.create("shrinker", {"name": "random-sample", "params": {
        "rank": False, "target_size": 10, "seed": 3}}).shrink(grid.space, grid.run)
    assert len(uniform.members) == 10 and uniform.info["evaluations"] == 0
    with pytest.raises(Exception, match="cannot fill"):
        grid.registry.create("shrinker", {"name": "random-sample", "params": {"samples": 5, "target_size": 10}}).plan(
            grid.space)


# --------------------------------------------------------------------------- NAS-Bench-201


@pytest.fixture
def nb201():
    reg = get_registry()
    if "nb201" not in reg.names("search_space") or "nb201" not in reg.names("benchmark"):
        pytest.skip("the nb201 space/benchmark (nasfw-space-nb201) is not installed")
    if not NB201_CSV.exists():
        pytest.skip(f"NB201 table not found at {NB201_CSV}")
    return reg


def test_nb201_default_lissnas_shrinks_toward_good_cells(nb201, tmp_path):
    """Defaults (SynFlow, 1 % of the space, 3 pockets) on a small proxy network: the benchmark only scores the
    result. The kept mean is far above the space's, and τ is measured (the proxy is not the truth)."""
    out = tmp_path / "nb201"
    res = CliRunner().invoke(cli, ["shrink", "--space", "nb201", "--shrinker", "lissnas", "--seed", "0",
                                   "--set", 'shrinker.evaluator_params={"network": {"C": 4, "N": 1}}',
                                   "--out", str(out), "--quiet"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "shrunk_space.json").read_text())["report"]
    b = rep["benchmark"]
    assert rep["size_before"] == 15625 and rep["size_after"] == 156 and rep["pockets"] >= 3
    assert b["full_best"] == pytest.approx(94.373, abs=1e-3)
    assert b["mean"] > 91.0 > 88.0 > b["full_mean"]
    assert b["top1pct_recall"] > 0.03  # a random 1 % keeps 0.01 of the top 1 % on average
    assert isinstance(rep["kendall_tau"], float)
