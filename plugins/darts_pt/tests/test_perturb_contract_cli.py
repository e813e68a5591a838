"""The kit's selector contract, the zoo entries, and whole runs through the ``nasfw`` command."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from nasfw.cli import cli
from nasfw.data import DataShape
from nasfw.registry import get_registry
from nasfw.testing import check_selector, check_zoo_entry
from nasfw_darts_pt.zoo import zoo_entries

TINY_DARTS = ["--set", "space.layers=2", "--set", "space.init_channels=4", "--set", "space.steps=3",
              "--set", "space.primitives=[none, max_pool_3x3, skip_connect, sep_conv_3x3]"]


@pytest.mark.parametrize("params", [{"tune_epochs": 1, "tune_steps": 1, "eval_batches": 1},
                                    {"tune_epochs": 0, "edge_order": "sequential", "criterion": "loss"}])
def test_perturb_meets_the_selector_contract(params):
    check_selector("perturb", params)


def test_zoo_cells_are_valid_in_their_spaces():
    reg = get_registry()
    entries = zoo_entries()
    assert len(entries) == 24
    for name in entries:
        check_zoo_entry(name, registry=reg)


def test_zoo_darts_pt_cell_has_the_reference_param_size():
    # the reference's comment on darts_pt_s5_0 is "# 2.85 (param size)": M parameters of the CIFAR-10
    # network, 20 cells / 36 channels, auxiliary head excluded (utils.count_parameters_in_MB)
    entry = get_registry().get("genotype", "darts-pt-s5-0")
    space = get_registry().create("search_space", "darts-7op")
    net = space.build_network(entry.genotype, DataShape(3, 32, 32, 10), C=36, layers=20, auxiliary=True)
    n = sum(p.numel() for name, p in net.named_parameters() if "auxiliary" not in name)
    assert round(n / 1e6, 2) == 2.85


def _run(tmp_path, *args):
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["run", "--out", str(out), "--space", "darts", "--selector", "perturb",
                                   "--epochs", "1", "--batch-size", "16", "--seed", "1", *TINY_DARTS,
                                   "--set", "search.steps_per_epoch=2", "--set", "selector.tune_steps=1",
                                   "--set", "selector.tune_epochs=1", "--set", "selector.eval_batches=1",
                                   "--set", "log.progress=none", "--set", "log.plots=false", *args])
    return res, out


@pytest.mark.parametrize("optimizer", ["darts", "zarts-mgs"])
def test_cli_run_with_perturb_selection(tmp_path, optimizer):
    if optimizer not in get_registry().names("optimizer"):
        pytest.skip(f"optimizer '{optimizer}' is not installed (its plugin provides it)")
    extra = ["--set", "optimizer.update_every=1", "--set", "optimizer.inner_steps=1"] if optimizer != "darts" else []
    res, out = _run(tmp_path, "--optimizer", optimizer, *extra)
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    cells = summary["genotype"]["cells"]
    for cell in ("normal", "reduce"):
        assert sorted(e["node"] for e in cells[cell]) == [2, 2, 3, 3, 4, 4]
    sel = summary["selection"]
    # 'none' is not a candidate (DARTS-PT's space has no 'none'): 3 of the 4 ops scored on each of 9 edges
    assert sel["evaluations"] == 2 * (3 * 9 + 3 + 4 + 3) and sel["forward_batches"] == sel["evaluations"]
    assert summary["activity"]["plan"]["selector"]["evaluations"] == sel["evaluations"]
    act = summary["activity"]["selector"]
    assert act["decisions"] == summary["activity"]["plan"]["selector"]["decisions"] == 2 * (9 + 2)
    assert all(m["op"] != "none" for m in act["made"] if "op" in m)
    assert sel["tune_steps"] == 9 + 2 - 1  # one tuning epoch of one step after each round but the last
    assert sel["seconds"] > 0 and summary["selection_seconds"] >= sel["eval_seconds"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert sum(r["kind"] == "pt_decision" for r in records) == 2 * (9 + 2)


def test_cli_bad_selector_option_exits_2_with_one_line(tmp_path, capsys):
    from nasfw.cli import main

    out = tmp_path / "bad"
    with pytest.raises(SystemExit) as info:
        main(["run", "--out", str(out), "--space", "darts", "--optimizer", "darts", "--selector", "perturb",
              "--set", "selector.criterion=accuracy"])
    assert info.value.code == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.strip()]
    assert len(err) == 1 and "criterion" in err[0] and "perturb" in err[0]
    assert not (out / "checkpoint.pt").exists()


def test_one_hot_pin_makes_a_decided_row_weigh_one_under_any_weighting():
    from nasfw_darts_pt.selector import _OneHotDecided

    class Raw:
        def __call__(self, alpha, mask):
            return alpha * mask

        def strength(self, alpha, mask):
            return alpha

    alpha = torch.tensor([[0.3, -2.0, 0.7], [0.1, 0.2, 0.3]])
    mask = torch.tensor([[False, True, False], [True, True, True]])
    w = _OneHotDecided(Raw())(alpha, mask)
    assert w[0].tolist() == [0.0, 1.0, 0.0]
    assert torch.equal(w[1], alpha[1])
