"""DARTS' warm-up as a share of the run, its plan and refusal, the α-update count in the activity block, and
the paper presets (DARTS' own protocol on its space, NAS-Bench-201's on nb201)."""

from __future__ import annotations

import json

import pytest

from nasfw import testing as kit
from nasfw.budget import Budget
from nasfw.errors import ConfigError
from nasfw.presets import merge_with_preset
from nasfw.registry import get_registry
from nasfw_darts.optimizer import DartsOptimizer

TINY = ["--space", "darts", "--set", "space.layers=3", "--set", "space.init_channels=4", "--set", "space.steps=2",
        "--batch-size", "16", "--set", "search.steps_per_epoch=2", "--set", "search.eval_batches=1",
        "--set", "log.tensorboard=false", "--set", "log.plots=false", "--quiet"]


@pytest.mark.parametrize(("span", "epochs", "warm"), [(0, 4, 0), (2, 4, 2), (0.5, 4, 2), (0.2, 50, 10), ("25%", 4, 1),
                                                       (0.2, 4, 1), (0.1, 4, 0)])
def test_warmup_is_a_count_or_a_share_of_the_search(span, epochs, warm) -> None:
    opt = DartsOptimizer(DartsOptimizer.Config(warmup_epochs=span))
    assert opt.warmup(epochs) == warm
    plan = opt.plan(Budget(epochs, 3))
    assert plan["warmup_epochs"] == warm and plan["alpha_updates"] == (epochs - warm) * 3


def test_warmup_as_long_as_the_search_is_refused() -> None:
    opt = DartsOptimizer(DartsOptimizer.Config(warmup_epochs=4))
    with pytest.raises(ConfigError, match=r"^optimizer.warmup_epochs: a warm-up of 4 epochs leaves no α update in a "
                                          r"4-epoch search; give a fraction"):
        opt.plan(Budget(4, 10))
    with pytest.raises(ConfigError):
        DartsOptimizer(DartsOptimizer.Config(warmup_epochs=1.0)).plan(Budget(3, 1))


def test_refused_run_is_one_line_exit_2_and_leaves_no_directory(tmp_path) -> None:
    out = tmp_path / "run"
    code, _, err = kit.run_cli("run", *TINY, "--epochs", "2", "--set", "optimizer.warmup_epochs=2", "--out", str(out))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "optimizer.warmup_epochs" in err and "--epochs" in err
    assert not out.exists()


def test_alpha_updates_in_the_activity_block_match_the_plan(tmp_path) -> None:
    out = tmp_path / "run"
    code, stdout, err = kit.run_cli("run", *TINY, "--epochs", "2", "--set", "optimizer.warmup_epochs=0.5",
                                    "--out", str(out))
    assert code == 0, err
    act = json.loads((out / "summary.json").read_text())["activity"]
    assert act["plan"]["optimizer"]["alpha_updates"] == 2 == act["optimizer"]["alpha_updates"]  # 1 of 2 epochs
    assert act["optimizer"]["warmup_epochs"] == 1
    assert all(v > 0 for v in act["optimizer"]["alpha_abs_change"].values())
    assert act["selector"]["decisions"] == 8 and act["selector"]["ties"] == 0  # 2 cells x 2 nodes x 2 inputs
    assert "activity: optimizer: alpha_updates=2" in stdout


def test_paper_presets_follow_the_space() -> None:
    reg = get_registry()
    darts, _ = merge_with_preset("paper", flags={"optimizer": "darts-2nd"}, registry=reg)
    assert darts.optimizer.name == "darts-2nd" and darts.optimizer.params["w_weight_decay"] == 3e-4
    assert (darts.search.epochs, darts.search.batch_size, darts.seed) == (50, 64, 2)
    assert (darts.space.params["layers"], darts.space.params["init_channels"]) == (8, 16)
    nb, _ = merge_with_preset("paper", flags={"space": "nb201", "optimizer": "darts"}, registry=reg)
    assert nb.optimizer.params["w_weight_decay"] == 5e-4 and nb.search.epochs == 50
    assert (nb.space.params["init_channels"], nb.space.params["cells_per_stage"]) == (16, 5)
    rnd, _ = merge_with_preset("paper", flags={"space": "nb201", "optimizer": "random"}, registry=reg)
    assert (rnd.optimizer.params["num_candidates"], rnd.search.epochs) == (100, 250)
    validated = reg.resolve("optimizer", darts.optimizer)[2]
    assert validated.unrolled is True  # the paper preset keeps darts-2nd second order
