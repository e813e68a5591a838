"""``nasfw sweep``: grids of tiny digits searches on the local and Ray backends, the shipped RobustDARTS sweep,
and bad sweep files."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import yaml

from nasfw.cli import _resolved
from nasfw.config import merge_config
from nasfw.sweep import expand, load_sweep, ray_available, run_sweep
from nasfw.testing import run_cli

TINY_BASE = {
    "space": {"name": "darts", "params": {"layers": 2, "init_channels": 4}},
    "search": {"epochs": 1, "batch_size": 16, "steps_per_epoch": 2, "eval_batches": 1},
    "device": "cpu",
    "log": {"progress": "none", "tensorboard": False, "plots": False},
}


def _table(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _sweep_file(tmp_path: Path, grid: dict, name: str = "tiny") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "base": TINY_BASE, "grid": grid}))
    return path


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # trial processes share the 2 CPU cores


def test_local_sweep_one_row_per_trial_and_a_failing_trial_does_not_stop_the_others(tmp_path, capsys):
    # two searches and one invalid cell (steps_per_epoch must be >= 1): it fails in its own process, with its
    # one-line error in the table, and the two searches still finish
    path = _sweep_file(tmp_path, {"seed": [0, 1], "search.steps_per_epoch": [2]}, "ok")
    path_bad = tmp_path / "bad.yaml"
    path_bad.write_text(yaml.safe_dump({"name": "bad", "base": TINY_BASE,
                                        "grid": {"search.steps_per_epoch": [1, 0]}}))
    out = tmp_path / "sweep"
    code, stdout, _ = run_cli("sweep", str(path), "--backend", "local", "--parallel", "2", "--out", str(out))
    assert code == 0 and "2/2 trials ok" in stdout
    rows = _table(out)
    assert [r["seed"] for r in rows] == ["0", "1"] and all(r["status"] == "ok" for r in rows)
    for r in rows:
        summary = json.loads((Path(r["out"]) / "summary.json").read_text())
        assert summary["seed"] == int(r["seed"]) and r["genotype"] == summary["genotype_str"]
        assert float(r["val_acc"]) == pytest.approx(summary["final"]["val_acc"])
    out2 = tmp_path / "sweep-bad"
    code, stdout, _ = run_cli("sweep", str(path_bad), "--backend", "local", "--parallel", "2",
                            "--out", str(out2))
    assert code == 1 and "1/2 trials ok" in stdout
    rows = _table(out2)
    assert [r["status"] for r in rows] == ["ok", "failed"]
    assert rows[1]["error"].startswith("Error: invalid setting 'search.steps_per_epoch'")
    assert "\n" not in rows[1]["error"] and rows[1]["genotype"] == ""
    assert (Path(rows[0]["out"]) / "genotype.json").exists() and int(rows[0]["search.steps_per_epoch"]) == 1


@pytest.mark.skipif(not ray_available(), reason="Ray is not installed (pip install 'nasfw[ray]')")
def test_ray_sweep_two_trials_on_a_local_instance(tmp_path):
    spec, _ = load_sweep(str(_sweep_file(tmp_path, {"seed": [0, 1]})))
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    rows = run_sweep(spec, tmp_path / "sweep", backend="ray", num_cpus=2, quiet=True)
    assert [r["status"] for r in rows] == ["ok", "ok"], rows
    table = _table(tmp_path / "sweep")
    assert [r["trial"] for r in table] == [r["trial"] for r in rows] and len(table) == 2
    assert all(Path(r["out"], "summary.json").exists() for r in table)


def test_robustdarts_sweep_expands_to_36_valid_runs(tmp_path, capsys):
    spec, _ = load_sweep("robustdarts")
    trials = expand(spec, tmp_path)
    assert len(trials) == 4 * 3 * 3 and len({t.name for t in trials}) == 36
    combos = {(t.params["space"], t.params["dataset"], t.params["seed"]) for t in trials}
    assert combos == {(s, d, seed) for s in ("s1", "s2", "s3", "s4") for d in ("cifar10", "cifar100", "svhn")
                      for seed in (1, 2, 3)}
    for t in trials[:: 7]:  # every config validates, components included (no data needed)
        cfg = _resolved(merge_config(None, None, [*t.overrides, "dataset.data_dir=/data"], base=dict(spec.base)))
        assert cfg.optimizer.name == "darts-2nd" and cfg.optimizer.params["unrolled"] is True
        assert cfg.search.epochs == 50 and cfg.search.batch_size == 64
        assert cfg.space.params["layers"] == 8 and cfg.space.params["init_channels"] == 16
        assert cfg.dataset.params["data_dir"] == "/data"
    code, stdout, _ = run_cli("sweep", "robustdarts", "--dry-run", "--set", "dataset.data_dir=/data")
    assert code == 0 and stdout.startswith("robustdarts: 36 trials")
    assert len(stdout.strip().splitlines()) == 37 and "--set dataset.data_dir=/data" in stdout


@pytest.mark.parametrize("text, message", [
    ("grid: {seed: []}", "has no values"),
    ("gird: {seed: [1]}", "'gird': unknown key"),
    ("name: x", "empty grid"),
    ("grid: [1, 2]", "'grid'"),
    ("grid: {seed: [1]\n", "not valid YAML"),
])
def test_bad_sweep_file_is_one_line_exit_2(tmp_path, capsys, text, message):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    code, _, err = run_cli("sweep", str(path), "--dry-run")
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err


def test_unknown_sweep_name_lists_the_shipped_ones(capsys):
    code, _, err = run_cli("sweep", "no-such-sweep")
    assert code == 2 and "shipped sweeps: robustdarts" in err
