"""HyperCuboid: the grid it enumerates, the heaviest path against brute force, the supernet's
Max-W/min-score behaviour, and the supernet restricted to a path computing the extracted network."""

from __future__ import annotations

import itertools

import pytest
import torch

from nasfw.data import DataShape
from nasfw.errors import GenotypeError
from nasfw.registry import get_registry
from nasfw.testing import check_search_space
from nasfw_sharpdarts.hypercuboid import CELL, column_name

TINY = {"init_channels": 4, "steps": 2, "layers": 4, "head_channels": 8}
SHAPE = DataShape(1, 8, 8, 10)


def space(params=None):
    return get_registry().create("search_space", {"name": "hypercuboid", "params": params or {}})


def test_hypercuboid_default_grid_is_the_papers():
    sp = space()
    assert sp.channels() == [32, 64, 128, 256]  # C = 36
    assert sp.rows() == 8  # 4 layers x (stride 1, stride 2)
    assert sp.arch_shapes() == {CELL: (8, 32)}  # [2, 4, 4, 4, 2] = 256 weights, softmax blocks of 32
    cols = sp.columns()
    assert set(cols) == set(itertools.product(["max_pool_3x3", "sep_conv_3x3"], [32, 64, 128, 256],
                                              [32, 64, 128, 256]))
    assert len(cols) == len(set(cols)) == 32
    assert [sp.stride(r) for r in range(8)] == [1, 2] * 4
    assert space({"init_channels": 16, "steps": 3, "layers": 6}).channels() == [16, 32, 64]


def all_chains(sp):
    cols = sp.columns()
    for ks in itertools.product(range(len(cols)), repeat=sp.rows()):
        if all(cols[a][2] == cols[b][1] for a, b in itertools.pairwise(ks)):
            yield ks


def test_hypercuboid_size_and_heaviest_path_equal_brute_force():
    sp = space(TINY)  # 2 widths x 2 ops, 4 rows: 2 * (2*2)^4 = 512 chains
    chains = list(all_chains(sp))
    assert sp.size() == len(chains) == 2 * 4**4
    g = torch.Generator().manual_seed(3)
    for _ in range(5):
        s = torch.rand(sp.rows(), len(sp.columns()), generator=g)
        best = max(chains, key=lambda ks: sum(float(s[r, k]) for r, k in enumerate(ks)))
        got = sp.discretize({CELL: s})
        assert [e.op for e in got.cells[CELL]] == [column_name(*sp.columns()[k]) for k in best]
        sp.validate_genotype(got)
    # a path whose first sub-layer writes a width the second does not read is not a member
    op, c_in, c_out = got.cells[CELL][0].op.split("@")[0], *map(int, got.cells[CELL][0].op.split("@")[1].split("-"))
    wrong = next(c for c in sp.channels() if c != c_out)
    edges = list(got.cells[CELL])
    edges[0] = edges[0].model_copy(update={"op": column_name(op, c_in, wrong)})
    with pytest.raises(GenotypeError):
        sp.validate_genotype(got.model_copy(update={"cells": {CELL: edges}}))


def test_hypercuboid_contract():
    check_search_space("hypercuboid", TINY, shape=SHAPE)


def test_supernet_min_score_skips_weak_ops_and_maxw_is_per_block():
    reg = get_registry()
    sp = space(TINY)
    net = sp.build_supernet(SHAPE, reg.create("edge_weighting", "max-w"))
    K = len(sp.columns())
    assert net.min_score == 1 / K**2
    w = net.mixing_weights()[CELL]
    assert torch.allclose(w.max(dim=1).values, torch.ones(sp.rows()))  # w_max over the whole block gets 1
    with torch.no_grad():
        net.alphas[CELL].zero_()
        net.alphas[CELL][0, 1:] = -100.0  # row 0: only column 0 keeps a softmax weight above 1/K^2
    active = net._active(net.mixing_weights()[CELL])
    assert active[0] == [0] and all(len(a) == K for a in active[1:])
    assert net(torch.randn(4, 1, 8, 8)).shape == (4, 10)


def test_supernet_on_a_path_computes_the_extracted_network():
    """One-hot weights on a path: the supernet is exactly the stand-alone chain (same conv weights)."""
    reg = get_registry()
    sp = space(TINY)
    torch.manual_seed(0)
    net = sp.build_supernet(SHAPE, reg.create("edge_weighting", "softmax")).double()
    g = sp.discretize({CELL: torch.rand(sp.rows(), len(sp.columns()))})
    model = sp.build_network(g, SHAPE).double()
    cols = [column_name(*c) for c in sp.columns()]
    ks = [cols.index(e.op) for e in g.cells[CELL]]
    widths = sp.channels()
    first, last = sp.path(g)[0][1], sp.path(g)[-1][2]
    pairs = [(model.stem, net.stem[widths.index(first)]), (model.head, net.head[widths.index(last)]),
             (model.classifier, net.classifier)]
    pairs += [(model.ops[r], net.grid[r][k]) for r, k in enumerate(ks)]
    for dst, src in pairs:
        convs_d = [m for m in dst.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        convs_s = [m for m in src.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        assert len(convs_d) == len(convs_s)
        for d, s in zip(convs_d, convs_s):
            d.load_state_dict(s.state_dict())
    # affine BNs: copy gamma/beta too
    for src, dst in ((net.stem[widths.index(first)], model.stem), (net.head[widths.index(last)], model.head)):
        dst.load_state_dict(src.state_dict())
    onehot = torch.zeros(sp.rows(), len(cols), dtype=torch.float64)
    onehot[range(sp.rows()), ks] = 1.0
    x = torch.randn(5, 1, 8, 8, dtype=torch.float64)
    with net.override_weights({CELL: onehot}):
        ref = net(x)
    torch.testing.assert_close(model(x), ref)


def test_hypercuboid_text_form_and_bad_paths():
    sp = space(TINY)
    g = sp.parse("sep_conv_3x3@4-8 > max_pool_3x3@8-8 > sep_conv_3x3@8-4 > max_pool_3x3@4-4")
    assert sp.format(g) == "sep_conv_3x3@4-8 > max_pool_3x3@8-8 > sep_conv_3x3@8-4 > max_pool_3x3@4-4"
    assert [s for *_, s in sp.path(g)] == [1, 2, 1, 2]
    with pytest.raises(GenotypeError, match="reads 4 channels"):
        sp.parse("sep_conv_3x3@4-8 > max_pool_3x3@4-4")
    with pytest.raises(GenotypeError, match="op@C_in-C_out"):
        sp.parse("sep_conv_3x3 > max_pool_3x3")
    model = sp.build_network(g, SHAPE)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize(("params", "official"), [
    ({}, 8_930_122),  # the README's grid: C = 36, 8 layers of cells, 4 widths
    ({"init_channels": 16, "layers": 4, "steps": 2}, 1_278_378),
    ({"affine": False}, 8_845_642),  # DARTS' affine-free search BN: γ and β of every grid BN gone
])
def test_supernet_parameter_count_is_the_official_multichannel_networks(params, official):
    """Counts of ahundt/sharpDARTS 6f593d4 ``MultiChannelNetwork(C, 10, layers, steps=...)`` (weights only; its α
    are not parameters), measured by building the official class; its ops are affine (MULTICHANNELNET_OPS)."""
    net = space(params).build_supernet(DataShape(3, 32, 32, 10), get_registry().create("edge_weighting", "softmax"))
    assert sum(p.numel() for p in net.weight_parameters()) == official
