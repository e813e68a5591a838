"""Architecture-level zero-cost proxies against direct computations on toy networks (float64): closed
forms where the network is linear, finite differences for the gradients and the Hessian product, and
the activation-code definition of NASWOT. Plus ``nasfw score`` end to end."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasfw.registry import get_registry
from nasfw.testing import run_cli
from nasfw_freedarts import proxies as P

D, H, K, N = 4, 5, 3, 6  # input dim, hidden units, classes, batch


class TwoLayer(nn.Module):
    """x → A x (→ ReLU) → B (·); no biases, so the per-weight sums have closed forms."""

    def __init__(self, relu: bool = True, bn: bool = False):
        super().__init__()
        self.a = nn.Linear(D, H, bias=False)
        self.bn = nn.BatchNorm1d(H) if bn else nn.Identity()
        self.act = nn.ReLU() if relu else nn.Identity()
        self.b = nn.Linear(H, K, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.act(self.bn(self.a(x))))


def _net(**kw: bool) -> TwoLayer:
    torch.manual_seed(0)
    return TwoLayer(**kw).double()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.randn(N, D, generator=g, dtype=torch.float64), torch.randint(0, K, (N,), generator=g)


def _loss_at(net: TwoLayer, a: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(F.linear(net.act(F.linear(x, a)), b), y)


def _fd_grads(net: TwoLayer, x: torch.Tensor, y: torch.Tensor, a: torch.Tensor | None = None,
              b: torch.Tensor | None = None, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """∂L/∂A and ∂L/∂B by central differences, entry by entry (no autograd)."""
    a = net.a.weight.detach().clone() if a is None else a
    b = net.b.weight.detach().clone() if b is None else b
    out = []
    for which in (0, 1):
        w = (a, b)[which]
        g = torch.zeros_like(w)
        for idx in np.ndindex(*w.shape):
            hi, lo = w.clone(), w.clone()
            hi[idx] += eps
            lo[idx] -= eps
            args_hi = (hi, b) if which == 0 else (a, hi)
            args_lo = (lo, b) if which == 0 else (a, lo)
            g[idx] = (_loss_at(net, *args_hi, x, y) - _loss_at(net, *args_lo, x, y)) / (2 * eps)
        out.append(g)
    return out[0], out[1]


def test_snip_and_grad_norm_match_finite_difference_gradients() -> None:
    net, (x, y) = _net(), _batch()
    ga, gb = _fd_grads(net, x, y)
    a, b = net.a.weight.detach(), net.b.weight.detach()
    assert P.snip(net, x, y) == pytest.approx(float((a * ga).abs().sum() + (b * gb).abs().sum()), rel=1e-7)
    assert P.grad_norm(net, x, y) == pytest.approx(float(ga.norm() + gb.norm()), rel=1e-7)


def test_grasp_matches_finite_difference_hessian_vector_product() -> None:
    """−θ ⊙ Hg with Hg ≈ (∇L(θ + εg) − ∇L(θ − εg)) / 2ε, g = ∇L(θ) (all by finite differences)."""
    net, (x, y) = _net(), _batch()
    a, b = net.a.weight.detach().clone(), net.b.weight.detach().clone()
    ga, gb = _fd_grads(net, x, y)
    eps = 1e-4
    hi = _fd_grads(net, x, y, a + eps * ga, b + eps * gb)
    lo = _fd_grads(net, x, y, a - eps * ga, b - eps * gb)
    hga, hgb = ((h - lo_) / (2 * eps) for h, lo_ in zip(hi, lo))
    expected = float((-a * hga).sum() + (-b * hgb).sum())
    assert P.grasp(net, x, y) == pytest.approx(expected, rel=1e-4, abs=1e-9)


@pytest.mark.parametrize("relu", [False, True])
def test_synflow_of_two_homogeneous_layers_is_twice_r(relu: bool) -> None:
    """R(|A|,|B|) = 1ᵀ|B||A|1 is homogeneous of degree 1 in each layer, so Σ θ⊙∂R/∂θ over each layer is R
    (Euler) and synflow = 2R. With ReLU the same holds: every pre-activation is positive."""
    net = _net(relu=relu)
    r = float(net.b.weight.detach().abs().sum(0) @ net.a.weight.detach().abs() @ torch.ones(D, dtype=torch.float64))
    assert P.synflow(net, *_batch()) == pytest.approx(2 * r, rel=1e-12)


def test_synflow_removes_batch_norm_and_is_data_free() -> None:
    x, y = _batch()
    with_bn, plain = _net(bn=True), _net()
    with_bn.b.weight.data.copy_(plain.b.weight)  # same weights; BN would change R if it were kept
    assert P.synflow(with_bn, x, y) == pytest.approx(P.synflow(plain, x, y), rel=1e-12)
    assert P.synflow(plain, x, y) == P.synflow(plain, 5 * x, torch.flip(y, [0]))


def test_fisher_is_half_mean_square_of_activation_times_its_gradient() -> None:
    """Per output unit k of each layer with output z: ½·mean_n(z_nk ∂L/∂z_nk)², times the fan-in."""
    net, (x, y) = _net(), _batch()
    z1 = F.linear(x, net.a.weight.detach()).requires_grad_(True)
    z2 = F.linear(torch.relu(z1), net.b.weight.detach())
    z2.retain_grad()
    F.cross_entropy(z2, y).backward()
    expected = sum(0.5 * float(((z.detach() * z.grad) ** 2).mean(0).sum()) * fan_in
                   for z, fan_in in ((z1, D), (z2, H)))
    assert P.fisher(net, x, y) == pytest.approx(expected, rel=1e-10)


def test_jacob_cov_from_finite_difference_input_jacobians() -> None:
    net, (x, y) = _net(), _batch()
    net.act = nn.Tanh()  # a smooth net: no sample has an all-zero Jacobian
    eps = 1e-6
    jac = np.zeros((N, D))
    with torch.no_grad():
        for i in range(D):
            step = torch.zeros_like(x)
            step[:, i] = eps
            jac[:, i] = ((net(x + step).sum(1) - net(x - step).sum(1)) / (2 * eps)).numpy()
    lam = np.linalg.eigvalsh(np.corrcoef(jac))
    expected = -float(np.sum(np.log(lam + 1e-5) + 1 / (lam + 1e-5)))
    assert P.jacob_cov(net, x, y) == pytest.approx(expected, rel=1e-5)


def test_jacob_cov_is_nan_when_the_correlation_is_undefined() -> None:
    net, (x, y) = _net(relu=False), _batch()
    net.a.weight.data.zero_()  # zero Jacobian: corrcoef divides by a zero standard deviation
    assert math.isnan(P.jacob_cov(net, x, y))


def test_nwot_is_log_det_of_hamming_agreement_kernel() -> None:
    """K_ij = H − Hamming(c_i, c_j) over the ReLU codes c = [A x > 0] (one ReLU layer of H units)."""
    net, (x, y) = _net(), _batch()
    codes = (x @ net.a.weight.detach().T > 0).numpy()
    kmat = np.array([[H - np.sum(ci != cj) for cj in codes] for ci in codes], dtype=np.float64)
    assert P.nwot(net, x, y) == pytest.approx(float(np.linalg.slogdet(kmat)[1]), rel=1e-12)


def test_params_counts_trainable_parameters() -> None:
    net = _net(bn=True)
    net.bn.weight.requires_grad_(False)
    assert P.params(net, *_batch()) == D * H + H * K + H  # BN bias trainable, BN weight frozen


@pytest.mark.parametrize("name", sorted(P.PROXIES))
def test_proxies_leave_the_network_untouched(name: str) -> None:
    net, (x, y) = _net(bn=True), _batch()
    net.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    value = P.PROXIES[name](net, x, y)
    assert not math.isnan(value)  # nwot may be −inf here: 6 samples, 5 ReLUs, so K can be singular
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert not net.training and all(p.grad is None for p in net.parameters())


# ---------------------------------------------------------------- nasfw score


def test_score_command_writes_rows_and_is_seeded(tmp_path, capsys) -> None:
    args = ["score", "--space", "nb201", "--set", "init_channels=4", "--set", "cells_per_stage=1",
            "--proxy", "synflow", "--proxy", "params", "--archs", "3", "--batch-size", "8", "--no-benchmark"]
    runs = []
    for i in range(2):
        out = tmp_path / f"s{i}.csv"
        code, text, err = run_cli(*args, "--out", str(out))
        assert code == 0, err
        assert "scored 3 architectures of 'nb201' with synflow, params" in text
        with out.open() as fh:
            runs.append([{k: v for k, v in r.items() if not k.endswith("_seconds")} for r in csv.DictReader(fh)])
    assert runs[0] == runs[1] and len(runs[0]) == 3
    space = get_registry().create("search_space", "nb201")
    for row in runs[0]:
        space.parse(row["arch"])  # a real NB201 cell string
        assert float(row["synflow"]) > 0 and float(row["params"]) > 0
    assert run_cli(*args, "--out", str(tmp_path / "s.json"))[0] == 0
    assert [r["arch"] for r in json.loads((tmp_path / "s.json").read_text())] == [r["arch"] for r in runs[0]]


def test_score_command_unknown_proxy_is_one_line(capsys) -> None:
    code, _, err = run_cli("score", "--proxy", "synflw", "--archs", "1")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "synflw" in err, err


def test_score_command_unknown_network_option_is_one_line(capsys) -> None:
    code, _, err = run_cli("score", "--net", "Cc=4", "--archs", "1", "--no-benchmark")
    assert code == 2 and "no network option 'Cc'" in err and "Did you mean 'C'?" in err, err
