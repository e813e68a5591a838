"""`nasfw shrink`, `nasfw run --shrinker lissnas`, the contract kit, evaluators (synflow's closed form,
weight sharing), the report's metrics, the op-prune baseline, and NB201 (skipped without the table)."""

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
from nasfw.shrink_cmd import distance_matrix, diversity, kendall_tau, pockets, shrink_report
from nasfw.testing import check_shrinker, stage, toy_registry
from nasfw_lissnas.evaluators import make_evaluator, synflow

NB201_CSV = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "nb201_nats_tss_acc" / "nats_bench.csv"
TINY_DARTS = ["--space", "darts", "--set", "space.layers=2", "--set", "space.init_channels=4",
              "--set", "search.steps_per_epoch=2", "--set", "search.eval_batches=1", "--batch-size", "16",
              "--epochs", "1", "--quiet", "--shrinker", "lissnas", "--set", "shrinker.evaluator=proxy",
              "--set", 'shrinker.evaluator_params={"network": {"C": 4, "layers": 2, "auxiliary": false}}',
              "--set", "shrinker.samples=5", "--set", "shrinker.seeds=2", "--set", "shrinker.neighbours_per_seed=2",
              "--set", "shrinker.max_iterations=1", "--set", "log.plots=false", "--set", "log.tensorboard=false"]


@pytest.fixture
def toy_cli():
    old = get_registry()
    set_registry(toy_registry())
    yield
    set_registry(old)


# --------------------------------------------------------------------------- CLI and engine


def test_shrink_command_reports_and_saves(tmp_path, toy_cli):
    out = tmp_path / "s"
    res = CliRunner().invoke(cli, ["shrink", "--space", "toy-cell", "--shrinker", "lissnas", "--dataset", "toy-images",
                                   "--set", "shrinker.samples=8", "--set", "shrinker.seeds=2", "--out", str(out),
                                   "--quiet"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    data = json.loads((out / "shrunk_space.json").read_text())
    rep = data["report"]
    assert rep["size_before"] == 27 and rep["size_after"] == len(data["members"]) < 27
    assert rep["pockets"] >= 1 and 0 < rep["diversity"]["op_coverage"] <= 1
    assert rep["benchmark"]["name"] == "toy-table" and rep["benchmark"]["metric"] == "val_acc"
    assert rep["benchmark"]["mean"] > rep["benchmark"]["full_mean"]
    assert rep["kendall_tau"] == pytest.approx(1.0)  # the evaluator is the same table
    assert "size:     27 ->" in res.output and "kendall-tau" in res.output
    assert (out / "config.yaml").exists()


def test_shrink_command_bad_input_exits_2(tmp_path, toy_cli, capsys):
    for args in (["shrink", "--space", "toy-cell", "--out", str(tmp_path / "a")],
                 ["shrink", "--space", "toy-cell", "--shrinker", "lissnas", "--set", "shrinker.evaluator=oracle",
                  "--out", str(tmp_path / "b")]):
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "no shrinker given" in err and "unknown evaluator 'oracle'" in err


def test_run_with_sampling_optimizer_searches_the_pockets(tmp_path):
    out = tmp_path / "r"
    res = CliRunner().invoke(cli, ["run", *TINY_DARTS, "--optimizer", "random", "--set", "optimizer.num_candidates=3",
                                   "--set", "optimizer.eval_batches=1", "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    shrunk = json.loads((out / "shrunk_space.json").read_text())
    members = {Genotype.from_dict(g) for g in shrunk["members"]}
    assert Genotype.load(out / "genotype.json") in members
    summary = json.loads((out / "summary.json").read_text())
    assert summary["shrink"]["method"] == "lissnas" and summary["shrink"]["size"] == len(members)


def test_run_with_differentiable_optimizer_gets_the_projection(tmp_path):
    out = tmp_path / "d"
    with pytest.warns(UserWarning, match="re-expands"):
        res = CliRunner().invoke(cli, ["run", *TINY_DARTS, "--optimizer", "darts", "--out", str(out)],
                                 catch_exceptions=False)
    assert res.exit_code == 0, res.output
    reg = get_registry()
    space = reg.create("search_space", {"name": "darts", "params": {"layers": 2, "init_channels": 4}})
    shrunk = json.loads((out / "shrunk_space.json").read_text())
    mask = ShrunkSpace([Genotype.from_dict(g) for g in shrunk["members"]]).op_mask(space)
    assert space.restrict(mask).contains(Genotype.load(out / "genotype.json"))


@pytest.mark.parametrize("name", ["lissnas", "op-prune"])
def test_contract_kit(name):
    params = {"samples": 8, "seeds": 2} if name == "lissnas" else {"samples": 10}
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
    sh = grid.registry.create("shrinker", {"name": "op-prune", "params": {"samples": 200, "rounds": 1, "seed": 0}})
    out = sh.shrink(grid.space, grid.run)
    pruned = out.info["pruned_ops"]
    assert len(pruned) == 1 and len(out.members) == 2**6
    assert not any(op in pruned for m in out.members for op in m.ops())
    assert out.info["pockets"] == 1 and len(out.info["member_scores"]) == 64
    means = out.info["rounds"][0]["op_means"]
    assert min(means, key=means.get) == pruned[0]
    keep_one = grid.registry.create("shrinker", {"name": "op-prune", "params": {"rounds": 5, "prune_per_round": 2}})
    assert len(keep_one.shrink(grid.space, grid.run).members) == 1  # min_ops=1 keeps one op per edge


# --------------------------------------------------------------------------- NAS-Bench-201


@pytest.fixture
def nb201():
    reg = get_registry()
    if "nb201" not in reg.names("search_space") or "nb201" not in reg.names("benchmark"):
        pytest.skip("the nb201 space/benchmark (nasfw-space-nb201) is not installed")
    if not NB201_CSV.exists():
        pytest.skip(f"NB201 table not found at {NB201_CSV}")
    return reg


def test_nb201_lissnas_beats_operational_pruning(nb201, tmp_path):
    reports = {}
    for name in ("lissnas", "op-prune"):
        out = tmp_path / name
        res = CliRunner().invoke(cli, ["shrink", "--space", "nb201", "--shrinker", name, "--seed", "0",
                                       "--out", str(out), "--quiet"], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        reports[name] = json.loads((out / "shrunk_space.json").read_text())["report"]
    lis, op = reports["lissnas"], reports["op-prune"]
    assert lis["size_before"] == 15625 and lis["benchmark"]["full_best"] == pytest.approx(94.373, abs=1e-3)
    assert lis["benchmark"]["mean"] > 93.0 > lis["benchmark"]["full_mean"]
    assert lis["benchmark"]["mean"] > op["benchmark"]["mean"]
    assert lis["pockets"] >= 2 and lis["kendall_tau"] == pytest.approx(1.0)
