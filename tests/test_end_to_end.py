"""``nasfw run`` end to end on the embedded digits dataset: outputs, summary, second order, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from nasfw.checkpoint import load_checkpoint
from nasfw.cli import cli
from nasfw.genotype import Genotype

TINY = ["--set", "space.layers=2", "--set", "space.init_channels=4", "--set", "search.steps_per_epoch=3",
        "--set", "search.eval_batches=2", "--batch-size", "16", "--quiet"]


def nasfw(*args: str) -> str:
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def test_first_order_run_writes_every_output(tmp_path):
    out = tmp_path / "run"
    text = nasfw("run", "--epochs", "2", "--out", str(out), *TINY)
    assert "genotype: Genotype(normal=[(" in text and str(out) in text
    for f in ("config.yaml", "metrics.jsonl", "alphas.jsonl", "checkpoint.pt", "genotype.json", "summary.json"):
        assert (out / f).exists(), f
    summary = json.loads((out / "summary.json").read_text())
    g = Genotype.load(out / "genotype.json")
    assert summary["genotype"] == g.model_dump(mode="json") and g.space == "darts"
    assert len(g.cells["normal"]) == 8 and len(g.cells["reduce"]) == 8  # 4 nodes x 2 inputs
    assert all(e.op != "none" for e in g.cells["normal"])
    for key in ("search_seconds", "selection_seconds", "seed", "components", "final"):
        assert key in summary
    assert {"train_acc", "val_acc"} <= set(summary["final"])
    assert summary["components"]["optimizer"]["distribution"] == "nasfw-darts"
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["space"]["params"]["layers"] == 2 and config["optimizer"]["params"]["w_lr"] == 0.025
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in epochs if r.get("kind") == "epoch"] == [1, 2]
    alphas = [json.loads(line) for line in (out / "alphas.jsonl").read_text().splitlines()]
    assert len(alphas) == 2 and set(alphas[0]["alphas"]) == {"normal", "reduce"}


def test_second_order_one_epoch(tmp_path):
    out = tmp_path / "run2"
    nasfw("run", "--optimizer", "darts-2nd", "--epochs", "1", "--out", str(out), *TINY)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["components"]["optimizer"]["name"] == "darts-2nd"


def test_config_file_is_reusable(tmp_path):
    out = tmp_path / "a"
    nasfw("run", "--epochs", "1", "--out", str(out), *TINY)
    again = tmp_path / "b"
    nasfw("run", "--config", str(out / "config.yaml"), "--out", str(again), "--quiet")
    assert Genotype.load(out / "genotype.json") == Genotype.load(again / "genotype.json")


def _records(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for r in rows:
        r.pop("seconds", None)
    return rows


_KILL_AT_SECOND_CHECKPOINT = """
import os, signal, sys
import nasfw.engine as engine
from nasfw.cli import main

save, calls = engine.save_atomic, []


def save_or_die(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    save(*args, **kwargs)


engine.save_atomic = save_or_die
main(sys.argv[1:])
"""


@pytest.mark.parametrize("optimizer", ["darts", "darts-2nd"])
def test_sigkill_then_resume_matches_uninterrupted(tmp_path, optimizer):
    """Kill -9 mid-search (after some checkpoint), resume, and end exactly where an uninterrupted run ends."""
    args = ["--optimizer", optimizer, "--epochs", "2", "--set", "search.checkpoint_every=1",
            "--set", "deterministic=true", "--set", "log.tensorboard=false", "--set", "log.plots=false", *TINY]
    ref = tmp_path / "ref"
    nasfw("run", "--out", str(ref), *args)

    killed = tmp_path / "killed"
    # the same thread count as this process: CPU kernels round differently with another one, and the
    # resumed run (in this process) must end bit-identical to the reference (also in this process)
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    # kill -9 from inside, deterministically: when the second checkpoint is about to be written (a parent that
    # polls for the first file and then kills may find the run already finished on a loaded machine)
    proc = subprocess.run([sys.executable, "-c", _KILL_AT_SECOND_CHECKPOINT, "run", "--out", str(killed), *args],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (killed / "checkpoint.pt").exists() and not (killed / "summary.json").exists()
    nasfw("run", "--resume", str(killed), "--quiet")

    assert Genotype.load(ref / "genotype.json") == Genotype.load(killed / "genotype.json")
    a = load_checkpoint(ref / "checkpoint.pt")["supernet"]
    b = load_checkpoint(killed / "checkpoint.pt")["supernet"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert _records(ref / "metrics.jsonl") == _records(killed / "metrics.jsonl")
    assert _records(ref / "alphas.jsonl") == _records(killed / "alphas.jsonl")
