"""Multi-process runs under torchrun (gloo on CPU, 2 processes) against the same run in one process.

The 2-process run splits every global batch of 16 into two shards of 8, averages the gradients and (with
``distributed.sync_bn``, the default) normalises train-mode BatchNorm with the statistics of the whole batch,
so it takes the one-process steps up to floating-point rounding: the sums are reduced in another order and
the BN variance is E[x²]−E[x]² instead of PyTorch's kernel. Measured on this machine after 2 epochs × 3
steps of first-order DARTS: max |Δα| ≈ 2e-9 after epoch 1 and ≈ 7e-7 after epoch 2 (Adam's m/√v magnifies
rounding in near-zero gradient entries); ``ALPHA_TOL`` = 1e-5 leaves room for other CPUs. The genotypes are
equal. With ``sync_bn=false`` (per-shard statistics) the α gradients of this 4-channel supernet differ by
~50% at initialisation, which is why sync BN is the default.
"""

from __future__ import annotations

import json
import os
import shutil
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

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="torch.distributed with the gloo backend is not available")

# layers=3 has one normal cell between the two reduction cells, so both α tensors get gradients
TINY = ["--set", "space.layers=3", "--set", "space.init_channels=4", "--set", "search.steps_per_epoch=3",
        "--set", "search.eval_batches=2", "--batch-size", "16", "--quiet", "--set", "log.plots=false",
        "--set", "log.tensorboard=false", "--device", "cpu"]
#: max |α(2 processes) − α(1 process)|, see the module docstring for the measured values
ALPHA_TOL = 1e-5


def torchrun(n: int, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}",
           "-m", "nasfw", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


def one_process(*args: str) -> str:
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def last_alphas(run_dir: Path) -> dict[str, torch.Tensor]:
    rec = [json.loads(line) for line in (run_dir / "alphas.jsonl").read_text().splitlines()][-1]
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in rec["alphas"].items()}


def alpha_gap(a: Path, b: Path) -> float:
    x, y = last_alphas(a), last_alphas(b)
    assert set(x) == set(y)
    return max(float((x[k] - y[k]).abs().max()) for k in x)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The one-process, 2-epoch first-order DARTS run the multi-process runs are compared with."""
    out = tmp_path_factory.mktemp("ref") / "one"
    one_process("run", "--epochs", "2", *TINY, "--out", str(out))
    return out


def test_two_process_darts_search_matches_one_process(reference, tmp_path):
    one, two = reference, tmp_path / "two"
    res = torchrun(2, "run", "--epochs", "2", *TINY, "--out", str(two))
    assert res.stdout.count("genotype:") == 1  # rank 0 reports, once
    assert Genotype.load(two / "genotype.json") == Genotype.load(one / "genotype.json")
    gap = alpha_gap(one, two)
    print(f"max |alpha_2proc - alpha_1proc| = {gap:.3g}")
    assert gap <= ALPHA_TOL
    summary = json.loads((two / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 6
    m1, m2 = ([json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()] for d in (one, two))
    assert [r["kind"] for r in m2] == [r["kind"] for r in m1]  # rank 0 logged once, as one process does
    assert abs(m2[-1]["train_loss"] - m1[-1]["train_loss"]) <= 1e-4  # the averaged loss of the global batch


def test_one_process_checkpoint_resumes_under_two_processes(reference, tmp_path):
    """The checkpoint holds no world size: stop a 1-process run after epoch 1, finish it with 2 processes."""
    run = tmp_path / "run"
    one_process("run", "--epochs", "1", *TINY, "--out", str(run))
    # the end-of-epoch-1 checkpoint (phase search) is the previous one; the cosine lr of epoch 0 does not
    # depend on the number of epochs, so this is the state a 2-epoch run has after epoch 1
    state = load_checkpoint(run / "checkpoint.prev.pt")
    assert state["phase"] == "search" and state["epoch"] == 1
    shutil.copy(run / "checkpoint.prev.pt", run / "checkpoint.pt")
    for f in ("summary.json", "genotype.json"):
        (run / f).unlink()
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["search"]["epochs"] = 2
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    torchrun(2, "run", "--resume", str(run), "--quiet", "--force")  # --force: config.yaml now says 2 epochs
    assert Genotype.load(run / "genotype.json") == Genotype.load(reference / "genotype.json")
    assert alpha_gap(run, reference) <= ALPHA_TOL
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()
              if json.loads(line).get("kind") == "epoch"]
    assert epochs == [1, 2]  # the log was truncated to the checkpoint and continued once


def test_two_process_zarts_with_perturb_selection_matches_one_process(tmp_path):
    """Zero-order α steps (shared perturbations, averaged losses) and DARTS-PT decisions across 2 ranks."""
    args = ["run", "--epochs", "1", *TINY, "--space", "s2", "--optimizer", "zarts-mgs", "--selector", "perturb",
            "--set", "optimizer.warmup_epochs=0", "--set", "optimizer.inner_steps=1",
            "--set", "optimizer.update_every=1", "--set", "optimizer.num_samples=2",
            "--set", "optimizer.inner_batch_size=16", "--set", "selector.tune_epochs=0",
            "--set", "selector.tune_epochs_after_last=1", "--set", "selector.tune_steps=1",
            "--set", "selector.update_alpha=false", "--set", "selector.eval_batches=1"]
    one, two = tmp_path / "one", tmp_path / "two"
    one_process(*args, "--out", str(one))
    torchrun(2, *args, "--out", str(two))
    # the engine checks after every epoch that both ranks hold the same supernet (DistributedError otherwise)
    s1, s2 = (json.loads((d / "summary.json").read_text()) for d in (one, two))
    assert s2["selection"]["decisions"] == s1["selection"]["decisions"] > 0
    assert Genotype.load(two / "genotype.json") == Genotype.load(one / "genotype.json")
    assert alpha_gap(one, two) <= ALPHA_TOL
    d1, d2 = ([r for r in map(json.loads, (d / "metrics.jsonl").read_text().splitlines())
               if r.get("kind") == "pt_decision"] for d in (one, two))
    assert [r["chosen"] for r in d2 if "chosen" in r] == [r["chosen"] for r in d1 if "chosen" in r]


def test_two_process_eval_writes_one_summary_and_matches_one_process(tmp_path):
    args = ["eval", "darts-v2", "--protocol", "quick", "--set", "epochs=1", "--set", "steps_per_epoch=3",
            "--device", "cpu", "--json", "--quiet"]
    one, two = tmp_path / "one", tmp_path / "two"
    one_process(*args, "--out", str(one))
    res = torchrun(2, *args, "--out", str(two))
    assert res.stdout.count('"params"') == 1  # one report, from rank 0
    s1, s2 = (json.loads((d / "summary.json").read_text()) for d in (one, two))
    assert s2["world_size"] == 2 and s2["finished"]
    assert len((two / "metrics.jsonl").read_text().splitlines()) == 1
    assert abs(s2["final"]["train_loss"] - s1["final"]["train_loss"]) <= 1e-4
    assert abs(s2["final_test_acc"] - s1["final_test_acc"]) <= 1e-2


def test_a_selector_that_is_not_distributed_runs_on_rank_0_alone(tmp_path):
    """SNIP scores one labelled batch; under torchrun rank 0 scores the whole batch (as one process does)
    and broadcasts the genotype, so the result is exactly the one-process one."""
    args = ["run", *TINY, "--optimizer", "none", "--selector", "snip", "--set", "selector.batch_size=16"]
    one, two = tmp_path / "one", tmp_path / "two"
    one_process(*args, "--out", str(one))
    torchrun(2, *args, "--out", str(two))
    assert Genotype.load(two / "genotype.json") == Genotype.load(one / "genotype.json")
    s1, s2 = (json.loads((d / "summary.json").read_text()) for d in (one, two))
    # the same scores up to float32 rounding (the processes' thread pools sum in another order)
    for cell, rows in s1["saliency"]["scores"].items():
        top = max(abs(v) for r in rows for v in r)
        for r1, r2 in zip(rows, s2["saliency"]["scores"][cell], strict=True):
            assert r2 == pytest.approx(r1, rel=1e-5, abs=1e-5 * top)
