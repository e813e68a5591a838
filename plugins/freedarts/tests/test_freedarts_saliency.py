"""Selector saliencies against hand computations and finite differences on toy supernets (float64)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasfw.data import DataShape
from nasfw.registry import get_registry
from nasfw.supernet import Supernet
from nasfw_freedarts.errors import SaliencyError
from nasfw_freedarts.saliency import grasp_scores, snip_scores, synflow_scores, warn_if_zero
from nasfw_freedarts.weighting import RawAlpha


class LinearMix(Supernet):
    """x → Σ_k c_k A_k x (one edge, K linear ops) → B (·) ; optional tanh between, for a non-zero Hessian."""

    def __init__(self, d: int = 3, h: int = 4, classes: int = 3, k: int = 3, nonlinear: bool = False):
        super().__init__({"cell": (1, k)}, RawAlpha(), alpha_init_std=0.5)
        self.ops = nn.ModuleList(nn.Linear(d, h, bias=False) for _ in range(k))
        self.head = nn.Linear(h, classes, bias=False)
        self.nonlinear = nonlinear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.mixing_weights()["cell"]
        mixed = sum(c[0, k] * op(x) for k, op in enumerate(self.ops))
        return self.head(torch.tanh(mixed) if self.nonlinear else mixed)


def _data(n: int = 5, d: int = 3, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randint(0, classes, (n,), generator=g)


def _net(**kw: object) -> LinearMix:
    torch.manual_seed(0)
    return LinearMix(**kw).double()  # type: ignore[arg-type]


def test_snip_equals_hand_computed_gradient() -> None:
    net = _net()
    x, y = _data()
    c = net.alphas["cell"].detach()[0]
    logits = net(x).detach()
    delta = (torch.softmax(logits, 1) - F.one_hot(y, 3)) / x.shape[0]  # ∂L/∂logits of the mean CE
    expected = torch.stack([(delta * (x @ op.weight.T @ net.head.weight.T)).sum() for op in net.ops])
    scores = snip_scores(net, x, y)["cell"][0]
    assert torch.allclose(scores, (c * expected).abs(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("score", [
    lambda net, x, y: snip_scores(net, x, y, abs_weights=True),
    lambda net, x, y: synflow_scores(net, (3, 8, 8), dtype=torch.float64, alpha_value=1.0),
    lambda net, x, y: grasp_scores(net, x, y, variant="nb201", abs_weights=True),
], ids=["snip", "synflow-float64", "grasp"])
def test_scoring_leaves_the_supernet_untouched(score) -> None:
    """Scores work on swapped-in tensor copies: values, dtypes, BN statistics, grads, requires_grad, eval
    mode and parameter identity (what an optimizer holds) all come back as they were."""
    tiny = {"layers": 3, "init_channels": 4, "steps": 2}
    space = get_registry().create("search_space", {"name": "darts", "params": tiny})
    torch.manual_seed(0)
    net = space.build_supernet(DataShape(3, 8, 8, 10), weighting=RawAlpha())
    first = next(net.parameters())
    first.grad = torch.ones_like(first)
    net.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    ids = [id(p) for p in net.parameters()]
    flags = [p.requires_grad for p in net.parameters()]
    g = torch.Generator().manual_seed(0)
    score(net, torch.randn(4, 3, 8, 8, generator=g), torch.randint(0, 10, (4,), generator=g))
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) and before[k].dtype == after[k].dtype for k in before)
    assert [id(p) for p in net.parameters()] == ids and [p.requires_grad for p in net.parameters()] == flags
    assert torch.equal(first.grad, torch.ones_like(first))
    assert not any(m.training for m in net.modules())


def test_synflow_equals_product_of_absolute_weights_and_is_data_free() -> None:
    net = _net()
    c = net.alphas["cell"].detach()[0].abs()
    ones = torch.ones(3, dtype=torch.float64)
    # R = 1ᵀ|B| Σ_k |c_k| |A_k| 1  ⇒  |c_k ∂R/∂c_k| = |c_k| · 1ᵀ|B||A_k|1
    expected = torch.stack([c[k] * (net.head.weight.abs().sum(0) @ op.weight.abs() @ ones)
                            for k, op in enumerate(net.ops)])
    got = synflow_scores(net, (3,))["cell"][0]
    assert torch.allclose(got, expected, rtol=1e-12)
    # sign flips of the weights change nothing (SynFlow linearises with |θ|); nor does the data (there is none)
    with torch.no_grad():
        net.ops[0].weight.neg_()
        net.head.weight.mul_(-1)
    assert torch.allclose(synflow_scores(net, (3,))["cell"][0], expected, rtol=1e-12)


def _grad(net: LinearMix, c: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    c = c.clone().requires_grad_(True)
    with net.override_weights({"cell": c}):
        loss = F.cross_entropy(net(x), y)
    return torch.autograd.grad(loss, c)[0]


def _hvp_fd(net: LinearMix, c: torch.Tensor, v: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
            eps: float = 1e-5) -> torch.Tensor:
    """H(c) v by central differences of the gradient."""
    return (_grad(net, c + eps * v, x, y) - _grad(net, c - eps * v, x, y)) / (2 * eps)


def test_gradient_itself_matches_finite_differences() -> None:
    net = _net(nonlinear=True)
    x, y = _data()
    c = net.mixing_weights()["cell"].detach()
    g = _grad(net, c, x, y)
    for k in range(3):
        e = torch.zeros_like(c)
        e[0, k] = 1e-6

        def loss_at(cc: torch.Tensor) -> float:
            with net.override_weights({"cell": cc}):
                return float(F.cross_entropy(net(x), y).detach())

        assert abs((loss_at(c + e) - loss_at(c - e)) / 2e-6 - float(g[0, k])) < 1e-7


def test_grasp_hg_matches_finite_differences() -> None:
    net = _net(nonlinear=True)
    x, y = _data()
    c = net.mixing_weights()["cell"].detach()
    g = _grad(net, c, x, y)
    hg = _hvp_fd(net, c, g, x, y)
    assert hg.abs().max() > 1e-6  # the toy has curvature
    got = grasp_scores(net, x, y, variant="hg")["cell"]
    assert torch.allclose(got, c * hg, rtol=1e-6, atol=1e-10)


def _adam_first_step(c0: torch.Tensor, g0: torch.Tensor, lr: float, wd: float = 1e-3,
                     eps: float = 1e-8) -> torch.Tensor:
    """Adam's first step by hand: with bias correction m̂ = d and v̂ = d², d = g + wd·c."""
    d = g0 + wd * c0
    return c0 - lr * d / (d.abs() + eps)


def test_grasp_nb201_variant_adam_prestep_then_hessian_at_the_new_point() -> None:
    net = _net(nonlinear=True)
    x, y = _data()
    c0 = net.mixing_weights()["cell"].detach()
    g0 = _grad(net, c0, x, y)
    c1 = _adam_first_step(c0, g0, lr=3e-2)
    expected = c0 * _hvp_fd(net, c1, g0, x, y)
    got = grasp_scores(net, x, y, variant="nb201")["cell"]
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-10)


def test_grasp_darts_variant_is_h_c1_plus_g1() -> None:
    net = _net(nonlinear=True)
    x, y = _data()
    c0 = net.mixing_weights()["cell"].detach()
    g0 = _grad(net, c0, x, y)
    c1 = _adam_first_step(c0, g0, lr=3e-4)
    expected = (c0 * (_hvp_fd(net, c1, c1, x, y) + _grad(net, c1, x, y))).abs()
    got = grasp_scores(net, x, y, variant="darts")["cell"]
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-10)


def test_masked_entries_are_minus_inf() -> None:
    net = _net()
    net.set_mask("cell", torch.tensor([[True, False, True]]))
    s = snip_scores(net, *_data())["cell"]
    assert s[0, 1] == float("-inf") and torch.isfinite(s[0, [0, 2]]).all()


@pytest.mark.skipif("nb201" not in get_registry().names("search_space"), reason="nb201 space not installed")
def test_synflow_at_alpha_one_float64_is_finite_float32_raises() -> None:
    """The reference's NB201 SynFlow run (α = 1, float32, train-mode BN) degenerated (all NaN → all `none`)."""
    torch.manual_seed(0)
    space = get_registry().create("search_space", "nb201")
    net = space.build_supernet(DataShape(3, 32, 32, 10), RawAlpha())
    s = synflow_scores(net, (3, 32, 32), dtype=torch.float64, alpha_value=1.0, bn="batch")["cell"]
    assert torch.isfinite(s).all()
    none = space.config.primitives.index("none")
    assert (s[:, none] == 0).all() and (s[:, [k for k in range(5) if k != none]] > 0).all()
    # float32 loses the signal: depending on the torch build the forward overflows (the reference's NaNs, an
    # error here) or every gradient underflows to zero (a warning here); either way it is never silent.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            s32 = synflow_scores(net, (3, 32, 32), dtype=torch.float32, alpha_value=1.0, bn="batch")["cell"]
            warn_if_zero({"cell": s32}, "synflow")
        except SaliencyError as e:
            assert "not finite" in str(e)
        else:
            assert (s32 == 0).all() and any("every synflow score" in str(w.message) for w in caught)
