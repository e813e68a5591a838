"""Smoke test of studies/nb201/run_study.py: two methods, one seed, a tiny protocol on real CIFAR-10 JPEGs."""

from __future__ import annotations

import csv
import importlib.util
import math
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "studies" / "nb201" / "run_study.py"
ARCHIVE = REPO.parent / "shared" / "data" / "cifar10_jpeg" / "CIFAR-10-images_jpeg.tar.gz"
UNPACKED = REPO / ".data" / "CIFAR-10-images"  # where the study's README unpacks the archive
TABLE = REPO.parent / "shared" / "data" / "nb201_nats_tss_acc" / "nats_bench.csv"


def _tiny_image_folder(root: Path, train_per_class: int = 8, test_per_class: int = 1) -> Path:
    """A few real JPEGs per class: from the unpacked tree when there is one, else out of the archive."""
    want = {"train": train_per_class, "test": test_per_class}
    if UNPACKED.is_dir():
        for split, n in want.items():
            for cls in sorted(p for p in (UNPACKED / split).iterdir() if p.is_dir()):
                (root / split / cls.name).mkdir(parents=True)
                for f in sorted(cls.glob("*.jpg"))[:n]:
                    shutil.copyfile(f, root / split / cls.name / f.name)
        return root
    counts: dict[tuple[str, str], int] = {}
    with tarfile.open(ARCHIVE, "r:gz") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) < 4 or parts[-3] not in want:
                continue
            key = (parts[-3], parts[-2])
            if counts.get(key, 0) >= want[parts[-3]]:
                continue
            counts[key] = counts.get(key, 0) + 1
            dest = root / parts[-3] / parts[-2] / parts[-1]
            dest.parent.mkdir(parents=True, exist_ok=True)
            fh = tar.extractfile(member)
            assert fh is not None
            dest.write_bytes(fh.read())
            if len(counts) == 20 and all(counts[k] >= want[k[0]] for k in counts):
                break
    return root


@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory) -> Path:
    if not ARCHIVE.exists() and not UNPACKED.is_dir():
        pytest.skip(f"CIFAR-10 JPEGs not found (neither {ARCHIVE} nor {UNPACKED})")
    return _tiny_image_folder(tmp_path_factory.mktemp("cifar") / "images")


def _study_module():
    spec = importlib.util.spec_from_file_location("nb201_run_study", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shuffled_folder_split_mixes_classes(tiny_images, tmp_path, monkeypatch):
    """ImageFolder lists images class by class; the study's split must still give w and α every class."""
    from nasfw.registry import Registry

    monkeypatch.setenv("NASFW_CACHE", str(tmp_path / "cache"))
    study = _study_module()
    registry = Registry()
    registry.add_plugin(study.StudyPlugin(), "nb201-study-test")
    ds = registry.create("dataset", {"name": study.SHUFFLED_DATASET, "params": {"data_dir": str(tiny_images)}})
    a, b = ds.splits(0), ds.splits(1)
    assert len(a.train) == len(a.val) == 40 and len(a.test) == 10
    assert len(set(a.train.labels.tolist())) >= 8 and len(set(a.val.labels.tolist())) >= 8
    assert a.train.labels.tolist() == b.train.labels.tolist()  # one fixed order, independent of the run seed


def _study(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120)


def test_missing_data_is_one_line(tmp_path):
    res = _study("--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "runs"), "--methods", "darts",
                 env=dict(os.environ))
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "no CIFAR-10 images" in res.stderr


def test_study_table_has_a_row_per_method(tiny_images, tmp_path):
    data = tiny_images
    env = {**os.environ, "NASFW_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    results = tmp_path / "results.csv"
    res = _study("--protocol", "cpu", "--methods", "darts,snip", "--seeds", "0", "--data-dir", str(data),
                 "--in-process", "--out", str(tmp_path / "runs"), "--results", str(results),
                 "--set", "search.epochs=1", "--set", "search.steps_per_epoch=2", "--set", "search.batch_size=16",
                 "--set", "search.eval_batches=1", "--set", "dataset.resize=8", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    rows = list(csv.DictReader(results.open()))
    assert [r["method"] for r in rows] == ["darts", "snip"]
    for r in rows:
        assert r["seeds_done"] == "1" and r["seeds_failed"] == "0", r
        assert len(r["cells"].split("+")) == 3  # one NB201 cell string per seed
        assert 0.0 <= float(r["param_free_share"]) <= 1.0
        assert math.isfinite(float(r["method_seconds_mean"])) and float(r["peak_rss_mb_max"]) > 0
        if TABLE.exists():
            for d in ("cifar10", "cifar100", "imagenet16-120"):
                assert 0.0 < float(r[f"{d}_mean"]) < 100.0, (d, r)
    per_run = list(csv.DictReader(results.with_name("results_runs.csv").open()))
    assert len(per_run) == 2 and all(r["cell"].startswith("|") for r in per_run)
    markdown = results.with_suffix(".md").read_text()
    assert markdown.count("\n| ") >= 2
