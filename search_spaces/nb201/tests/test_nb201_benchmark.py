"""The nb201 benchmark: CSV lookups (shared table and a synthetic one), the official-API path, and a run."""

from __future__ import annotations

import csv
import json
import sys
import types
from pathlib import Path

import pytest

from nasfw.config import build_config
from nasfw.engine import run_search
from nasfw.errors import DataError
from nasfw.testing import check_benchmark
from nasfw_space_nb201 import NB201Benchmark, NB201Space
from nasfw_space_nb201 import benchmark as bm

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "nb201_nats_tss_acc"
SHARED_CSV = SHARED / "nats_bench.csv"
needs_table = pytest.mark.skipif(not SHARED_CSV.is_file(), reason=f"NB201 table not present at {SHARED_CSV}")
HEADER = ["CIFAR10TestAccuracy200Epochs", "CIFAR100TestAccuracy200Epochs", "ImageNetTestAccuracy200Epochs",
          "ArchitectureString", "UniqueString"]


def synthetic_table(path: Path) -> dict[str, tuple[float, float, float]]:
    """A complete table in the shared CSV's layout with made-up, cell-specific accuracies."""
    space = NB201Space()
    rows = {}
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for i, g in enumerate(space.enumerate()):
            s = space.format(g)
            accs = (50 + i / 1000, 20 + i / 2000, 10 + i / 4000)
            rows[s] = accs
            w.writerow([*accs, s, "x"])
    return rows


@needs_table
def test_nb201_every_cell_of_the_shared_table_is_found():
    space = NB201Space()
    table = bm.load_table(SHARED)
    assert len(table) == 15_625
    found = {space.format(g) for g in space.enumerate()}
    assert found == set(table)
    with SHARED_CSV.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    b = NB201Benchmark(NB201Benchmark.Config(path=str(SHARED)))
    for i in (0, 6111, 9930, 857, 15_624):  # first, the three optima named in the data README, last
        r = b.query(space.parse(rows[i]["ArchitectureString"]))
        assert r["index"] == i
        assert r["cifar10_test_acc"] == float(rows[i]["CIFAR10TestAccuracy200Epochs"])
        assert r["imagenet16-120_test_acc"] == float(rows[i]["ImageNetTestAccuracy200Epochs"])
    best = max(table.values(), key=lambda t: t[1]["cifar10"])
    assert best[0] == 6111 and round(best[1]["cifar10"], 2) == 94.37


@needs_table
def test_nb201_benchmark_contract_kit():
    check_benchmark(NB201Benchmark, {"path": str(SHARED)})


def test_nb201_benchmark_reads_a_csv_once_and_looks_up_by_string(tmp_path, monkeypatch):
    rows = synthetic_table(tmp_path / "t.csv")
    b = NB201Benchmark(NB201Benchmark.Config(path=str(tmp_path / "t.csv")))
    space = NB201Space()
    g = space.parse("|skip_connect~0|+|nor_conv_1x1~0|none~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|")
    r = b.query(g)
    assert (r["cifar10_test_acc"], r["cifar100_test_acc"], r["imagenet16-120_test_acc"]) == rows[space.format(g)]
    calls = []
    monkeypatch.setattr(bm.csv, "DictReader", lambda *a, **k: calls.append(1) or iter(()))
    assert b.query(g) == r and not calls  # cached: the file is not parsed again


def test_nb201_benchmark_env_var_and_missing_file(tmp_path, monkeypatch):
    synthetic_table(tmp_path / "nats_bench.csv")
    monkeypatch.setenv(bm.ENV_VAR, str(tmp_path))
    g = NB201Space().sample(__import__("random").Random(1))
    assert NB201Benchmark().query(g)["cifar10_test_acc"] >= 50
    monkeypatch.setenv(bm.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"nowhere.*NASFW_NB201_TABLE"):
        NB201Benchmark().query(g)


def test_nb201_benchmark_rejects_wrong_columns(tmp_path):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="missing column"):
        NB201Benchmark(NB201Benchmark.Config(path=str(tmp_path / "bad.csv"))).query(NB201Space().parse(
            "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"))


def test_nb201_official_api_is_built_once_and_queried_at_200_epochs(tmp_path, monkeypatch):
    built, queries = [], []

    class FakeAPI:
        def __init__(self, path: str, verbose: bool = True):
            built.append(path)

        def query_index_by_arch(self, arch: str) -> int:
            return 42

        def get_more_info(self, index, dataset, iepoch=None, hp="12", is_random=True):
            queries.append((index, dataset, hp, is_random))
            return {"test-accuracy": {"cifar10": 93.0, "cifar100": 70.0, "ImageNet16-120": 44.0}[dataset]}

    monkeypatch.setitem(sys.modules, "nas_201_api", types.SimpleNamespace(NASBench201API=FakeAPI))
    pth = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
    pth.write_bytes(b"x")
    b = NB201Benchmark(NB201Benchmark.Config(api_file=str(pth)))
    g = NB201Space().parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|")
    assert b.query(g) == {"index": 42, "cifar10_test_acc": 93.0, "cifar100_test_acc": 70.0,
                          "imagenet16-120_test_acc": 44.0}
    NB201Benchmark(NB201Benchmark.Config(api_file=str(pth))).query(g)
    assert len(built) == 1
    assert {(hp, rnd) for _, _, hp, rnd in queries} == {("200", False)}


def test_nb201_missing_official_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        NB201Benchmark(NB201Benchmark.Config(api_file=str(tmp_path / "no.pth"))).query(
            NB201Space().parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"))


def test_nb201_short_search_reports_true_accuracies_in_summary(tmp_path, monkeypatch):
    rows = synthetic_table(tmp_path / "nats_bench.csv")
    monkeypatch.setenv(bm.ENV_VAR, str(tmp_path))
    cfg = build_config({
        "space": {"name": "nb201", "params": {"init_channels": 4, "cells_per_stage": 1}},
        "optimizer": "darts", "selector": "magnitude", "dataset": "digits",
        "search": {"epochs": 1, "batch_size": 16, "steps_per_epoch": 3},
    })
    _, summary = run_search(cfg, out_dir=tmp_path / "run", quiet=True)
    assert summary["benchmark"]["name"] == "nb201"
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    bench = written["benchmark"]
    assert bench["name"] == "nb201"
    arch = written["genotype_str"]
    assert (bench["cifar10_test_acc"], bench["cifar100_test_acc"], bench["imagenet16-120_test_acc"]) == rows[arch]
