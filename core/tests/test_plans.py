"""Plans before the work: a component that cannot act is refused before any search or shrink work (one line,
exit 2, nothing left behind), declared-meaningless pairs are refused, the progress display covers nested phases
with an ETA, and batch-statistics evaluation leaves the BN running statistics alone."""

from __future__ import annotations

import io
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import pytest
import torch

from nasfw import hookimpl
from nasfw import testing as kit
from nasfw.budget import Budget, refuse
from nasfw.components import Shrinker
from nasfw.config import ComponentRef, LogSettings, RunConfig, SearchSettings
from nasfw.engine import execute, frozen_bn_stats, prepare
from nasfw.errors import ConfigError
from nasfw.runlog import Progress

CALLS: list[str] = []


class _Refusing(kit.KitSGD):
    def plan(self, budget: Budget) -> dict[str, Any]:
        CALLS.append(f"plan {budget.epochs}x{budget.steps_per_epoch}")
        raise refuse("optimizer.warmup", f"a warm-up of 9 epochs leaves nothing in {budget.epochs}", "use 0.2")

    def setup(self, *args: Any) -> None:
        CALLS.append("setup")
        super().setup(*args)


class _Planning(kit.KitSGD):
    def plan(self, budget: Budget) -> dict[str, Any]:
        return {"alpha_updates": budget.steps}


class _ShrinkCounter(Shrinker):
    def shrink(self, space: Any, run: Any) -> Any:
        CALLS.append("shrink")
        raise AssertionError("never reached")


class _Plugin:
    @hookimpl
    def nasfw_register_optimizers(self, register: Any) -> None:
        register("t-refusing", _Refusing)
        register("t-planning", _Planning)

    @hookimpl
    def nasfw_register_shrinkers(self, register: Any) -> None:
        register("t-shrink", _ShrinkCounter)


@pytest.fixture
def reg():
    r = kit.toy_registry(load_entrypoints=False)
    r.add_plugin(_Plugin(), "test-plans")
    return r


def _config(optimizer: str, **kw: Any) -> RunConfig:
    return RunConfig(space=ComponentRef(name="toy-cell"), optimizer=ComponentRef(name=optimizer),
                     selector=ComponentRef(name=kw.pop("selector", "kit-strongest")),
                     shrinker=ComponentRef(name=kw["shrinker"]) if kw.get("shrinker") else None,
                     dataset=ComponentRef(name="toy-images"), device="cpu",
                     search=SearchSettings(epochs=kw.get("epochs", 2), batch_size=8, steps_per_epoch=3,
                                           eval_batches=1),
                     log=LogSettings(progress="none", tensorboard=True, plots=False))


def test_refusal_comes_before_setup_and_shrinking_and_removes_the_new_directory(reg, tmp_path) -> None:
    CALLS.clear()
    out = tmp_path / "run"
    run = prepare(_config("t-refusing", shrinker="t-shrink"), reg, out, quiet=True)
    assert (out / "config.yaml").exists()
    with pytest.raises(ConfigError, match=r"^optimizer.warmup: a warm-up of 9 epochs leaves nothing in 2; use 0.2$"):
        execute(run)
    assert CALLS == ["plan 2x3"]  # no setup, no shrinking
    assert not out.exists()


def test_refusal_leaves_an_existing_directory_as_it_was(reg, tmp_path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    run = prepare(_config("t-refusing"), reg, out, quiet=True)
    with pytest.raises(ConfigError):
        execute(run)
    assert (out / "notes.txt").read_text() == "keep me"


def test_declared_meaningless_pairs_are_refused(reg, tmp_path) -> None:
    run = prepare(_config("none"), reg, tmp_path / "a", quiet=True)
    with pytest.raises(ConfigError, match=r"^selector: 'kit-strongest' reads what a search learned, but optimizer "
                                          r"'none' does not search; use a training optimizer"):
        execute(run)
    run = prepare(_config("kit-sgd", epochs=0), reg, tmp_path / "b", quiet=True)
    with pytest.raises(ConfigError, match=r"^search.epochs: optimizer 'kit-sgd' trains the supernet but the search "
                                          r"has 0 epochs"):
        execute(run)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_plan_is_recorded_and_shown(reg, tmp_path) -> None:
    cfg = _config("t-planning")
    cfg.log.progress = "plain"
    err = io.StringIO()
    with redirect_stderr(err):
        run = prepare(cfg, reg, tmp_path / "r")
        summary = execute(run)
    text = err.getvalue()
    assert "plan: search: epochs=2, steps_per_epoch=3, weight_steps=6" in text
    assert "plan: optimizer t-planning: alpha_updates=6" in text
    assert "ETA: " in text and "s/step measured; search" in text
    assert "search: 6/6 done in" in text
    assert summary["activity"]["plan"]["optimizer"] == {"alpha_updates": 6}
    assert all(v > 0 for v in summary["activity"]["optimizer"]["alpha_abs_change"].values())


def test_plain_progress_nests_phases_and_reports_an_eta() -> None:
    err = io.StringIO()
    p = Progress("plain", interval=0.0)
    with redirect_stderr(err):
        with p.phase("select", total=2):
            with p.phase("tune", total=4):
                for _ in range(4):
                    p.advance("loss=1")
            p.advance()
            p.advance()
        p.advance()  # no open phase: ignored
    lines = err.getvalue().splitlines()
    assert any("tune: 3/4, eta" in ln and "loss=1" in ln for ln in lines)
    assert any("tune: 4/4 done in" in ln for ln in lines) and any("select: 2/2 done in" in ln for ln in lines)
    assert any("select: 2/2, eta 0s" in ln for ln in lines)


def test_batch_statistics_evaluation_keeps_the_running_statistics() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.Flatten(),
                              torch.nn.LazyLinear(2))
    net(torch.randn(4, 1, 6, 6))
    bn = net[1]
    before = (bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked))
    net.train()
    with frozen_bn_stats(net), torch.no_grad():
        out = net(torch.randn(8, 1, 6, 6) * 5 + 3)
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1])
    assert int(bn.num_batches_tracked) == before[2] and bn.momentum == 0.1
    assert torch.isfinite(out).all()
    with torch.no_grad():
        net(torch.randn(8, 1, 6, 6) * 5 + 3)
    assert not torch.equal(bn.running_mean, before[0])  # outside the context BN updates again


def test_search_validation_bn_mode_is_logged(reg, tmp_path: Path) -> None:
    for mode in ("batch", "running"):
        cfg = _config("kit-sgd", epochs=1)
        cfg.search.val_bn = mode
        cfg.log.progress = "plain"
        err = io.StringIO()
        with redirect_stderr(err):
            execute(prepare(cfg, reg, tmp_path / mode))
        assert f"search.val_bn={mode}" in err.getvalue()
