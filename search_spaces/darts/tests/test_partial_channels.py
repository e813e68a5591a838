"""PC-DARTS' partial channel connections and edge normalisation as space options (darts and nb201).

The batched supernet against the official per-edge formulation (``benchmarks/baseline.py``, written after
yuhuixu1993/PC-DARTS ``model_search.py`` at b74702f), K = 1 against plain DARTS, dL/dβ against central finite
differences, and magnitude selection on β × op weight.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nasfw.data import DataShape
from nasfw.errors import ConfigError
from nasfw.registry import get_registry
from nasfw.supernet import channel_shuffle
from nasfw.testing import run_cli

BASELINE = Path(__file__).resolve().parents[3] / "benchmarks" / "baseline.py"


def _plain_copy():
    if not BASELINE.exists():
        pytest.skip(f"{BASELINE} is not in this checkout")
    spec = importlib.util.spec_from_file_location("nasfw_bench_baseline", BASELINE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.plain_copy


SHAPE = DataShape(3, 16, 16, 10)


def _build(space: str, dtype: torch.dtype = torch.float32, shape: DataShape = SHAPE, **params):
    torch.manual_seed(0)
    reg = get_registry()
    sp = reg.create("search_space", {"name": space, "params": params})
    net = sp.build_supernet(shape, reg.create("edge_weighting", "softmax")).to(dtype)
    with torch.no_grad():
        for a in net.alphas.values():
            a.normal_(0, 0.7)  # far from uniform, so every op's and edge's weight matters
    return sp, net


def test_channel_shuffle_is_pc_darts_transpose():
    x = torch.arange(8.0).view(1, 8, 1, 1)
    # official: view(N, groups, C/groups, H, W).transpose(1, 2): channel g*(C/groups)+c -> c*groups+g
    assert channel_shuffle(x, 4).flatten().tolist() == [0, 2, 4, 6, 1, 3, 5, 7]
    assert torch.equal(channel_shuffle(x, 1), x)


CASES = [("darts", {"layers": 3, "init_channels": 4, "partial_channels": 2, "edge_normalization": True}),
         ("darts", {"layers": 3, "init_channels": 8, "partial_channels": 4}),
         ("nb201", {"init_channels": 4, "cells_per_stage": 1, "partial_channels": 2, "edge_normalization": True})]


@pytest.mark.parametrize(("space", "params"), CASES, ids=["darts-K2-beta", "darts-K4", "nb201-K2-beta"])
def test_partial_channels_match_official_formulation(space: str, params: dict):
    """Outputs, every gradient (β included) and BN statistics equal the per-edge PC-DARTS formulation."""
    _, fast = _build(space, **params)
    plain = _plain_copy()(fast)
    x, y = torch.randn(6, 3, 16, 16), torch.randint(0, 10, (6,))
    grads = []
    for net in (fast, plain):
        net.zero_grad(set_to_none=True)
        out = net(x)
        F.cross_entropy(out, y).backward()
        grads.append((out.detach(), {n: p.grad for n, p in net.named_parameters() if p.grad is not None}))
    (out_f, g_f), (out_p, g_p) = grads
    assert torch.allclose(out_f, out_p, rtol=1e-5, atol=1e-6)
    assert set(g_f) == {n for n in g_p if g_p[n].abs().max() > 0} | (set(g_f) & set(g_p))
    for name, g in g_f.items():
        assert torch.allclose(g, g_p[name], rtol=1e-4, atol=1e-6), (name, (g - g_p[name]).abs().max())
    if params.get("edge_normalization"):
        assert any(n.startswith("alphas.beta_") and g.abs().max() > 0 for n, g in g_f.items())
    for (name, b), b_p in zip(fast.named_buffers(), plain.buffers()):
        if b.is_floating_point():
            assert torch.allclose(b, b_p, rtol=1e-5, atol=1e-6), name
    fast.eval()
    plain.eval()
    with torch.no_grad():
        assert torch.allclose(fast(x), plain(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("space", ["darts", "nb201"])
def test_one_partial_channel_group_is_the_plain_supernet(space: str):
    small = {"layers": 3, "init_channels": 4} if space == "darts" else {"init_channels": 4, "cells_per_stage": 1}
    _, plain = _build(space, **small)
    _, k1 = _build(space, partial_channels=1, edge_normalization=False, **small)
    assert list(plain.state_dict()) == list(k1.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), k1.state_dict().values()))
    x = torch.randn(4, 3, 16, 16)
    assert torch.equal(plain(x), k1(x))


def test_partial_channels_shrink_the_ops_by_k():
    _, full = _build("darts", layers=3, init_channels=8)
    _, pc = _build("darts", layers=3, init_channels=8, partial_channels=4)
    cell_f, cell_p = full.cells[0], pc.cells[0]
    sep = 4  # sep_conv_3x3 in DARTS' PRIMITIVES order
    n_f = sum(p.numel() for p in cell_f.edges[0][sep].parameters())
    n_p = sum(p.numel() for p in cell_p.edges[0][sep].parameters())
    c = cell_f.C  # two (depthwise 3x3 + pointwise 1x1) on C channels vs on C/4
    assert n_f == 2 * (9 * c + c * c) and n_p == 2 * (9 * (c // 4) + (c // 4) ** 2)


def _smooth(module: torch.nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, torch.nn.ReLU):
            setattr(module, name, torch.nn.Tanh())
        else:
            _smooth(child)


@pytest.mark.parametrize("space", ["darts", "nb201"])
def test_edge_weight_gradient_matches_finite_differences(space: str):
    """dL/dβ by autograd against central differences (float64, ReLU → tanh and no max pool: kinks would make a
    finite difference of the loss wrong however small the step)."""
    if space == "darts":
        params = {"layers": 3, "init_channels": 4, "steps": 2, "partial_channels": 2, "edge_normalization": True,
                  "primitives": ["none", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "dil_conv_3x3"]}
    else:
        params = {"init_channels": 4, "cells_per_stage": 1, "partial_channels": 2, "edge_normalization": True,
                  "primitives": ["none", "skip_connect", "nor_conv_1x1", "avg_pool_3x3"]}
    _, net = _build(space, torch.float64, DataShape(1, 8, 8, 3), **params)
    _smooth(net)
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(5, 1, 8, 8, generator=gen, dtype=torch.float64), torch.randint(0, 3, (5,), generator=gen)
    betas = {k: a for k, a in net.arch_parameters().items() if k.startswith("beta_")}
    assert betas
    loss = F.cross_entropy(net(x), y)
    grads = torch.autograd.grad(loss, list(betas.values()))
    h = 1e-6
    for (k, beta), g in zip(betas.items(), grads):
        d = torch.randn(beta.shape, generator=gen, dtype=torch.float64)
        with torch.no_grad():
            beta.add_(h * d)
            up = F.cross_entropy(net(x), y)
            beta.sub_(2 * h * d)
            down = F.cross_entropy(net(x), y)
            beta.add_(h * d)
        fd = (up - down) / (2 * h)
        assert abs(float(fd - (g * d).sum())) < 1e-6 * max(1.0, abs(float(fd))), (k, float(fd), float((g * d).sum()))
        assert float(g.abs().max()) > 1e-6


def test_edge_weights_are_a_softmax_per_node_and_rank_edges_with_the_op_weight():
    sp, net = _build("darts", layers=3, init_channels=4, steps=2, edge_normalization=True)
    e = net.edge_weights()["normal"]
    assert e.shape == (5,) and torch.allclose(e[:2].sum(), torch.tensor(1.0)) and torch.allclose(e[2:].sum(),
                                                                                                 torch.tensor(1.0))
    with torch.no_grad():
        net.alphas["normal"].zero_()
        net.alphas["normal"][2, 4] = 2.0  # node 3: edge 2 has the strongest op ...
        net.alphas["beta_normal"].copy_(torch.tensor([0.0, 0.0, -3.0, 0.0, 0.0]))  # ... but a small β
    g = sp.discretize(net.strengths())
    inputs = sorted(e.input for e in g.cells["normal"] if e.node == 3)
    assert inputs == [1, 2]  # ranked by β × op weight, edge 0 -> 3 (input 0) loses; plain α would keep it
    assert "beta_normal" in net.arch_parameters() and all(p is not net.alphas["beta_normal"]
                                                          for p in net.weight_parameters())


def test_bad_partial_channels_is_a_config_error():
    with pytest.raises(ConfigError, match="multiple of partial_channels"):
        get_registry().create("search_space", {"name": "darts", "params": {"init_channels": 6, "partial_channels": 4}})


@pytest.mark.parametrize("optimizer", ["darts", "darts-2nd"])
def test_search_with_partial_channels_trains_beta(tmp_path, optimizer: str):
    out = tmp_path / optimizer
    res = run_cli("run", "--out", str(out), "--optimizer", optimizer, "--epochs", "1", "--batch-size", "8",
                  "--quiet", "--set", "space.layers=2", "--set", "space.init_channels=4",
                  "--set", "space.partial_channels=2", "--set", "space.edge_normalization=true",
                  "--set", "search.steps_per_epoch=2", "--set", "search.eval_batches=1",
                  "--set", "log.tensorboard=false", "--set", "log.plots=false")
    assert res.code == 0, res.err
    last = json.loads((out / "alphas.jsonl").read_text().splitlines()[-1])["alphas"]
    beta = torch.tensor(last["beta_normal"])
    assert beta.shape == (14,) and float(beta.abs().max()) > 1e-3  # init 1e-3·N(0,1); Adam moved it


# -- widening (DrNAS' progressive K 6 -> 4): nasfw.widening ---------------------------------------------------
WIDEN = [("darts", {"layers": 3, "init_channels": 8, "partial_channels": 4}, 2),
         ("darts", {"layers": 3, "init_channels": 4, "partial_channels": 2, "edge_normalization": True}, 1),
         ("nb201", {"init_channels": 8, "cells_per_stage": 1, "partial_channels": 4}, 2)]


@pytest.mark.parametrize(("space", "params", "k"), WIDEN, ids=["darts-4to2", "darts-2to1-beta", "nb201-4to2"])
def test_widened_supernet_is_the_wider_supernet_with_the_trained_channels(space: str, params: dict, k: int):
    """After ``set_partial_channels(k)`` the supernet computes what a supernet built at K = k computes with its
    tensors (and what the official per-edge formulation computes); every old tensor is the top-left block of its
    widened one, and a supernet built at the old K restores the width from the widened state dict."""
    _, net = _build(space, **params)
    before = {n: t.detach().clone() for n, t in net.state_dict().items()}
    mapping = net.set_partial_channels(k, torch.Generator().manual_seed(3))
    assert net.partial_channels == k and mapping
    grown = 0
    for name, t in net.state_dict().items():
        old = before[name]
        if name.endswith("partial_k"):
            assert int(t) == k
            continue
        assert torch.equal(t[tuple(slice(0, s) for s in old.shape)], old), name
        grown += t.shape != old.shape
    assert grown > 0
    wide = dict(params, partial_channels=k)
    _, fresh = _build(space, **wide)
    fresh.load_state_dict(net.state_dict())
    _, narrow = _build(space, **params)
    narrow.load_state_dict(net.state_dict())  # rebuilt at K = k by the load pre-hook
    assert narrow.partial_channels == k
    x = torch.randn(4, 3, 16, 16)
    for m in (net, fresh, narrow):
        m.eval()
    with torch.no_grad():
        ref = net(x)
        assert torch.equal(fresh(x), ref) and torch.equal(narrow(x), ref)
        if BASELINE.exists():
            torch.testing.assert_close(_plain_copy()(net).eval()(x), ref, rtol=1e-5, atol=1e-5)


def test_widening_replicates_trained_channels_consistently_and_widens_momentum():
    """A new channel of a sep conv copies one trained channel through the whole op (depthwise filter, pointwise
    input, the BN after), and the SGD momentum of every widened parameter is widened by the same map."""
    from nasfw.widening import remap_optimizer, widen_into
    from nasfw_space_darts.ops import DilConv

    torch.manual_seed(0)
    old, new = DilConv(2, 2, 3, 1, 2, 2), DilConv(4, 4, 3, 1, 2, 2)
    opt = torch.optim.SGD(old.parameters(), lr=0.1, momentum=0.9)
    old(torch.randn(2, 2, 6, 6)).square().sum().backward()
    opt.step()
    mapping = widen_into(old, new, torch.Generator().manual_seed(0))
    dw_old, pw_old, dw, pw = old[1].weight, old[2].weight, new[1].weight, new[2].weight
    for c in (2, 3):  # the replicated channels: find the source of each and check it is the same everywhere
        src = [j for j in range(2) if torch.equal(dw[c], dw_old[j])]
        assert src, c
        assert torch.equal(pw[:2, c], pw_old[:, src[0]])  # pointwise input channel c reads as channel src does
    assert torch.equal(dw[:2], dw_old) and new[1].groups == 4
    moms = {p: opt.state[p]["momentum_buffer"].clone() for p in old.parameters()}
    remap_optimizer(opt, mapping)
    assert [id(p) for p in opt.param_groups[0]["params"]] == [id(p) for p in new.parameters()]
    for p_old, (p_new, fn) in mapping.items():
        buf = opt.state[p_new]["momentum_buffer"]
        assert p_old not in opt.state and buf.shape == p_new.shape
        assert torch.equal(buf, fn(moms[p_old]))  # the parameter's own map
        assert torch.equal(p_new.detach(), fn(p_old.detach()))
    before = new[2].weight.detach().clone()
    new(torch.randn(2, 4, 6, 6)).square().sum().backward()
    opt.step()
    assert not torch.equal(before, new[2].weight)  # the optimizer steps the new parameters


def test_partial_channels_only_widen():
    _, net = _build("darts", layers=3, init_channels=8, partial_channels=2)
    with pytest.raises(ValueError, match="only be widened"):
        net.set_partial_channels(4)
    with pytest.raises(ValueError, match="only be widened"):
        net.set_partial_channels(3)
    _, plain = _build("darts", layers=3, init_channels=8)
    assert plain.partial_channels == 1 and "partial_k" not in "".join(plain.state_dict())
