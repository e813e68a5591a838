"""GDAS: the straight-through gradient against its closed form, one op computed per edge, Gumbel-max frequencies,
the temperature schedule, and whole runs with magnitude and perturb selection."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from nasfw import testing as kit
from nasfw.builtin.weightings import Softmax
from nasfw.data import DataShape
from nasfw.registry import get_registry
from nasfw_gdas.optimizer import gumbel_hard, tau_at
from nasfw_space_nb201.cells import EDGES

FAST = ["--set", "search.steps_per_epoch=2", "--set", "search.eval_batches=1", "--batch-size", "8", "--quiet"]
NB201_TINY = ["--space", "nb201", "--set", "space.init_channels=4", "--set", "space.cells_per_stage=1", *FAST]


def _nb201(dtype: torch.dtype = torch.float64):
    torch.manual_seed(0)
    space = get_registry().create("search_space", {"name": "nb201", "params": {"init_channels": 4,
                                                                                "cells_per_stage": 1}})
    net = space.build_supernet(DataShape(3, 8, 8, 4), Softmax()).to(dtype)
    with torch.no_grad():
        net.alphas["cell"].normal_(0, 1.0)
    return space, net


def test_straight_through_gradient_equals_closed_form_and_one_op_runs_per_edge():
    """∂L/∂α_row = (v_k p_k / τ)(e_k − p) with v_k = ∂L/∂h_k; the forward runs only the sampled op per edge."""
    _, net = _nb201()
    alpha, mask, tau = net.alphas["cell"], net.mask("cell"), 0.7
    x = torch.randn(6, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    gen = torch.Generator().manual_seed(3)
    none = net.op_names.index("none")
    while True:  # a draw whose cell output depends on the input (else nothing has a gradient)
        hard, probs, index = gumbel_hard(alpha, mask, tau, gen)
        live = {0}  # a node fed only by `none` (or by such nodes) is zero
        for r, (node, inp) in enumerate(EDGES):
            if inp in live and int(index[r]) != none:
                live.add(node)
        if 3 in live and none in index.tolist():  # the output depends on the input; some edge draws `none`
            break
    assert torch.equal(hard.detach(), F.one_hot(index, alpha.shape[1]).to(hard.dtype))  # exactly one-hot

    with net.override_weights({"cell": hard}):  # autograd on: the supernet's table of ops to run
        active = net.active_ops(net.mixing_weights())["cell"]
    assert active == [[] if int(index[r]) == none else [int(index[r])] for r in range(len(EDGES))]
    # and it really computes nothing else: NaN filters in every op that was not drawn would poison the output
    with torch.no_grad():
        for cell in (c for c in net.cells if hasattr(c, "edges")):
            for r, row in enumerate(cell.edges):
                for k, op in enumerate(row):
                    if k != int(index[r]):
                        for prm in op.parameters():
                            prm.fill_(float("nan"))
    with net.override_weights({"cell": hard}):
        loss = F.cross_entropy(net(x), y)
    assert torch.isfinite(loss)
    with torch.no_grad():  # (the poison works: the DARTS mixture, every op run, is NaN)
        assert torch.isnan(F.cross_entropy(net(x), y))
    (g_alpha,) = torch.autograd.grad(loss, alpha)
    leaf = hard.detach().clone().requires_grad_(True)  # the same forward, with the coefficients as a leaf
    with net.override_weights({"cell": leaf}):
        (v,) = torch.autograd.grad(F.cross_entropy(net(x), y), leaf)
    p = probs.detach()
    rows = torch.arange(alpha.shape[0])
    vk, pk = v[rows, index], p[rows, index]
    closed = (vk * pk / tau).unsqueeze(1) * (F.one_hot(index, alpha.shape[1]).double() - p)
    assert torch.allclose(g_alpha, closed, rtol=1e-9, atol=1e-12)
    reaches = [r for r in range(len(EDGES)) if float(vk[r]) != 0.0]  # edges on a path to the output
    assert reaches and all(bool((g_alpha[r] != 0).all()) for r in reaches)  # every α entry of those edges learns


def test_gumbel_argmax_frequencies_match_the_categorical():
    """The sampled op is distributed as softmax(α) whatever τ (Gumbel-max); masked ops are never drawn."""
    alpha = torch.tensor([[1.0, 0.0, -1.0, 0.5]]).repeat(40000, 1)
    mask = torch.tensor([[True, True, True, False]]).repeat(40000, 1)
    gen = torch.Generator().manual_seed(0)
    for tau in (10.0, 0.1):
        _, _, index = gumbel_hard(alpha, mask, tau, gen)
        freq = torch.bincount(index, minlength=4).double() / index.numel()
        want = torch.softmax(torch.tensor([1.0, 0.0, -1.0]), 0).double()
        assert freq[3] == 0 and torch.allclose(freq[:3], want, atol=0.01)


def test_fully_masked_rows_get_zero_weights_and_no_gradient():
    alpha = torch.randn(3, 4, requires_grad=True)
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[1] = False
    mask[2, 1:] = False  # a decided edge: one op left
    hard, _, _ = gumbel_hard(alpha, mask, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(hard[1].detach(), torch.zeros(4)) and torch.equal(hard[2].detach(), torch.tensor([1.0, 0, 0, 0]))
    (hard * torch.arange(12.0).view(3, 4)).sum().backward()
    assert torch.isfinite(alpha.grad).all() and torch.equal(alpha.grad[1], torch.zeros(4))


def test_tau_schedule_is_gdas_linear_decay():
    # GDAS.py: tau_max - (tau_max - tau_min) * epoch / (total_epoch - 1)
    assert [tau_at(e, 10, 0.1, 5) for e in range(5)] == pytest.approx([10, 7.525, 5.05, 2.575, 0.1])
    assert tau_at(7, 10, 0.1, 5) == pytest.approx(0.1)  # held after the annealing (e.g. DARTS-PT tuning)
    with kit.stage(space="toy-cell", optimizer={"name": "gdas", "params": {"tau_anneal": 0.5}},
                   registry=kit.toy_registry(), epochs=4, steps=1) as run:
        opt = run.optimizer
        assert opt.anneal == 2  # half of 4 epochs
        opt.epoch_start(0)
        assert opt.tau == 10.0
        opt.epoch_start(1)
        assert opt.tau == pytest.approx(0.1)


def test_gdas_contract():
    kit.check_optimizer("gdas")


def test_unrolled_and_inverted_temperatures_are_refused():
    res = kit.run_cli("config", "show", "--optimizer", "gdas", "--set", "optimizer.unrolled=true")
    assert res.code == 2 and "second-order" in res.err and "Traceback" not in res.err
    res = kit.run_cli("config", "show", "--optimizer", "gdas", "--set", "optimizer.tau_min=20")
    assert res.code == 2 and "tau_min" in res.err


def test_warmup_longer_than_search_is_refused_before_work(tmp_path):
    res = kit.run_cli("run", *NB201_TINY, "--optimizer", "gdas", "--epochs", "2", "--out", str(tmp_path / "r"),
                      "--set", "optimizer.warmup_epochs=2")
    assert res.code == 2 and "optimizer.warmup_epochs" in res.err and "Traceback" not in res.err
    assert not (tmp_path / "r" / "metrics.jsonl").exists() or not (tmp_path / "r" / "metrics.jsonl").read_text()


@pytest.mark.parametrize("selector", ["magnitude", "perturb"])
def test_gdas_end_to_end_on_nb201(tmp_path, selector):
    out = tmp_path / selector
    extra = kit.PERTURB_TINY if selector == "perturb" else ()
    summary = kit.run_summary(out, *NB201_TINY, "--optimizer", "gdas", "--selector", selector, "--epochs", "2", *extra)
    act = summary["activity"]["optimizer"]
    # 2 epochs x 2 steps of search; perturb's tuning steps (α updated) come on top: 5 rounds x 1 step
    assert act["alpha_updates"] == (4 if selector == "magnitude" else 9) and act["alpha_abs_change"]["cell"] > 0
    assert summary["activity"]["plan"]["optimizer"]["alpha_updates"] == 4
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
              if json.loads(line).get("kind") == "epoch"]
    assert [e["tau"] for e in epochs] == pytest.approx([10.0, 0.1])  # 10 -> 0.1 over the 2-epoch search
    assert all(0.0 <= e["val_acc_genotype"] <= 1.0 for e in epochs)
    assert summary["genotype"]["space"] == "nb201"
