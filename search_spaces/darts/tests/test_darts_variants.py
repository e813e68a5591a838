"""darts-7op and RobustDARTS S1-S4: op lists as published, contract kit, and searches that stay inside them."""

from __future__ import annotations

import pytest
import torch

from nasfw.config import build_config
from nasfw.engine import run_search
from nasfw.registry import Registry
from nasfw.testing import check_operation, check_search_space
from nasfw_space_darts.ops import OPS
from nasfw_space_darts.variants import S1_EDGE_OPS

TINY = {"layers": 3, "init_channels": 4}


def _space(name: str, **params):
    return Registry().create("search_space", {"name": name, "params": params})


@pytest.mark.parametrize("name", ["darts-7op", "s1", "s2", "s3", "s4"])
def test_variant_contract_kit(name):
    check_search_space(name, TINY, network_options={"C": 4, "layers": 3, "auxiliary": False}, samples=2)


def test_variant_op_lists_match_robustdarts():
    dec = _space("s1").decisions()
    assert [list(e.ops) for e in dec["normal"]] == S1_EDGE_OPS["normal"]
    assert [list(e.ops) for e in dec["reduce"]] == S1_EDGE_OPS["reduce"]
    # spot checks against the methods note's table (edge: ops)
    assert dec["normal"][5].ops == ("max_pool_3x3", "skip_connect")
    assert dec["normal"][13].ops == ("dil_conv_3x3", "dil_conv_5x5")
    assert dec["reduce"][1].ops == ("max_pool_3x3", "dil_conv_3x3")
    assert dec["reduce"][6].ops == ("max_pool_3x3", "sep_conv_3x3")
    for name, ops in {"s2": ("skip_connect", "sep_conv_3x3"), "s3": ("none", "skip_connect", "sep_conv_3x3"),
                      "s4": ("noise", "sep_conv_3x3")}.items():
        d = _space(name).decisions()
        assert all(e.ops == ops for cell in ("normal", "reduce") for e in d[cell]), name
    seven = _space("darts-7op").decisions()["normal"][0].ops
    assert len(seven) == 7 and "none" not in seven


def test_variant_space_sizes():
    # per node j (inputs 2+j) choose 2 edges, each with 2 (S2) ops: sum over pairs of 2*2
    pairs = [1, 3, 6, 10]
    assert _space("s2").size() == (4 ** 4 * pairs[0] * pairs[1] * pairs[2] * pairs[3]) ** 2
    assert _space("s3").size() == _space("s2").size()  # `none` is never selected
    assert _space("darts-7op").size() == _space("darts").size() == (7 ** 8 * 1 * 3 * 6 * 10) ** 2


def test_noise_op_is_parameter_free_standard_normal_of_the_strided_shape():
    check_operation(lambda c_in, c_out, s, a: OPS["noise"](c_in, c_out, s, a))
    op = OPS["noise"](8, 8, 2, False)
    assert sum(p.numel() for p in op.parameters()) == 0
    x = torch.full((4, 8, 16, 16), 7.0)
    y = op(x)
    assert y.shape == (4, 8, 8, 8)
    assert abs(float(y.mean())) < 0.1 and abs(float(y.std()) - 1) < 0.1


@pytest.mark.parametrize(("name", "allowed"), [
    ("s2", {"skip_connect", "sep_conv_3x3"}),
    ("s4", {"noise", "sep_conv_3x3"}),
])
def test_variant_search_yields_only_the_space_ops(tmp_path, name, allowed):
    cfg = build_config({
        "space": {"name": name, "params": {"layers": 2, "init_channels": 4}},
        "optimizer": "darts", "selector": "magnitude", "dataset": "digits",
        "search": {"epochs": 1, "batch_size": 16, "steps_per_epoch": 2, "eval_batches": 1},
    })
    _, summary = run_search(cfg, out_dir=tmp_path / name, quiet=True)
    g = summary["genotype"]
    assert g["space"] == name
    used = {e["op"] for cell in g["cells"].values() for e in cell}
    assert used <= allowed and len(g["cells"]["normal"]) == 8
