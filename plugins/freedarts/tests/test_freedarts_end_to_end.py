"""``nasfw run --optimizer none --selector snip|grasp|synflow`` end to end on the DARTS and NB201 spaces."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from nasfw.cli import cli
from nasfw.genotype import Genotype
from nasfw.registry import get_registry

SPACES = {
    "darts": ["--set", "space.layers=3", "--set", "space.init_channels=4"],
    "nb201": ["--set", "space.init_channels=4", "--set", "space.cells_per_stage=1"],
}


def _run(tmp_path, space: str, selector: str, *extra: str) -> dict:
    out = tmp_path / f"{space}-{selector}"
    args = ["run", "--space", space, "--optimizer", "none", "--selector", selector, "--batch-size", "16",
            "--quiet", "--out", str(out), *SPACES[space], *extra]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    summary["_genotype"] = Genotype.load(out / "genotype.json")
    return summary


@pytest.mark.parametrize("space", sorted(SPACES))
@pytest.mark.parametrize("selector", ["snip", "grasp", "synflow"])
def test_training_free_selection_end_to_end(tmp_path, space: str, selector: str) -> None:
    if space not in get_registry().names("search_space"):
        pytest.skip(f"space '{space}' is not installed")
    summary = _run(tmp_path, space, selector)
    g = summary["_genotype"]
    sp = get_registry().create("search_space", {"name": space, "params": {}})
    sp.validate_genotype(g)
    assert summary["components"]["selector"]["distribution"] == "nasfw-freedarts"
    assert summary["components"]["optimizer"]["name"] == "none" and summary["search_seconds"] < 5
    assert summary["components"]["edge_weighting"]["name"] == "raw"  # FreeDARTS mixes with α itself
    sal = summary["saliency"]
    assert sal["measure"] == selector
    scores = [x for rows in sal["scores"].values() for row in rows for x in row if x is not None]
    assert scores and all(math.isfinite(x) for x in scores) and any(x != 0 for x in scores)
    act = summary["activity"]["selector"]  # the signal guard's verdict: the selector acted on a real signal
    assert act["measure"] == selector and act["verdict"] == "signal" and act["acted"] is True
    assert act["ratio"] >= act["min_ratio"] and summary["activity"]["plan"]["selector"]["measure"] == selector
    # the selector's choice is the space's discretization of the recorded scores: on every NB201 edge
    # (one op per edge) the chosen op is the arg-max of that edge's finite scores
    if space == "nb201":
        ops = list(sp.config.primitives)
        for edge, row in zip(g.cells["cell"], sal["scores"]["cell"]):
            best = max((x, k) for k, x in enumerate(row) if x is not None)[1]
            assert edge.op == ops[best]


def test_same_seed_same_genotype_and_repeats_average(tmp_path) -> None:
    a = _run(tmp_path / "a", "nb201", "synflow", "--seed", "3")
    b = _run(tmp_path / "b", "nb201", "synflow", "--seed", "3")
    assert a["_genotype"] == b["_genotype"] and a["saliency"] == b["saliency"]
    r = _run(tmp_path / "r", "nb201", "snip", "--set", "selector.repeats=2")
    assert r["saliency"]["measure"] == "snip"


def test_a_trained_supernet_keeps_its_optimizers_weighting(tmp_path) -> None:
    """DARTS trains with softmax; a saliency selector after it must not switch the supernet to raw α."""
    s = _run(tmp_path, "nb201", "synflow", "--optimizer", "darts", "--epochs", "1",
             "--set", "search.steps_per_epoch=2", "--set", "search.eval_batches=1")
    assert s["components"]["optimizer"]["name"] == "darts"
    assert s["components"]["edge_weighting"]["name"] == "softmax"
