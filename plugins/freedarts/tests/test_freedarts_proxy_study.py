"""A reduced run of scripts/nb201_proxy_study.py on real NB201 cells, and the published cells' sizes.

The study needs ../shared/data (the NB201 table, NASLib's zero-cost subset, the CIFAR-10 JPEGs) and skips
without it. It checks our proxies against independent numbers: NASLib's parameter counts and SynFlow scores
of the same cells, and the NB201 test accuracy.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from nasfw.data import DataShape
from nasfw.registry import get_registry
from nasfw_freedarts.scoring import rank_correlations

PLUGIN = Path(__file__).resolve().parents[1]
DATA = PLUGIN.parents[1].parent / "shared" / "data"
NEEDED = [DATA / "nb201_nats_tss_acc" / "nats_bench.csv", DATA / "naslib_zc_subsets" / "nb201_zc_subset.csv",
          DATA / "cifar10_jpeg" / "CIFAR-10-images_jpeg.tar.gz"]
MISSING = [str(p) for p in NEEDED if not p.exists()]


def _load_study():
    spec = importlib.util.spec_from_file_location("freedarts_nb201_proxy_study", PLUGIN / "scripts" /
                                                  "nb201_proxy_study.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(bool(MISSING), reason=f"shared data not found: {', '.join(MISSING)}")
@pytest.mark.skipif("nb201" not in get_registry().names("search_space"), reason="nb201 space not installed")
def test_reduced_proxy_study_on_40_nb201_cells(tmp_path):
    study = _load_study()
    assert study.main(["--archs", "40", "--proxies", "synflow,params", "--batch-size", "16",
                       "--out", str(tmp_path)]) == 0
    rows = list(study.read_rows(tmp_path / "nb201_proxy_study.csv").values())
    assert len(rows) == 40 == len({r["arch"] for r in rows})
    # our NB201 network is NASLib's: same parameter count for every cell (NASLib stores millions)
    for r in rows:
        assert r["params"] / 1e6 == pytest.approx(r["naslib_params"], abs=1e-6), r["arch"]
    # NASLib stores log(SynFlow); an independent implementation with its own init must rank the cells alike
    agree = rank_correlations(rows, "naslib_synflow", ["synflow"])["synflow"]
    assert agree["n"] == 40 and agree["spearman"] > 0.9
    corr = rank_correlations(rows, "test_acc", ["synflow", "params"])
    assert all(math.isfinite(c["spearman"]) and c["n"] == 40 for c in corr.values())
    # published over all 15,625 cells: 0.74; 40 cells give a rough estimate, but it must be clearly positive
    assert corr["synflow"]["spearman"] > 0.4
    assert "| synflow | 40 |" in (tmp_path / "nb201_proxy_study.md").read_text()


@pytest.mark.skipif(bool(MISSING), reason=f"shared data not found: {', '.join(MISSING)}")
@pytest.mark.skipif("nb201" not in get_registry().names("search_space"), reason="nb201 space not installed")
def test_uniform_cells_come_from_the_whole_space_with_their_accuracy(tmp_path):
    study = _load_study()
    cells = study.uniform_cells(200, seed=0)
    acc = study.load_accuracies()
    assert len(acc) == 15625 and len({c["arch"] for c in cells}) == 200
    assert all(acc[c["arch"]] == c["test_acc"] for c in cells)
    naslib = {c["arch"] for c in study.load_cells()}
    # 724 of 15,625 cells are in NASLib's subset: a uniform sample holds few of them (expected 9.3 of 200)
    assert sum(c["arch"] in naslib for c in cells) < 30
    assert study.main(["--cells", "uniform", "--archs", "3", "--proxies", "params", "--batch-size", "4",
                       "--out", str(tmp_path)]) == 0
    assert "uniform over all 15,625" in (tmp_path / "nb201_proxy_study_uniform.md").read_text()


@pytest.mark.skipif("darts" not in get_registry().names("search_space"), reason="darts space not installed")
@pytest.mark.parametrize(("name", "C", "classes", "logged_mb"), [
    ("freedarts-synflow-20cells-seed1", 38, 10, 3.65),  # CIFAR-10 log of FreeDARTS† (C=38, 20 cells)
    ("freedarts-synflow-20cells-seed1", 38, 100, 3.70),  # its CIFAR-100 log
    ("freedarts-synflow-imagenet-seed3", 36, 10, 4.14),  # CIFAR-10 log of FreeDARTS‡ (C=36, 20 cells)
])
def test_published_cells_have_the_logged_parameter_sizes(name, C, classes, logged_mb):
    from nasfw_space_darts.network import count_parameters  # the DARTS count: auxiliary head excluded

    reg = get_registry()
    entry = reg.get("genotype", name)
    space = reg.create("search_space", entry.genotype.space)
    net = space.build_network(entry.genotype, DataShape(3, 32, 32, classes), C=C, layers=20, auxiliary=True)
    assert round(count_parameters(net) / 1e6, 2) == logged_mb
