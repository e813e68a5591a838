"""Reliability: corrupt checkpoints, divergence, unwritable or full output directories, broken plugins."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from click.testing import CliRunner

import nasfw
from nasfw.cli import cli
from nasfw.components import Optimizer
from nasfw.config import merge_config
from nasfw.engine import run_search
from nasfw.errors import CheckpointError, ConfigError, DivergenceError
from nasfw.genotype import Genotype
from nasfw.registry import Registry, set_registry
from nasfw.testing import run_cli

TINY = ["--set", "space.layers=2", "--set", "space.init_channels=4", "--set", "search.steps_per_epoch=3",
        "--set", "search.eval_batches=2", "--batch-size", "16", "--quiet", "--set", "log.plots=false",
        "--set", "log.tensorboard=false"]


def test_truncated_checkpoint_falls_back_to_previous_good_one(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli("run", "--epochs", "2", "--out", str(out), *TINY)[0] == 0
    ref = Genotype.load(out / "genotype.json")
    (out / "summary.json").unlink()
    (out / "genotype.json").unlink()
    data = (out / "checkpoint.pt").read_bytes()
    (out / "checkpoint.pt").write_bytes(data[: len(data) // 3])
    code, _, err = run_cli("run", "--resume", str(out), "--quiet")
    assert code == 0 and "corrupt or truncated" in err and "previous good checkpoint" in err
    assert (out / "checkpoint.corrupt.pt").exists() and Genotype.load(out / "genotype.json") == ref


def test_both_checkpoints_corrupt_is_one_line_exit_2(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli("run", "--epochs", "1", "--out", str(out), *TINY)[0] == 0
    (out / "summary.json").unlink()
    for f in ("checkpoint.pt", "checkpoint.prev.pt"):
        (out / f).write_bytes(b"not a checkpoint")
    code, _, err = run_cli("run", "--resume", str(out))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "corrupt" in err


def test_checkpoint_of_another_format_is_refused(tmp_path):
    from nasfw.checkpoint import load_checkpoint

    torch.save({"weights": torch.zeros(2)}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="not a nasfw checkpoint"):
        load_checkpoint(tmp_path / "checkpoint.pt")


class _Exploding(Optimizer):
    """Trains nothing; its loss turns NaN at the 4th step (a stand-in for a diverging search)."""

    def setup(self, supernet, data, epochs, steps_per_epoch):
        super().setup(supernet, data, epochs, steps_per_epoch)
        self.calls = 0

    def step(self, train_batch, val_batch):
        self.calls += 1
        loss = float("nan") if self.calls >= 4 else 1.0
        return {"loss": loss, "acc": 0.5}


class _ExplodingPlugin:
    @nasfw.hookimpl
    def nasfw_register_optimizers(self, register):
        register("tp-exploding", _Exploding)


class _PoisonsWeights(Optimizer):
    """Its first step writes NaN into a weight while the loss it reports stays finite."""

    def step(self, train_batch, val_batch):
        with torch.no_grad():
            self.supernet.weight_parameters()[0].fill_(float("nan"))
        return {"loss": 1.0, "acc": 0.5}


class _PoisonPlugin:
    @nasfw.hookimpl
    def nasfw_register_optimizers(self, register):
        register("tp-poison", _PoisonsWeights)


def _diverged(plugin: object, name: str, epochs: int, tmp_path, *sets: str) -> str:
    """The DivergenceError message of a tiny run with the optimizer ``name`` of ``plugin``."""
    reg = Registry()
    reg.add_plugin(plugin, name)
    cfg = merge_config(None, {"optimizer": name, "search.epochs": epochs},
                       ["space.layers=2", "space.init_channels=4", "search.steps_per_epoch=3", "search.eval_batches=1",
                        "search.batch_size=16", "log.plots=false", "log.tensorboard=false", *sets])
    with pytest.raises(DivergenceError) as exc:
        run_search(cfg, registry=reg, out_dir=tmp_path / "run", quiet=True)
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_divergence_names_step_and_last_good_checkpoint(tmp_path):
    msg = _diverged(_ExplodingPlugin(), "tp-exploding", 3, tmp_path)
    assert "epoch 2, step 4" in msg and str(tmp_path / "run" / "checkpoint.pt") in msg and "--resume" in msg


def test_non_finite_weights_are_never_checkpointed_and_the_message_says_none_was_written(tmp_path):
    """A NaN weight with a finite loss: the NaN guard does not see it, the checkpoint write refuses it."""
    msg = _diverged(_PoisonPlugin(), "tp-poison", 1, tmp_path, "search.checkpoint_every=1")
    assert "epoch 1, step 1" in msg and "no checkpoint was written yet" in msg and "--resume" not in msg
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_unwritable_output_directory_is_reported_before_search(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli("run", "--out", str(blocker / "run"), *TINY)
    assert code == 2 and "cannot write to output directory" in err and len(err.strip().splitlines()) == 1


def test_full_disk_is_reported_before_search(tmp_path, monkeypatch):
    from nasfw import engine

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(engine.shutil, "disk_usage", lambda p: usage._replace(free=10 * 2**20))
    with pytest.raises(ConfigError, match="MB free"):
        engine.check_writable(tmp_path / "run")


BROKEN_COMPONENT = """
import nasfw

@nasfw.hookimpl
def nasfw_register_selectors(register):
    register("tp-not-a-class", 42)
"""


@pytest.fixture
def broken_site(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    for dist, code in {"tp-crash": "raise ImportError('needs libfoo')", "tp-bad": BROKEN_COMPONENT}.items():
        mod = dist.replace("-", "_")
        info = root / f"{mod}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[nasfw]\n{mod} = {mod}\n")
        (root / f"{mod}.py").write_text(code)
    monkeypatch.syspath_prepend(str(root))
    set_registry(None)
    yield
    set_registry(None)


def test_broken_third_party_plugins_are_reported_and_do_not_break_commands(broken_site, capsys):
    res = CliRunner().invoke(cli, ["plugins", "--json"])
    assert res.exit_code == 0
    failed = {r["distribution"]: r["error"] for r in json.loads(res.output) if r["kind"] == "failed"}
    assert "needs libfoo" in failed["tp-crash"]
    res = CliRunner().invoke(cli, ["plugins"])
    assert "tp-crash" in res.output and "needs libfoo" in res.output
    assert CliRunner().invoke(cli, ["config", "show"]).exit_code == 0
    code, _, err = run_cli("run", "--selector", "tp-not-a-class", *TINY)
    assert code == 2 and "tp-not-a-class" in err and len(err.strip().splitlines()) == 1
