"""The speed switches (``performance.*``) on CPU: bf16 autocast and channels-last searches run and stay
close to fp32; with every flag off two runs are bit-identical; compile is opt-in (slow to build on CPU)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from nasfw.cli import cli
from nasfw.genotype import Genotype

TINY = ["--set", "space.layers=2", "--set", "space.init_channels=4", "--set", "search.steps_per_epoch=3",
        "--set", "search.eval_batches=1", "--batch-size", "8", "--epochs", "1", "--quiet",
        "--set", "log.tensorboard=false", "--set", "log.plots=false"]


def search(out: Path, *flags: str) -> tuple[dict[str, torch.Tensor], dict]:
    res = CliRunner().invoke(cli, ["run", "--out", str(out), *TINY, *flags], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    last = json.loads((out / "alphas.jsonl").read_text().splitlines()[-1])
    alphas = {k: torch.tensor(v) for k, v in last["alphas"].items()}
    Genotype.load(out / "genotype.json")
    return alphas, json.loads((out / "summary.json").read_text())


def test_flags_off_runs_are_bit_identical(tmp_path) -> None:
    a, _ = search(tmp_path / "a")
    b, _ = search(tmp_path / "b", "--set", "performance.channels_last=false", "--set", "performance.bf16=false",
                  "--set", "performance.compile=false")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_channels_last_matches_fp32_search(tmp_path) -> None:
    a, _ = search(tmp_path / "plain")
    b, _ = search(tmp_path / "cl", "--set", "performance.channels_last=true")
    for k in a:  # a few Adam steps of size ~3e-4: different conv algorithms move α by rounding only
        assert torch.allclose(a[k], b[k], rtol=0, atol=1e-5), (k, (a[k] - b[k]).abs().max())


def test_bf16_autocast_search_is_finite_and_close(tmp_path) -> None:
    a, fp32 = search(tmp_path / "fp32")
    b, bf16 = search(tmp_path / "bf16", "--set", "performance.bf16=true")
    assert all(torch.isfinite(v).all() for v in b.values())
    assert all(0 <= bf16["final"][k] <= 1 for k in ("train_acc", "val_acc"))
    # the forward really ran in bf16 (the loss moved), yet stayed close to fp32
    l32, l16 = fp32["final"]["train_loss"], bf16["final"]["train_loss"]
    assert l32 != l16 and abs(l32 - l16) < 0.05 * l32, (l32, l16)
    for k in a:  # Adam's first steps follow the gradients' signs, which bf16 rarely flips
        assert torch.allclose(a[k], b[k], rtol=0, atol=3e-3)


@pytest.mark.skipif(os.environ.get("NASFW_TEST_COMPILE") != "1",
                    reason="torch.compile builds C++ kernels for minutes on a CPU; set NASFW_TEST_COMPILE=1 to run")
def test_compiled_cells_match_eager(tmp_path) -> None:
    a, _ = search(tmp_path / "eager", "--space", "nb201", "--set", "space.cells_per_stage=1")
    b, _ = search(tmp_path / "compiled", "--space", "nb201", "--set", "space.cells_per_stage=1",
                  "--set", "performance.compile=true")
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=0, atol=1e-5)
