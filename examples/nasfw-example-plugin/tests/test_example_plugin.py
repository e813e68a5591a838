"""The example plugin: contracts through nasfw.testing, the published MobileNetV2 parameter count, the
Gumbel-max sampler's distribution, and ``nasfw run`` / ``nasfw plugins`` through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

pytest.importorskip("nasfw_example", reason="nasfw-example-plugin is not installed "
                                            "(pip install ./examples/nasfw-example-plugin)")

from nasfw import testing as kit
from nasfw.cli import cli, main
from nasfw.data import DataShape
from nasfw.errors import GenotypeError
from nasfw.genotype import Genotype, GenotypeEdge
from nasfw.registry import get_registry
from nasfw_example.selector import gumbel_scores, sampling_log_probs
from nasfw_example.space import CELL, TINY, InvertedResidual, MobileChainConfig, MobileChainSpace

TINY_RUN = ["--dataset", "digits", "--epochs", "1", "--batch-size", "16", "--quiet", "--device", "cpu",
            "--set", "search.steps_per_epoch=2", "--set", "search.eval_batches=1", "--set", "log.tensorboard=false",
            "--set", "log.plots=false"]
FAST_SELECT = ["--set", "selector.num_samples=3", "--set", "selector.eval_batches=1"]

#: MobileNetV2 1.0 (Sandler et al., 2018) as a genotype of this space: every layer k3 e6.
MOBILENET_V2 = {"stem_channels": 32, "stem_stride": 2, "first_channels": 16, "widths": [24, 32, 64, 96, 160, 320],
                "depths": [2, 3, 4, 3, 3, 1], "strides": [2, 2, 2, 1, 2, 1], "last_channels": 1280}


def _space(params: dict | None = None) -> MobileChainSpace:
    sp = MobileChainSpace(MobileChainConfig(**(params or {})))
    sp.name = "mbv2"
    return sp


def _all(sp: MobileChainSpace, op: str) -> Genotype:
    n = len(sp.layer_specs())
    return Genotype(space=sp.name, cells={CELL: [GenotypeEdge(node=i + 1, input=i, op=op) for i in range(n)]})


def _run(*args: str) -> str:
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def _need(kind: str, name: str, dist: str) -> None:
    if name not in get_registry().names(kind):
        pytest.skip(f"{kind.replace('_', ' ')} '{name}' is not registered yet (plugin {dist} not installed)")


# -- contracts -------------------------------------------------------------------------------


def test_example_space_contract() -> None:
    kit.check_search_space("mbv2-tiny", network_options={"dropout": 0.2})


def test_example_selector_contract() -> None:
    kit.check_selector("sample-best", {"num_samples": 4, "eval_batches": 1})


def test_example_selector_contract_on_mobile_space() -> None:
    kit.check_selector("sample-best", {"num_samples": 4, "eval_batches": 1}, space="mbv2-tiny")


# -- the space against closed forms and published numbers ------------------------------------


def test_example_space_layout_and_size() -> None:
    sp = _space()
    specs = sp.layer_specs()
    assert len(specs) == 21  # ProxylessNAS: 4+4+4+4+4+1 searchable layers
    with_skip = sum(1 for s in specs if "skip" in s[3])
    assert with_skip == 15  # every layer but the first of each of the 6 stages keeps its shape
    assert sp.size() == 7**15 * 6**6
    tiny = _space(TINY)
    assert tiny.size() == 7 * 7 * 6 * 7  # 8->8 s1 (skip ok), 8->8, 8->16 s2 (no skip), 16->16
    assert sum(1 for _ in tiny.enumerate()) == tiny.size()


def _block_params(c_in: int, c_out: int, k: int, e: int) -> int:
    """Closed form: expand 1x1 (+BN) if e != 1, depthwise kxk (+BN), project 1x1 (+BN)."""
    h = c_in * e
    expand = (c_in * h + 2 * h) if e != 1 else 0
    return expand + (k * k * h + 2 * h) + (h * c_out + 2 * c_out)


@pytest.mark.parametrize("k,e", [(3, 3), (5, 6), (7, 3), (3, 1)])
def test_example_block_parameter_count_closed_form(k: int, e: int) -> None:
    block = InvertedResidual(24, 40, 2, k, e)
    assert sum(p.numel() for p in block.parameters()) == _block_params(24, 40, k, e)
    x = torch.randn(2, 24, 9, 9)
    assert block(x).shape == (2, 40, 5, 5)


def test_example_mobilenet_v2_published_parameter_count() -> None:
    """The all-k3_e6 genotype in MobileNetV2's layout is MobileNetV2 1.0: 3,504,872 parameters on ImageNet
    (the count torchvision publishes for mobilenet_v2; the paper rounds it to 3.4M)."""
    sp = _space(MOBILENET_V2)
    net = sp.build_network(_all(sp, "k3_e6"), DataShape(3, 224, 224, 1000), dropout=0.2)
    assert sum(p.numel() for p in net.parameters()) == 3_504_872
    net.eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_example_skip_layers_drop_out_of_the_network() -> None:
    sp = _space(TINY)
    shape = DataShape(1, 8, 8, 10)
    g = sp.parse("k3_e3-skip-k5_e6-skip")
    n_skip = sum(p.numel() for p in sp.build_network(g, shape).parameters())
    g2 = sp.parse("k3_e3-k3_e3-k5_e6-skip")
    n_full = sum(p.numel() for p in sp.build_network(g2, shape).parameters())
    assert n_full - n_skip == _block_params(8, 8, 3, 3)


def test_example_skip_where_shape_changes_is_rejected() -> None:
    sp = _space(TINY)
    with pytest.raises(GenotypeError):
        sp.parse("k3_e3-k3_e3-skip-skip")  # layer 3 goes 8 -> 16 with stride 2
    with pytest.raises(GenotypeError):
        sp.parse("k3_e3-k3_e3")


# -- the sampler ------------------------------------------------------------------------------


def test_example_gumbel_max_samples_the_categorical() -> None:
    """argmax(log p + G) ~ Categorical(p): empirical frequencies match p within 4 standard errors."""
    w = torch.tensor([[0.5, 0.3, 0.2, 0.0], [1.0, 1.0, 2.0, 0.0]])
    avail = torch.tensor([[True, True, True, False], [True, True, True, True]])
    log_p = sampling_log_probs(w, avail)
    p = log_p.exp()
    assert torch.allclose(p, torch.tensor([[0.5, 0.3, 0.2, 0.0], [0.25, 0.25, 0.5, 0.0]]))
    n = 20000
    gen = torch.Generator().manual_seed(0)
    draws = torch.stack([gumbel_scores(log_p, gen).argmax(1) for _ in range(n)])
    for row in range(2):
        freq = torch.bincount(draws[:, row], minlength=4).float() / n
        se = (p[row] * (1 - p[row]) / n).sqrt()
        assert bool(((freq - p[row]).abs() <= 4 * se + 1e-9).all()), (row, freq, p[row])


def test_example_temperature_and_zero_rows() -> None:
    w = torch.tensor([[0.6, 0.4], [0.0, 0.0]])
    avail = torch.ones(2, 2, dtype=torch.bool)
    sharp = sampling_log_probs(w, avail, temperature=0.5).exp()
    assert torch.allclose(sharp[0], torch.tensor([0.36, 0.16]) / 0.52)  # p ∝ w^(1/T)
    assert torch.allclose(sharp[1], torch.tensor([0.5, 0.5]))  # all-zero row: uniform


# -- the CLI, the way a user runs it ----------------------------------------------------------


def test_example_plugins_lists_components() -> None:
    out = json.loads(_run("plugins", "--json"))
    mine = {(c["kind"], c["name"]) for c in out if c.get("distribution") == "nasfw-example-plugin"}
    assert mine == {("search_space", "mbv2"), ("search_space", "mbv2-tiny"), ("selector", "sample-best")}


def test_example_run_darts_sample_best(tmp_path: Path) -> None:
    _need("optimizer", "darts", "nasfw-darts")
    out = _run("run", "--space", "mbv2-tiny", "--optimizer", "darts", "--selector", "sample-best",
               "--out", str(tmp_path), *TINY_RUN, *FAST_SELECT)
    assert "genotype:" in out
    g = Genotype.load(tmp_path / "genotype.json")
    space = get_registry().create("search_space", {"name": "mbv2-tiny"})
    assert g.space == "mbv2-tiny" and space.contains(g)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["sample_best"]["candidates"] == 3


def test_example_run_darts_magnitude(tmp_path: Path) -> None:
    _need("optimizer", "darts", "nasfw-darts")
    _run("run", "--space", "mbv2-tiny", "--optimizer", "darts", "--selector", "magnitude",
         "--out", str(tmp_path), *TINY_RUN)
    assert Genotype.load(tmp_path / "genotype.json").space == "mbv2-tiny"


def test_example_run_zarts_mgs_sample_best(tmp_path: Path) -> None:
    _need("optimizer", "zarts-mgs", "nasfw-zarts")
    _run("run", "--space", "mbv2-tiny", "--optimizer", "zarts-mgs", "--selector", "sample-best",
         "--out", str(tmp_path), *TINY_RUN, *FAST_SELECT, "--set", "optimizer.update_every=1")
    g = Genotype.load(tmp_path / "genotype.json")
    assert get_registry().create("search_space", {"name": "mbv2-tiny"}).contains(g)


def test_example_run_perturb(tmp_path: Path) -> None:
    _need("selector", "perturb", "nasfw-darts-pt")
    _need("optimizer", "darts", "nasfw-darts")
    _run("run", "--space", "mbv2-tiny", "--optimizer", "darts", "--selector", "perturb",
         "--out", str(tmp_path), *TINY_RUN)
    g = Genotype.load(tmp_path / "genotype.json")
    assert get_registry().create("search_space", {"name": "mbv2-tiny"}).contains(g)


def test_example_bad_option_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad option of a plugin's component ends as one line naming it, exit code 2 (through ``nasfw.cli.main``)."""
    with pytest.raises(SystemExit) as exc:
        main(["run", "--space", "mbv2-tiny", "--set", "space.kernel_sizes=[4]", "--out", str(tmp_path), "--quiet"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "kernel_sizes" in err and "odd" in err


def test_example_sample_best_prefers_a_better_candidate() -> None:
    """The returned genotype is the most accurate of the candidates, re-measured independently here (with the
    whole 27-architecture toy space as candidates), and the candidates are distinct members of the space."""
    reg = kit.toy_registry()
    with kit.stage(space="toy-cell", optimizer="kit-sgd", selector={"name": "sample-best",
                                                                  "params": {"num_samples": 27}},
                   registry=reg, steps=1) as run:
        cands = run.selector.candidates(run.supernet, run.space)
        assert len(cands) == len(set(cands)) and all(run.space.contains(g) for g in cands)
        chosen = run.selector.select(run.supernet, run.space, run)
        accs = {}
        batches = list(run.eval_batches("val", 2))
        for g in cands:
            with run.supernet.override_weights(run.space.encode(g)):
                accs[g] = run.evaluate(batches, train_mode=True)["acc"]
        assert accs[chosen] == max(accs.values())
        assert run.extra_summary["sample_best"]["candidates"] == len(cands)
