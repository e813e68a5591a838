"""End to end through the CLI: each ZARTS optimizer on a tiny DARTS space and the digits data."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from nasfw.cli import cli, main

TINY = ["--space", "darts-7op", "--set", "space.layers=2", "--set", "space.init_channels=4",
        "--set", "search.epochs=1", "--set", "search.steps_per_epoch=2", "--set", "search.batch_size=8",
        "--set", "search.eval_batches=1", "--set", "optimizer.warmup_epochs=0", "--set", "optimizer.inner_steps=1",
        "--set", "optimizer.update_every=1", "--set", "optimizer.num_samples=1",
        "--set", "optimizer.inner_batch_size=8"]


@pytest.mark.parametrize("name,extra", [("zarts-mgs", []), ("zarts-rs", []),
                                        ("zarts-gld", ["--set", "optimizer.num_radii=2"])])
def test_zarts_cli_run(tmp_path, name: str, extra: list[str]) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "--out", str(out), "--optimizer", name, *TINY, *extra])
    assert result.exit_code == 0, result.output
    assert (out / "genotype.json").exists() and (out / "summary.json").exists()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    updates = [r for r in records if r.get("kind") == "zarts"]
    assert len(updates) == 2  # one α update per weight step with update_every=1
    epoch = [r for r in records if r.get("kind") == "epoch"][-1]
    assert epoch["alpha_updates"] == 2.0
    alphas = [json.loads(line) for line in (out / "alphas.jsonl").read_text().splitlines()]
    assert alphas and "normal" in alphas[-1]["alphas"]


@pytest.mark.parametrize("option,value", [("num_samples", "0"), ("inner_split", "test"), ("precedence", "maybe"),
                                          ("tau", "-1"), ("no_such_option", "1")])
def test_zarts_bad_option_is_one_line_error(tmp_path, capsys, option: str, value: str) -> None:
    """The real entry point (as the shell calls it): a NasfwError becomes one line on stderr and exit 2."""
    with pytest.raises(SystemExit) as exc:
        main(["run", "--out", str(tmp_path / "bad"), "--optimizer", "zarts-mgs",
              "--set", f"optimizer.{option}={value}"])
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and option in lines[0] and "zarts-mgs" in lines[0], err


def test_zarts_with_perturb_selector_tunes_between_decisions(tmp_path) -> None:
    """DARTS-PT fine-tunes through configure_tuning; ZARTS keeps updating α while edges are undecided and skips
    its updates (no oracle call) once every edge is decided (the node rounds of S2)."""
    from nasfw.registry import get_registry

    if "perturb" not in get_registry().names("selector"):
        pytest.skip("the DARTS-PT plugin (nasfw-darts-pt, selector 'perturb') is not installed")
    out = tmp_path / "pt"
    args = ["run", "--out", str(out), "--optimizer", "zarts-gld", "--selector", "perturb", *TINY,
            "--space", "s2", "--set", "optimizer.num_radii=2", "--set", "selector.tune_epochs=1",
            "--set", "selector.tune_steps=2", "--set", "selector.eval_batches=1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    tunes = [r for r in records if r.get("kind") == "pt_tune"]
    assert len(tunes) == 14 + 3 - 1 and all(r["tune_lr"] == 0.0025 for r in tunes)
    # rounds 0-12 leave undecided edges (2 updates per 2-step tuning epoch); after the 14th op round (13) none
    assert [r["alpha_updates"] for r in tunes] == [2.0] * 13 + [0.0] * 3
    act = json.loads((out / "summary.json").read_text())["activity"]["optimizer"]
    assert act["alpha_updates_tuning"] == 26 and act["alpha_updates_skipped_nothing_to_decide"] == 6


def test_paper_presets_set_the_authors_protocol_on_every_space() -> None:
    """--preset paper: the scripts' absolute schedule (σ₀ 0.2 on S1-S4), GLD's radii left to the space; the
    DARTS-PT paper preset on top keeps its own tuning protocol and the fixed-α variant stays fixed."""
    from nasfw.presets import merge_with_preset
    from nasfw.registry import get_registry

    reg = get_registry()
    mgs, _ = merge_with_preset("paper", flags={"space": "darts-7op", "optimizer": "zarts-mgs"}, registry=reg)
    p = mgs.optimizer.params
    assert (p["warmup_epochs"], p["inner_steps"], p["update_every"], p["std"], p["inner_grad_clip"]) == \
        (10, 10, 10, 0.025, 5.0)
    assert (mgs.search.epochs, mgs.search.batch_size, mgs.space.params["layers"]) == (50, 64, 8)
    s2, _ = merge_with_preset("paper", flags={"space": "s2", "optimizer": "zarts-mgs"}, registry=reg)
    assert s2.optimizer.params["std"] == 0.2
    nb, _ = merge_with_preset("paper", flags={"space": "nb201", "optimizer": "zarts-gld"}, registry=reg)
    assert nb.optimizer.params["baseline"] == "plain" and nb.optimizer.params["num_radii"] is None
    if "perturb" in reg.names("selector"):
        pt, _ = merge_with_preset("paper", flags={"space": "nb201", "optimizer": "zarts-gld",
                                                  "selector": "perturb-fixed-alpha"}, registry=reg)
        assert pt.selector.params["tune_epochs"] == 5 and pt.selector.params["tune_epochs_before_last"] == 4
        assert pt.selector.params["update_alpha"] is False
