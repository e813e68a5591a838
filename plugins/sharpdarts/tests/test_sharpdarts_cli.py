"""End to end through the CLI on digits: sharp + sharpdarts, hypercuboid, and sharpdarts on the DARTS space."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest
import yaml
from click.testing import CliRunner

from nasfw.cli import cli, main
from nasfw.genotype import Genotype
from nasfw_sharpdarts.schedule import cosine_power_annealing

FAST = ["--set", "search.steps_per_epoch=1", "--set", "search.eval_batches=1", "--batch-size", "8", "--quiet"]
TINY_CELLS = ["--set", "space.layers=2", "--set", "space.init_channels=4", *FAST]


def nasfw(*args: str) -> str:
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def epoch_lrs(out) -> list[float]:
    """The weight learning rate of every search epoch, from metrics.jsonl."""
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["train_lr"] for r in rows if r.get("kind") == "epoch"]


def test_sharp_space_with_sharpdarts_optimizer(tmp_path):
    out = tmp_path / "sharp"
    nasfw("run", "--space", "sharp", "--optimizer", "sharpdarts", "--epochs", "2", "--out", str(out), *TINY_CELLS,
          "--set", "optimizer.lr_schedule.params.warmup_epochs=0")
    g = Genotype.load(out / "genotype.json")
    assert g.space == "sharp" and len(g.cells["normal"]) == 8
    from nasfw_sharpdarts.spaces import SHARP_PRIMITIVES

    assert {e.op for c in g.cells.values() for e in c} <= set(SHARP_PRIMITIVES) - {"none"}
    config = yaml.safe_load((out / "config.yaml").read_text())
    opt = config["optimizer"]
    assert opt["name"] == "sharpdarts"
    # the preset's defaults are in the saved config: Max-W, CPA p=2, 0.025 -> 1e-4, first order
    params = opt["params"]
    assert params["edge_weighting"]["name"] == "max-w" and params["unrolled"] is False
    assert params["lr_schedule"]["name"] == "cosine-power" and params["lr_schedule"]["params"]["exponent"] == 2.0
    # the epochs' lr follows CPA over 2 epochs: lr_max, then lr_min
    want = [cosine_power_annealing(e, 2, 0.025, 1e-4, 2.0) for e in (1, 2)]
    assert epoch_lrs(out) == pytest.approx(want) and want == pytest.approx([0.025, 1e-4])


def test_sharpdarts_optimizer_on_darts_space_with_warmup(tmp_path):
    out = tmp_path / "darts"
    nasfw("run", "--space", "darts", "--optimizer", "sharpdarts", "--epochs", "24", "--out", str(out), *TINY_CELLS)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["components"]["optimizer"]["distribution"] == "nasfw-sharpdarts"
    assert Genotype.load(out / "genotype.json").space == "darts"
    # the warm-up is the paper's 5 of 120 epochs, scaled: 1 of 24, a ramp over epochs 1-2, then annealing
    lrs = epoch_lrs(out)
    assert len(lrs) == 24 and lrs[:2] == pytest.approx([1e-4 + (0.025 - 1e-4) / 2, 0.025])
    assert all(a > b for a, b in pairwise(lrs[1:])) and lrs[-1] == pytest.approx(1e-4)


def test_hypercuboid_search_end_to_end(tmp_path):
    out = tmp_path / "hc"
    nasfw("run", "--space", "hypercuboid", "--optimizer", "sharpdarts", "--epochs", "1", "--out", str(out),
          "--set", "space.init_channels=4", "--set", "space.steps=2", "--set", "space.layers=4",
          "--set", "space.head_channels=8", *FAST)
    g = Genotype.load(out / "genotype.json")
    assert g.space == "hypercuboid" and len(g.cells["grid"]) == 4
    edges = sorted(g.cells["grid"], key=lambda e: e.node)
    chans = [tuple(int(c) for c in e.op.split("@")[1].split("-")) for e in edges]
    assert all(a[1] == b[0] for a, b in pairwise(chans))  # a connected path


def test_sharper_space_validates_and_bad_option_is_exit_2(tmp_path, capsys):
    shown = yaml.safe_load(nasfw("config", "show", "--space", "sharper", "--optimizer", "sharpdarts"))
    from nasfw_sharpdarts.spaces import SHARPER_PRIMITIVES

    assert shown["space"]["params"]["primitives"] == SHARPER_PRIMITIVES
    assert shown["optimizer"]["params"]["edge_weighting"]["name"] == "max-w"
    with pytest.raises(SystemExit) as exc:  # the shell's entry point: one line on stderr, exit 2
        main(["run", "--space", "sharp", "--optimizer", "sharpdarts", "--out", str(tmp_path / "bad"),
              "--set", "optimizer.lr_schedule.params.exponent=0.5", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and "exponent" in err[0], err
