"""NB201 space: enumeration and strings, published parameter counts, discretization, supernet exactness."""

from __future__ import annotations

import random

import pytest
import torch

from nasfw.components import Context
from nasfw.data import DataShape
from nasfw.errors import GenotypeError
from nasfw.registry import Registry
from nasfw.testing import check_search_space
from nasfw_space_nb201 import NB201_OPS, NB201Space, from_string, to_string
from nasfw_space_nb201.cells import CELL, make_genotype, ops_of

ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def test_nb201_contract_kit():
    check_search_space(NB201Space, {"init_channels": 4, "cells_per_stage": 1}, network_options={"C": 4, "N": 1})


def test_nb201_enumerates_15625_distinct_cells_that_round_trip_through_strings():
    space = NB201Space()
    strings = set()
    for g in space.enumerate():
        s = space.format(g)
        assert space.parse(s) == g
        strings.add(s)
    assert len(strings) == 15_625 == space.size()


def test_nb201_string_form_matches_benchmark_layout():
    ops = from_string(ALL_CONV)
    assert ops == ("nor_conv_3x3",) * 6
    g = make_genotype(("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "none"))
    assert to_string(ops_of(g)) == "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"
    # edge (node, input) pairs follow the benchmark's order
    assert [(e.node, e.input) for e in g.cells[CELL]] == [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]


@pytest.mark.parametrize("bad", [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|",  # two nodes
    "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # unknown op
    "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",  # wrong source index
    "none~0+|none~0|none~1|+|none~0|none~1|none~2|",  # no bars
])
def test_nb201_bad_strings_are_genotype_errors(bad):
    with pytest.raises(GenotypeError):
        NB201Space().parse(bad)


@pytest.mark.parametrize(("cell", "classes", "params"), [
    (ALL_CONV, 10, 1_531_546),  # NB201's largest cell on CIFAR-10: 1.53 M
    (ALL_CONV, 100, 1_537_396),  # ... on CIFAR-100
    ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", 10, 73_306),  # the smallest: the skeleton alone
])
def test_nb201_network_has_published_parameter_count(cell, classes, params):
    space = NB201Space()
    net = space.build_network(space.parse(cell), DataShape(3, 32, 32, classes))
    assert sum(p.numel() for p in net.parameters()) == params
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, classes)


def test_nb201_network_on_digits_shape_and_all_none_cell():
    space = NB201Space()
    net = space.build_network(space.parse("|none~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|"),
                              DataShape(1, 8, 8, 10), C=4, N=1)
    assert net(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_nb201_discretize_is_argmax_per_edge_including_none():
    space = NB201Space()
    scores = torch.zeros(6, 5)
    best = [0, 1, 2, 3, 4, 0]  # `none` wins on edges 0 and 5
    for r, k in enumerate(best):
        scores[r, k] = 1.0
    g = space.discretize({CELL: scores})
    assert ops_of(g) == tuple(NB201_OPS[k] for k in best)


def test_nb201_restricted_space_enumerates_and_discretizes_within_the_restriction():
    space = NB201Space()
    allowed = torch.zeros(6, 5, dtype=torch.bool)
    allowed[:, 1] = allowed[:, 3] = True  # skip_connect, nor_conv_3x3
    sub = space.restrict({CELL: allowed})
    cells = list(sub.enumerate())
    assert len(cells) == 64 == sub.size()
    assert all(set(ops_of(g)) <= {"skip_connect", "nor_conv_3x3"} for g in cells)
    assert set(ops_of(sub.discretize({CELL: torch.arange(30.0).view(6, 5)}))) == {"nor_conv_3x3"}
    rng = random.Random(0)
    assert all(set(ops_of(sub.sample(rng))) <= {"skip_connect", "nor_conv_3x3"} for _ in range(20))


def test_nb201_distance_and_mutation_are_one_edge_moves():
    space = NB201Space()
    rng = random.Random(3)
    g = space.sample(rng)
    neighbours = list(space.neighbours(g))
    assert len(neighbours) == 6 * 4
    assert all(space.distance(g, n) == 1 for n in neighbours)
    assert space.distance(g, space.mutate(g, rng)) == 1
    a, b = space.parse(ALL_CONV), space.parse("|none~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|")
    assert space.distance(a, b) == 5


def test_nb201_distance_matrix_is_hamming_over_edge_ops():
    """The vectorised matrix nasfw shrink uses (the default edit distance) is the Hamming distance of the
    six edge ops."""
    from nasfw.shrink_cmd import distance_matrix

    space = NB201Space()
    rng = random.Random(5)
    members = [space.sample(rng) for _ in range(40)]
    d = distance_matrix(space, members)
    expected = [[sum(x != y for x, y in zip(ops_of(a), ops_of(b))) for b in members] for a in members]
    assert d.tolist() == expected


def test_nb201_sample_is_uniform_over_ops_per_edge():
    space = NB201Space()
    rng = random.Random(0)
    counts = torch.zeros(6, 5)
    for _ in range(1000):
        counts += space.encode(space.sample(rng))[CELL]
    # 200 expected per cell of the table; 6 sigma of a binomial(1000, 0.2) is about 76
    assert (counts - 200).abs().max() < 76


def _supernet(track: bool = False) -> torch.nn.Module:
    reg = Registry()
    space = NB201Space(NB201Space.Config(init_channels=4, cells_per_stage=1, track_running_stats=track),
                       Context(registry=reg))
    torch.manual_seed(0)
    return space.build_supernet(DataShape(1, 8, 8, 10), reg.create("edge_weighting", "softmax"))


def test_nb201_supernet_skipping_none_is_exact_for_outputs_and_alpha_gradients():
    """`none` is never computed; running it (as a zero op) must change neither the logits nor dα."""
    net = _supernet()
    with torch.no_grad():
        net.alphas[CELL].normal_()
    x, y = torch.randn(6, 1, 8, 8), torch.randint(0, 10, (6,))

    def loss_and_grad() -> tuple[torch.Tensor, torch.Tensor]:
        net.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        return loss.detach(), net.alphas[CELL].grad.clone()

    l1, g1 = loss_and_grad()
    net.zero_ops = {}  # run `none` like any other op
    l2, g2 = loss_and_grad()
    assert torch.allclose(l1, l2, atol=1e-6) and torch.allclose(g1, g2, atol=1e-6)
    assert g1[:, 0].abs().sum() > 0  # `none` still gets a gradient through the softmax


def test_nb201_supernet_never_runs_ops_with_zero_weight_or_mask():
    """With a one-hot override, unselected ops are not computed: NaN weights in them change nothing."""
    net = _supernet(track=False)
    net.eval()
    x = torch.randn(4, 1, 8, 8)
    g = NB201Space().parse("|nor_conv_1x1~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_3x3~0|none~1|nor_conv_3x3~2|")
    onehot = NB201Space().encode(g)[CELL]
    with torch.no_grad(), net.override_weights({CELL: onehot}):
        a = net(x)
    conv = NB201_OPS.index("nor_conv_3x3")
    with torch.no_grad():
        for cell in net.cells:
            if hasattr(cell, "edges"):
                for row, ops in enumerate(cell.edges):
                    if onehot[row, conv] == 0:
                        for p in ops[conv].parameters():
                            p.fill_(float("nan"))
    with torch.no_grad(), net.override_weights({CELL: onehot}):
        b = net(x)
    assert torch.isfinite(b).all() and torch.allclose(a, b)
    net.set_mask(CELL, onehot.bool())  # the mask skips them under autograd too
    net.train()
    assert torch.isfinite(net(x)).all()


def test_nb201_bad_genotype_for_network_is_a_genotype_error():
    space = NB201Space()
    g = space.parse(ALL_CONV)
    broken = g.model_copy(update={"cells": {CELL: g.cells[CELL][:5]}})
    with pytest.raises(GenotypeError):
        space.build_network(broken, DataShape(3, 32, 32, 10))
