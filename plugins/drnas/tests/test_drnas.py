"""DrNAS: the Dirichlet sample's pathwise gradient (against finite differences of the Beta CDF and, in
expectation, against the closed-form gradient of E[f(w)]), masking, the KL term, and whole runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.special import betainc, betaln

from nasfw import testing as kit
from nasfw_drnas.dirichlet import concentration, dirichlet_mean, dirichlet_sample, kl_to_uniform

FAST = ["--set", "search.steps_per_epoch=2", "--set", "search.eval_batches=1", "--batch-size", "8", "--quiet"]
NB201_TINY = ["--space", "nb201", "--set", "space.init_channels=4", "--set", "space.cells_per_stage=1", *FAST]


def test_pathwise_gradient_of_a_two_op_sample_is_the_implicit_derivative_of_the_beta_cdf():
    """For two ops w₁ ~ Beta(a, b): dw₁/da = −(∂I_w(a, b)/∂a) / (∂I_w(a, b)/∂w), the implicit reparameterisation
    derivative; ∂/∂a by central finite differences of scipy's regularised incomplete beta in float64."""
    torch.manual_seed(0)
    for a0, b0 in ((0.7, 1.3), (2.0, 5.0), (1.0, 1.0)):
        conc = torch.tensor([a0, b0], dtype=torch.float64, requires_grad=True)
        w = torch.distributions.Dirichlet(conc).rsample()
        (g,) = torch.autograd.grad(w[0], conc)
        x, h = float(w[0].detach()), 1e-6
        d_a = (betainc(a0 + h, b0, x) - betainc(a0 - h, b0, x)) / (2 * h)
        d_b = (betainc(a0, b0 + h, x) - betainc(a0, b0 - h, x)) / (2 * h)
        density = np.exp((a0 - 1) * np.log(x) + (b0 - 1) * np.log1p(-x) - betaln(a0, b0))
        assert float(g[0]) == pytest.approx(-d_a / density, rel=1e-4, abs=1e-7)
        assert float(g[1]) == pytest.approx(-d_b / density, rel=1e-4, abs=1e-7)


def test_pathwise_gradient_is_unbiased_for_the_gradient_of_the_expectation():
    """Mean over 40,000 draws of ∇_β f(w) against ∇_β E[f(w)] in closed form, through elu+1 and a mask:
    f(w) = Σ c_i w_i + w₀², E[w_i] = a_i / A, E[w₀²] = a₀(a₀ + 1) / (A(A + 1)) over the available ops."""
    torch.manual_seed(1)
    beta = torch.tensor([0.3, -0.4, 1.1, 0.0, -2.0], dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([True, True, True, True, False])
    c = torch.tensor([0.5, -1.0, 2.0, 0.3, 7.0], dtype=torch.float64)
    groups = []  # 20 independent groups of 2,000 draws: their spread is the Monte-Carlo error
    for _ in range(20):
        w = dirichlet_sample(beta.expand(2000, 5), mask.expand(2000, 5))
        assert torch.equal(w[:, 4], torch.zeros(2000, dtype=w.dtype))  # the masked op never gets weight
        groups.append(torch.autograd.grad(((w * c).sum(-1) + w[:, 0] ** 2).mean(), beta)[0])
    g = torch.stack(groups)
    g_mc, se = g.mean(0), g.std(0) / len(groups) ** 0.5
    a = concentration(beta)[:4]
    total = a.sum()
    expect = (a / total * c[:4]).sum() + a[0] * (a[0] + 1) / (total * (total + 1))
    (g_exact,) = torch.autograd.grad(expect, beta)
    assert float(g_exact[4]) == 0.0 and abs(float(g_mc[4])) < 1e-12  # the masked op's β does not matter
    assert bool(((g_mc - g_exact).abs()[:4] <= 4 * se[:4] + 1e-9).all()), (g_mc, g_exact, se)


def test_mean_weighting_and_kl_closed_forms():
    beta = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(4, 5, dtype=torch.bool)
    mask[1, 2:] = False
    mask[2] = False
    mask[3, 1:] = False
    mean = dirichlet_mean(beta, mask)
    conc = concentration(beta)
    assert torch.allclose(mean[0], conc[0] / conc[0].sum()) and torch.equal(mean[2], torch.zeros(5, dtype=mean.dtype))
    full = torch.distributions.kl_divergence(torch.distributions.Dirichlet(conc[0]),
                                             torch.distributions.Dirichlet(torch.ones(5, dtype=torch.float64)))
    part = torch.distributions.kl_divergence(torch.distributions.Dirichlet(conc[1, :2]),
                                             torch.distributions.Dirichlet(torch.ones(2, dtype=torch.float64)))
    # a decided edge (one op) and an empty one add nothing
    assert float(kl_to_uniform(beta, mask)) == pytest.approx(float(full + part), rel=1e-12)
    assert float(kl_to_uniform(torch.zeros(2, 5), torch.ones(2, 5, dtype=torch.bool))) == pytest.approx(0, abs=1e-6)


def test_kl_regulariser_enters_the_alpha_gradient():
    with kit.stage(optimizer={"name": "drnas", "params": {"kl_scale": 1.0, "arch_lr": 1e-6}},
                   registry=kit.toy_registry(), steps=1) as run:
        opt = run.optimizer
        grads_kl, _ = opt.first_order_alpha_grad(run.to_device(run.data.val.next()))
        opt.config.kl_scale = 0.0
        opt.gen.manual_seed(123)
        batch = run.to_device(run.data.val.next())
        g0, _ = opt.first_order_alpha_grad(batch)
        opt.config.kl_scale = 1.0
        opt.gen.manual_seed(123)
        g1, _ = opt.first_order_alpha_grad(batch)
        a = run.supernet.alphas["cell"]
        (g_kl,) = torch.autograd.grad(kl_to_uniform(a, run.supernet.mask("cell")), a)
        assert grads_kl and torch.allclose(g1[0] - g0[0], g_kl, atol=1e-6) and float(g_kl.abs().sum()) > 0


@pytest.mark.parametrize("name", ["drnas"])
def test_drnas_contract(name):
    kit.check_optimizer(name)
    kit.check_edge_weighting("dirichlet-mean")


def test_unrolled_is_refused():
    res = kit.run_cli("config", "show", "--optimizer", "drnas", "--set", "optimizer.unrolled=true")
    assert res.code == 2 and "first-order" in res.err and "Traceback" not in res.err


@pytest.mark.parametrize("selector", ["magnitude", "perturb"])
def test_drnas_end_to_end_on_nb201(tmp_path, selector):
    out = tmp_path / selector
    extra = kit.PERTURB_TINY if selector == "perturb" else ()
    summary = kit.run_summary(out, *NB201_TINY, "--optimizer", "drnas", "--selector", selector, "--epochs", "2", *extra)
    act = summary["activity"]["optimizer"]
    assert act["alpha_updates"] >= 4 and act["alpha_abs_change"]["cell"] > 0
    assert summary["components"]["edge_weighting"]["name"] == "dirichlet-mean"


def test_progressive_schedule_prunes_to_the_strongest_ops_and_warms_up_each_stage():
    stages = [{"length": 0.5, "keep_ops": None, "warmup": 0.5}, {"length": 0.5, "keep_ops": 2, "warmup": 0.5}]
    with kit.stage(optimizer={"name": "drnas", "params": {"schedule": "progressive", "stages": stages}},
                   registry=kit.toy_registry(), epochs=4, steps=1) as run:
        opt, net = run.optimizer, run.supernet
        assert opt.stage_plan == [(0, 2, None, 1), (2, 4, 2, 1)]
        assert run.plan["optimizer"]["alpha_updates"] == 2  # epochs 1 and 3
        active = []
        for epoch in range(4):
            opt.epoch_start(epoch)
            if epoch == 2:
                a = net.alphas["cell"].detach()
                want = torch.zeros_like(net.mask("cell")).scatter_(-1, a.topk(2, dim=-1).indices, True)
                assert torch.equal(net.mask("cell").cpu(), want.cpu())  # the two strongest by β on every edge
            active.append(opt._alpha_active())
            kit.train_steps(run, 1)
        assert active == [False, True, False, True] and opt.alpha_updates == 2
        assert opt.activity()["ops_per_edge"] == {"cell": 2}


def test_progressive_is_the_default_on_the_darts_space(tmp_path):
    out = tmp_path / "darts"
    res = kit.run_cli("run", "--space", "darts", "--set", "space.layers=2", "--set", "space.init_channels=4",
                      "--optimizer", "drnas", "--epochs", "2", *FAST, "--out", str(out),
                      "--set", "optimizer.stages=[{length: 0.5, warmup: 0}, {length: 0.5, keep_ops: 4, warmup: 0}]")
    assert res.code == 0, res.err
    act = json.loads((out / "summary.json").read_text())["activity"]["optimizer"]
    assert act["stages_pruned"] == 1 and act["ops_per_edge"] == {"normal": 4, "reduce": 4}
    assert act["alpha_updates"] == 4 and act["alpha_abs_change"]["normal"] > 0


WIDEN_STAGES = [{"length": 0.5, "warmup": 0}, {"length": 0.5, "keep_ops": 4, "warmup": 0, "partial_channels": 1}]
PC_DARTS = {"name": "darts", "params": {"layers": 2, "init_channels": 4, "partial_channels": 2}}


def test_progressive_schedule_widens_partial_channels_between_stages(tmp_path):
    """The official ks = [6, 4]: after pruning, the second stage runs the ops on more channels, still training."""
    out = tmp_path / "wide"
    summary = kit.run_summary(out, "--space", "darts", "--set", "space.layers=2", "--set", "space.init_channels=4",
                              "--set", "space.partial_channels=2", "--optimizer", "drnas", "--epochs", "2", *FAST,
                              "--set", f"optimizer.stages={json.dumps(WIDEN_STAGES)}")
    act = summary["activity"]["optimizer"]
    assert act["stages_pruned"] == 1 and act["partial_channels"] == 1 and act["alpha_updates"] == 4
    assert any("partial channels K = 1" in s for s in summary["activity"]["plan"]["optimizer"]["stages"])


def test_widening_resumes_exactly(tmp_path):
    """A checkpoint written after the widening rebuilds the wide ops and the widened momentum: the resumed run's
    next steps equal the uninterrupted run's."""
    from nasfw.checkpoint import load_checkpoint
    from nasfw.engine import _restore

    ref = {"name": "drnas", "params": {"schedule": "progressive", "stages": WIDEN_STAGES}}
    with kit.stage(space=PC_DARTS, optimizer=ref, epochs=2, steps=4, out_dir=tmp_path) as run_a:
        opt = run_a.optimizer
        n0 = sum(p.numel() for p in opt.weights)
        opt.epoch_start(0)
        kit.train_steps(run_a, 2)
        run_a.epoch = 1
        opt.epoch_start(1)
        assert run_a.supernet.partial_channels == 1 and sum(p.numel() for p in opt.weights) > n0
        assert {id(p) for p in opt.weights} == {id(p) for p in run_a.supernet.weight_parameters()}
        kit.train_steps(run_a, 1)
        run_a.checkpoint()
        kit.train_steps(run_a, 2)
        state_a = {k: v.detach().clone() for k, v in run_a.supernet.state_dict().items()}
        ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    with kit.stage(space=PC_DARTS, optimizer=ref, epochs=2, steps=4) as run_b:
        _restore(run_b, ckpt)
        assert run_b.supernet.partial_channels == 1
        run_b.optimizer.epoch_start(run_b.epoch)
        kit.train_steps(run_b, 2)
        state_b = run_b.supernet.state_dict()
        assert state_a.keys() == state_b.keys()
        for k, v in state_a.items():
            assert torch.equal(v, state_b[k]), k


def test_a_stage_that_narrows_partial_channels_is_refused():
    bad = json.dumps([{"length": 0.5}, {"length": 0.5, "partial_channels": 4}])
    res = kit.run_cli("run", "--space", "darts", "--set", "space.layers=2", "--set", "space.init_channels=4",
                      "--set", "space.partial_channels=2", "--optimizer", "drnas", "--epochs", "2", *FAST,
                      "--set", f"optimizer.stages={bad}")
    assert res.code == 2 and "can only fall" in res.err and "Traceback" not in res.err
