"""PC-DARTS: the partial-channel supernet against the official formula (K = 4) and against DARTS (K = 1), edge
normalisation in the forward and in the edge choice, the optimizer's warm-up and refusal, and whole runs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nasfw import testing as kit
from nasfw.builtin.weightings import Softmax
from nasfw.data import DataShape
from nasfw.registry import get_registry

FAST = ["--set", "search.steps_per_epoch=2", "--set", "search.eval_batches=1", "--batch-size", "8", "--quiet"]
NB201_TINY = ["--space", "nb201-pc", "--set", "space.init_channels=8", "--set", "space.cells_per_stage=1", *FAST]
PRIMS = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "dil_conv_3x3"]
SHAPE = DataShape(3, 8, 8, 5)


def _supernet(partial: int, edges: bool, seed: int = 0):
    torch.manual_seed(seed)
    space = get_registry().create("search_space", {"name": "darts", "params": {
        "layers": 3, "init_channels": 8, "steps": 2, "primitives": PRIMS, "partial_channels": partial,
        "edge_normalization": edges}})
    net = space.build_supernet(SHAPE, Softmax()).double()
    with torch.no_grad():
        for a in net.arch_parameters().values():
            a.normal_(0, 0.7)
    return net


def _shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """model_search.py's channel_shuffle, written out again."""
    n, c, h, w = x.shape
    return torch.transpose(x.view(n, groups, c // groups, h, w), 1, 2).contiguous().view(n, -1, h, w)


def _official_forward(net, x: torch.Tensor, k: int) -> torch.Tensor:
    """PC-DARTS' Network.forward / Cell.forward / MixedOp.forward (model_search.py @ b74702f) on the supernet's own
    modules: ops on the first C/K channels, the rest appended (max-pooled 2x2 on stride-2 edges), channel shuffle,
    node = Σ_j softmax(β over the node's inputs)_j · edge_j (1 without edge normalisation)."""
    weights = {c: torch.softmax(net.alphas[c], -1) for c in ("normal", "reduce")}
    betas = {}
    for c in ("normal", "reduce"):
        if f"beta_{c}" in net.alphas:
            b, parts, start, n = net.alphas[f"beta_{c}"], [], 0, 2
            for _ in range(2):  # steps = 2
                parts.append(torch.softmax(b[start:start + n], -1))
                start, n = start + n, n + 1
            betas[c] = torch.cat(parts)
    s0 = s1 = net.stem(x)
    for cell in net.cells:
        c = "reduce" if cell.reduction else "normal"
        w, b = weights[c], betas.get(c)
        states = [cell.preprocess0(s0), cell.preprocess1(s1)]
        offset = 0
        for _ in range(cell.steps):
            total = 0
            for j, h in enumerate(states):
                dim = h.shape[1]
                xt, xt2 = h[:, : dim // k], h[:, dim // k:]
                temp = sum(w[offset + j, i] * op(xt) for i, op in enumerate(cell.edges[offset + j]))
                if k > 1:
                    temp = _shuffle(torch.cat([temp, xt2 if temp.shape[2] == h.shape[2] else F.max_pool2d(xt2, 2, 2)],
                                              1), k)
                total = total + (1 if b is None else b[offset + j]) * temp
            offset += len(states)
            states.append(total)
        s0, s1 = s1, torch.cat(states[-cell.multiplier:], 1)
    return net.classifier(net.global_pooling(s1).flatten(1))


@pytest.mark.parametrize(("k", "edges"), [(4, True), (2, False), (1, True)])
def test_partial_channel_supernet_is_the_official_formula(k, edges):
    net = _supernet(k, edges)
    net.train()
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 3])
    params = list(net.arch_parameters().values())
    buffers = {n: b.clone() for n, b in net.named_buffers()}
    ours = net(x)
    g_ours = torch.autograd.grad(F.cross_entropy(ours, y), params)
    with torch.no_grad():  # the same BN statistics for the reference pass
        for n, b in net.named_buffers():
            b.copy_(buffers[n])
    ref = _official_forward(net, x, k)
    g_ref = torch.autograd.grad(F.cross_entropy(ref, y), params)
    assert torch.allclose(ours, ref, rtol=1e-10, atol=1e-12)
    assert all(torch.allclose(a, b, rtol=1e-8, atol=1e-12) for a, b in zip(g_ours, g_ref))
    assert ("beta_normal" in net.alphas) == edges


def test_k1_without_edge_normalisation_is_darts_exactly():
    """Same seed, same init: the supernet with partial_channels = 1 and the plain DARTS supernet agree bit for bit
    (parameters, logits, gradients)."""
    torch.manual_seed(0)
    reg = get_registry()
    plain = reg.create("search_space", {"name": "darts", "params": {"layers": 3, "init_channels": 8, "steps": 2,
                                                                    "primitives": PRIMS}})
    net_a = plain.build_supernet(SHAPE, Softmax()).double()
    torch.manual_seed(0)
    pc = reg.create("search_space", {"name": "darts", "params": {"layers": 3, "init_channels": 8, "steps": 2,
                                                                 "primitives": PRIMS, "partial_channels": 1}})
    net_b = pc.build_supernet(SHAPE, Softmax()).double()
    sa, sb = net_a.state_dict(), net_b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[n], sb[n]) for n in sa)
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    la, lb = net_a(x), net_b(x)
    assert torch.equal(la, lb)
    ga = torch.autograd.grad(la.sum(), list(net_a.parameters()))
    gb = torch.autograd.grad(lb.sum(), list(net_b.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(ga, gb))
    assert torch.allclose(la, _official_forward(net_a, x, 1), rtol=1e-10, atol=1e-12)


def test_edge_choice_ranks_beta_times_op_weight():
    """model_search.py genotype(): W[j, :] *= softmax(β)[j], then DARTS' rule on W."""
    net = _supernet(4, True)
    s = net.strengths()
    w = torch.softmax(net.alphas["normal"].detach().float(), -1)
    b = net.alphas["beta_normal"].detach().float()
    e = torch.cat([torch.softmax(b[0:2], 0), torch.softmax(b[2:5], 0)])
    assert torch.allclose(s["normal"], w * e.unsqueeze(1))


def test_pc_darts_refuses_a_plain_supernet_and_warms_up_a_fraction(tmp_path):
    res = kit.run_cli("run", "--space", "nb201", "--set", "space.init_channels=8", "--set", "space.cells_per_stage=1",
                      "--optimizer", "pc-darts", "--epochs", "2", *FAST, "--out", str(tmp_path / "plain"))
    assert res.code == 2 and "darts-pc" in res.err and "Traceback" not in res.err
    with kit.stage(optimizer={"name": "pc-darts", "params": {"require_pc_supernet": False}},
                   registry=kit.toy_registry(), epochs=10, steps=1) as run:
        assert run.optimizer.warmup(10) == 3 and run.plan["optimizer"]["alpha_updates"] == 7  # 0.3 of 10 epochs


def test_pc_darts_contract():
    kit.check_optimizer("pc-darts", {"require_pc_supernet": False})


@pytest.mark.parametrize("selector", ["magnitude", "perturb"])
def test_pc_darts_end_to_end_on_nb201(tmp_path, selector):
    out = tmp_path / selector
    extra = kit.PERTURB_TINY if selector == "perturb" else ()
    summary = kit.run_summary(out, *NB201_TINY, "--optimizer", "pc-darts", "--selector", selector, "--epochs", "2",
                              *extra)
    act = summary["activity"]["optimizer"]
    change = act["alpha_abs_change"]
    assert act["alpha_updates"] >= 2 and change["cell"] > 0 and change["beta_cell"] > 0  # α and β both move
    assert summary["activity"]["plan"]["optimizer"]["partial_channels"] == 4
