"""SynFlow's signal on BN supernets, the signal guard, in-place scoring and the selectors' plan/activity.

The DARTS-space facts at full size (8 cells, C = 16) are in ``scripts/darts_space_validation.py`` and the
README; here the same properties are checked on small supernets, in seconds.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasfw.data import DataShape
from nasfw.registry import get_registry
from nasfw.supernet import Supernet
from nasfw.testing import check_selector, run_cli, stage
from nasfw_freedarts import NoSignalError, SaliencyConfig, SaliencySelector, check_signal, finalize, in_place
from nasfw_freedarts.saliency import coefficients, grasp_scores, logits, row0_broadcast, synflow_scores
from nasfw_freedarts.weighting import RawAlpha

SMALL = {"layers": 5, "init_channels": 6, "steps": 2}  # 3 normal + 2 reduction cells, 5 edges per cell type
SHAPE = DataShape(1, 8, 8, 10)


def darts_supernet(seed: int = 0, params: dict | None = None, shape: DataShape = SHAPE) -> tuple:
    space = get_registry().create("search_space", {"name": "darts", "params": params or SMALL})
    torch.manual_seed(seed)
    return space, space.build_supernet(shape, RawAlpha())


def _r_and_grad(net: Supernet, bn: str, dtype=torch.float64, shape=(1, 8, 8)):
    """SynFlow's R = Σ logits(ones) on the linearised supernet, and ∂R/∂c, exactly as synflow_scores sets it up."""
    with in_place(net, dtype) as scratch:
        scratch.set_bn(bn)
        scratch.absolute(alphas=True)
        c = coefficients(net)

        def r_of(cc: dict) -> torch.Tensor:
            return logits(net, cc, torch.ones(1, *shape, dtype=dtype)).sum()

        r = r_of(c)
        g = torch.autograd.grad(r, list(c.values()))
        with torch.no_grad():
            def fd(key: str, row: int, col: int, eps: float = 1e-6) -> float:
                plus = {k: v.detach().clone() for k, v in c.items()}
                minus = {k: v.detach().clone() for k, v in c.items()}
                plus[key][row, col] += eps
                minus[key][row, col] -= eps
                return float((r_of(plus) - r_of(minus)) / (2 * eps))
            yield float(r), dict(zip(c, g)), fd


def test_synflow_alpha_gradient_is_far_above_float64_noise_and_matches_finite_differences():
    space, net = darts_supernet()
    gen = _r_and_grad(net, "eval")
    r, g, fd = next(gen)
    eps64 = torch.finfo(torch.float64).eps
    for k in ("normal", "reduce"):
        live = space.op_table()[k] & ~net.zero_ops[k]
        assert float(g[k][live].abs().min()) > 1e6 * eps64 * abs(r), k  # every live op's gradient is signal
        for row, col in [(0, 1), (0, 4), (2, 3), (4, 7)]:  # pools, skip, separable and dilated convs
            assert fd(k, row, col) == pytest.approx(float(g[k][row, col]), rel=1e-6, abs=1e-12), (k, row, col)
    gen.close()
    # the reference's train-mode BN on one all-ones image: zero spatial mean everywhere, R = Σ bias, no signal
    gen = _r_and_grad(net, "batch")
    r_b, g_b, _ = next(gen)
    assert r_b == pytest.approx(float(net.classifier.bias.detach().abs().sum()), rel=1e-9)
    assert max(float(v.abs().max()) for v in g_b.values()) < 1e-9 * max(float(v.abs().max()) for v in g.values())
    gen.close()


def test_synflow_scores_are_c_times_the_gradient():
    _, net = darts_supernet(1)
    gen = _r_and_grad(net, "eval")
    _, g, _ = next(gen)
    gen.close()
    s = synflow_scores(net, (1, 8, 8))
    for k, v in s.items():
        c = net.alphas[k].detach().double().abs()
        torch.testing.assert_close(torch.where(torch.isfinite(v), v, 0), (c * g[k]).abs() * net.mask(k), rtol=1e-12,
                                   atol=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synflow_float32_and_float64_pick_the_same_darts_genotype(seed):
    space, net = darts_supernet(seed)
    table = space.op_table()

    def genotype(dtype, bn):
        s = synflow_scores(net, (1, 8, 8), dtype=dtype, bn=bn)
        return s, space.discretize({k: torch.where(table[k], v, -math.inf) for k, v in s.items()})

    s64, g64 = genotype(torch.float64, "eval")
    s32, g32 = genotype(torch.float32, "eval")
    assert g64 == g32
    report = check_signal("synflow", s64, s32, table, ("float64", "float32"), 10.0, (g64, g32))
    assert report.verdict == "signal" and report.tensors["normal"].ratio > 1e4 and report.agreement == 1.0
    # train-mode BN: the scores are rounding residue, their spread below the float32/float64 difference
    b64, _ = genotype(torch.float64, "batch")
    b32, _ = genotype(torch.float32, "batch")
    assert check_signal("synflow", b64, b32, table, ("float64", "float32"), 10.0).verdict == "no-signal"


# --------------------------------------------------------------------------- the guard through select()


def _select(selector: dict, ops=("conv_3x3", "conv_1x1", "skip_connect"), layers=2, replace=None):
    """select() of a training-free run on the kit's toy cell space; returns (genotype or error, activity)."""
    with stage(space="toy-cell", space_params={"ops": list(ops), "layers": layers}, optimizer="none",
               selector=selector) as run:
        sel = replace(run) if replace is not None else run.selector
        try:
            out = sel.select(run.supernet, run.space, run)
        except NoSignalError as exc:
            out = exc
        return out, run.extra_summary.get("activity", {}).get("selector", {})


def test_guard_fires_on_a_constructed_degenerate_supernet_and_not_on_a_healthy_one():
    """Toy cells of conv→BN and identity only: with train-mode BN on one all-ones image every node has zero
    spatial mean, so the pooled output — and R — does not depend on α. In eval mode the same supernet is healthy."""
    bad, act = _select({"name": "synflow", "params": {"bn": "batch"}})
    assert isinstance(bad, NoSignalError)
    msg = str(bad)
    assert "\n" not in msg and "no signal" in msg and "selector.bn=eval" in msg
    assert act["verdict"] == "no-signal" and act["acted"] is False and act["ratio"] < 1e-3
    good, act = _select({"name": "synflow"})
    assert not isinstance(good, Exception)
    assert act["verdict"] == "signal" and act["acted"] is True and act["ratio"] > 1e3
    assert act["precisions"] == ["float64", "float32"] and act["precision_agreement"] == 1.0
    for name in ("snip", "grasp"):
        g, act = _select({"name": name, "params": {"batch_size": 8}})
        assert not isinstance(g, Exception) and act["verdict"] == "signal", (name, act)
        assert act["precisions"] == ["float32", "float64"]


class _Constant(SaliencySelector):
    """A third-party saliency whose scores are one constant plus rounding: it inherits the guard."""

    measure = "constant"

    class Config(SaliencyConfig):
        spread: float = 0.0

    def score_once(self, supernet, run, repeat, dtype):
        out = {}
        for k, a in supernet.alphas.items():
            rows, cols = a.shape
            structure = self.config.spread * torch.arange(rows * cols, dtype=torch.float64).reshape(rows, cols)
            value = (torch.full((rows, cols), 1.0, dtype=dtype) / 3 * 3 + structure.to(dtype))  # rounds per dtype
            out[k] = value + torch.finfo(dtype).eps * torch.arange(rows * cols).reshape(rows, cols).to(dtype)
        return finalize(supernet, out, self.measure)


def test_a_third_party_saliency_selector_inherits_the_guard():
    def make(spread):
        return lambda run: _Constant(_Constant.Config(spread=spread), run.ctx)

    bad, act = _select({"name": "synflow"}, replace=make(0.0))
    assert isinstance(bad, NoSignalError) and str(bad).startswith("constant: no signal")
    assert act["measure"] == "constant" and act["verdict"] == "no-signal"
    good, act = _select({"name": "synflow"}, replace=make(0.1))
    assert not isinstance(good, Exception) and act["verdict"] == "signal"


class GradNormSelector(SaliencySelector):
    """CONTRIBUTING.md's example of a third-party saliency selector, verbatim."""

    measure = "grad-norm"

    class Config(SaliencyConfig):
        batch_size: int = 64
        dtype: str | None = None

    def score_once(self, supernet, run, repeat, dtype):
        x, y = self.batch(run, self.config.batch_size, repeat)
        with in_place(supernet, dtype) as scratch:
            c = {k: w.detach().clone().requires_grad_(True) for k, w in scratch.net.mixing_weights().items()}
            with scratch.net.override_weights(c):
                loss = torch.nn.functional.cross_entropy(scratch.net(x.to(dtype)), y)
            g = torch.autograd.grad(loss, list(c.values()))
            return finalize(scratch.net, {k: gk.abs() for k, gk in zip(c, g)}, self.measure)


def test_the_contributing_example_passes_the_selector_contract_and_its_guard():
    check_selector(GradNormSelector, {"batch_size": 8})
    g, act = _select({"name": "synflow"}, replace=lambda run: GradNormSelector(GradNormSelector.Config(batch_size=8),
                                                                              run.ctx))
    assert not isinstance(g, Exception) and act["measure"] == "grad-norm" and act["verdict"] == "signal"


def test_guard_off_records_unchecked_and_still_warns_on_all_zero():
    g, act = _select({"name": "synflow", "params": {"bn": "batch", "signal_guard": False}})
    assert not isinstance(g, Exception)
    assert {k: act[k] for k in ("measure", "verdict", "acted")} == {"measure": "synflow", "verdict": "unchecked",
                                                                     "acted": None}
    assert act["decisions"] > 0 and "ties" in act  # nasfw.acting's decision figures are recorded too


def test_degenerate_synflow_run_stops_with_one_line_and_exit_2(tmp_path):
    out = tmp_path / "run"
    res = run_cli("run", "--space", "darts", "--set", "space.layers=3", "--set", "space.init_channels=4",
                  "--optimizer", "none", "--selector", "synflow", "--set", "selector.bn=batch", "--quiet",
                  "--out", str(out))
    assert res.code == 2, res.out + res.err
    lines = [ln for ln in res.err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "no signal" in lines[0] and "selector.bn=eval" in lines[0] and "Traceback" not in res.err
    assert not (out / "genotype.json").exists()


def test_run_plan_and_activity_show_what_the_selector_computed(tmp_path):
    out = tmp_path / "run"
    res = run_cli("run", "--space", "darts", "--set", "space.layers=3", "--set", "space.init_channels=4",
                  "--optimizer", "none", "--selector", "synflow", "--out", str(out))
    assert res.code == 0, res.err
    assert "plan: selector synflow: measure=synflow" in res.out + res.err
    act = json.loads((out / "summary.json").read_text())["activity"]
    plan = act["plan"]["selector"]
    assert plan == {"measure": "synflow", "scores": 2 * 14 * 8, "passes": 2, "guard": "spread/noise>=3",
                    "input": "ones(1,C,H,W)", "bn": "eval", "dtype": "float64"}
    sel = act["selector"]
    assert sel["verdict"] == "signal" and sel["ratio"] >= 3 and set(sel["tensors"]) == {"normal", "reduce"}
    assert sel["noise"] > 0 and sel["spread"] == pytest.approx(sel["ratio"] * sel["noise"])


# --------------------------------------------------------------------------- in-place scoring


def test_in_place_scoring_restores_everything_bit_for_bit_without_copying_weights():
    _, net = darts_supernet(params={"layers": 3, "init_channels": 4, "steps": 2})
    with torch.no_grad():  # awkward values: negative zeros, a NaN-free mix of signs
        first = net.weight_parameters()[0]
        first.view(-1)[:3] = torch.tensor([-0.0, 0.0, -1.5])
    net.eval()
    first.grad = torch.ones_like(first)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    ptrs = [p.data_ptr() for p in net.parameters()]
    grads = [p.requires_grad for p in net.parameters()]
    training = [m.training for m in net.modules()]
    bns = {id(m) for m in net.modules() if isinstance(m, nn.BatchNorm2d)}
    with in_place(net) as scratch:  # the supernet's own precision: weights are used where they are
        assert [p.data_ptr() for p in net.parameters()] == ptrs
        scratch.absolute(alphas=True)
        scratch.set_bn("identity")
        assert bool((first.detach() >= 0).all()) and all(m.training for m in net.modules() if id(m) not in bns)
        net(torch.randn(2, 1, 8, 8))
    for mode in ("batch", "eval"):  # a train-mode forward moves the BN statistics of scratch buffers only
        for dtype, reinit in ((None, False), (torch.float64, False), (None, True)):
            with in_place(net, dtype, reinit=reinit) as scratch:
                scratch.set_bn(mode)
                scratch.absolute()
                net(torch.ones(1, 1, 8, 8, dtype=dtype or torch.float32)).sum()
    after = net.state_dict()
    def bits(t: torch.Tensor) -> torch.Tensor:
        return t.view(torch.uint8) if t.is_floating_point() else t

    for k in before:  # bit-for-bit, signs of zeros included
        assert before[k].dtype == after[k].dtype and torch.equal(bits(before[k]), bits(after[k])), k
    assert torch.signbit(first.detach().view(-1)[0]) and not torch.signbit(first.detach().view(-1)[1])
    assert [p.data_ptr() for p in net.parameters()] == ptrs
    assert [p.requires_grad for p in net.parameters()] == grads and [m.training for m in net.modules()] == training
    assert torch.equal(first.grad, torch.ones_like(first))
    assert all("forward" not in m.__dict__ for m in net.modules())


def test_eval_bn_without_running_statistics_uses_the_initial_ones_not_the_batchs():
    """NB201's search BN keeps no running statistics, and PyTorch's eval mode then falls back to batch
    statistics; ``bn=eval`` must normalise with mean 0, variance 1 instead (γ x / √(1 + ε) + β), and undo it."""
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3, affine=True, track_running_stats=False, eps=1e-5)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, -2.0, 1.5]))
        bn.bias.copy_(torch.tensor([0.1, 0.2, -0.3]))
    net = Supernet({"cell": (1, 1)}, RawAlpha())
    net.body = bn
    x = torch.randn(4, 3, 2, 2) * 3 + 5
    with in_place(net) as scratch:
        scratch.set_bn("eval")
        y = bn(x)
    w, b = bn.weight.detach().view(1, 3, 1, 1), bn.bias.detach().view(1, 3, 1, 1)
    assert torch.allclose(y, w * x / math.sqrt(1 + 1e-5) + b, atol=1e-6)
    assert "forward" not in bn.__dict__ and bn.training  # restored: train mode, batch statistics again
    assert torch.allclose(bn(x).mean(dim=(0, 2, 3)), bn.bias.detach(), atol=1e-5)


# --------------------------------------------------------------------------- GraSP's NB201 notebook variants


class TwoEdges(Supernet):
    """x → Σ_k c[0,k] A_k x → tanh → Σ_k c[1,k] B_k (·) → head: two edges, so row 0 of g differs from row 1."""

    def __init__(self, d: int = 3, k: int = 3):
        super().__init__({"cell": (2, k)}, RawAlpha(), alpha_init_std=0.5)
        self.a = nn.ModuleList(nn.Linear(d, d, bias=False) for _ in range(k))
        self.b = nn.ModuleList(nn.Linear(d, d, bias=False) for _ in range(k))
        self.head = nn.Linear(d, 3, bias=False)

    def forward(self, x):
        c = self.mixing_weights()["cell"]
        h = torch.tanh(sum(c[0, j] * op(x) for j, op in enumerate(self.a)))
        return self.head(torch.tanh(sum(c[1, j] * op(h) for j, op in enumerate(self.b))))


def _loss_grad(net, c, x, y):
    c = c.clone().requires_grad_(True)
    with net.override_weights({"cell": c}):
        return torch.autograd.grad(F.cross_entropy(net(x), y), c)[0]


@pytest.mark.parametrize("variant", ["nb201", "nb201-row0"])
def test_grasp_nb201_variants_against_finite_differences(variant):
    torch.manual_seed(0)
    net = TwoEdges().double()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randint(0, 3, (6,), generator=g)
    c0 = net.mixing_weights()["cell"].detach()
    g0 = _loss_grad(net, c0, x, y)
    d = g0 + 1e-3 * c0  # Adam's first step with weight decay 1e-3: m̂ = d, v̂ = d²
    c1 = c0 - 3e-2 * d / (d.abs() + 1e-8)
    v = row0_broadcast(g0) if variant == "nb201-row0" else g0
    assert variant == "nb201" or not torch.allclose(v, g0)  # the bug changes the vector
    hv = (_loss_grad(net, c1 + 1e-5 * v, x, y) - _loss_grad(net, c1 - 1e-5 * v, x, y)) / 2e-5
    got = grasp_scores(net, x, y, variant=variant)["cell"]
    torch.testing.assert_close(got, c0 * hv, rtol=1e-5, atol=1e-10)
    assert torch.equal(row0_broadcast(g0)[1], g0[0])
