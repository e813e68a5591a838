"""The ZARTS update rules against their closed forms, on toy black-box functions."""

from __future__ import annotations

import math

import pytest
import torch

from nasfw_zarts import estimators as est


def _masks(rows: int = 3, k: int = 4, hole: bool = True) -> dict[str, torch.Tensor]:
    m = {"normal": torch.ones(rows, k, dtype=torch.bool), "reduce": torch.ones(rows, k, dtype=torch.bool)}
    if hole:
        m["reduce"][0, -1] = False
    return m


def _closed_form_weights(losses, loss0, deltas, g, sigma, tau, lamb, released):
    """w̃_i = exp(-(L_i - L_0)/τ) / (q̃ + 1e-4), written out directly (no log space)."""
    out = []
    for li, d in zip(losses.tolist(), deltas):
        first = (1 - lamb) * math.exp(-float(((d + g) ** 2).sum()) / (2 * sigma**2))
        sq = float((d**2).sum())
        second = lamb * math.exp(-sq / 2 * sigma**2 if released else -sq / (2 * sigma**2))
        out.append(math.exp(-(li - loss0) / tau) / (first + second + 1e-4))
    s = sum(out)
    return torch.tensor([o / s for o in out], dtype=torch.float64)


def test_mgs_weights_equal_closed_form() -> None:
    gen = torch.Generator().manual_seed(0)
    d, n = 5, 6
    g = 0.3 * torch.randn(d, generator=gen, dtype=torch.float64)
    sigma, tau, lamb = 0.4, 0.5, 0.2  # small d and large σ: both q̃ terms matter and differ between samples
    deltas = (1 - lamb) * (-g + sigma * torch.randn(n, d, generator=gen, dtype=torch.float64)) \
        + lamb * sigma * torch.randn(n, d, generator=gen, dtype=torch.float64)
    losses = 2.0 + 0.1 * torch.randn(n, generator=gen, dtype=torch.float64)
    for released in (False, True):
        w = est.mgs_weights(losses, 2.05, deltas, g, sigma, tau, lamb, "released" if released else "intended")
        ref = _closed_form_weights(losses, 2.05, deltas, g, sigma, tau, lamb, released)
        torch.testing.assert_close(w, ref, rtol=1e-10, atol=1e-12)
        assert math.isclose(float(w.sum()), 1.0, rel_tol=1e-12)
    # the two precedences really give different weights here
    w_int = est.mgs_weights(losses, 2.05, deltas, g, sigma, tau, lamb, "intended")
    w_rel = est.mgs_weights(losses, 2.05, deltas, g, sigma, tau, lamb, "released")
    assert not torch.allclose(w_int, w_rel)


def test_mgs_weights_reduce_to_softmax_in_the_darts_regime() -> None:
    """d = 2x14x7, σ = 0.025: q̃ is constant across samples, so w = softmax(-L/τ) (methods doc §3.5)."""
    gen = torch.Generator().manual_seed(1)
    masks = {"normal": torch.ones(14, 7, dtype=torch.bool), "reduce": torch.ones(14, 7, dtype=torch.bool)}
    grad = {k: 0.05 * torch.randn(14, 7, generator=gen, dtype=torch.float64) for k in masks}
    sigma, tau, lamb, n = 0.025, 0.01, 1e-3, 4
    deltas = est.mgs_samples(grad, masks, sigma, lamb, n, gen)
    flat = torch.stack([est.flat(x) for x in deltas])
    losses = torch.tensor([2.30, 2.28, 2.31, 2.29], dtype=torch.float64)
    soft = torch.softmax(-losses / tau, 0)
    intended = est.mgs_weights(losses, 2.3, flat, est.flat(grad), sigma, tau, lamb, "intended")
    torch.testing.assert_close(intended, soft, rtol=1e-12, atol=1e-12)  # both terms underflow: 1e-4 floor
    released = est.mgs_weights(losses, 2.3, flat, est.flat(grad), sigma, tau, lamb, "released")
    torch.testing.assert_close(released, soft, rtol=1e-4, atol=1e-6)  # second term ≈ λ, nearly equal


def test_mgs_samples_have_the_documented_mean_and_spread() -> None:
    gen = torch.Generator().manual_seed(2)
    masks = _masks(hole=False)
    grad = {k: torch.full(m.shape, 0.5, dtype=torch.float64) for k, m in masks.items()}
    sigma, lamb = 0.1, 0.25
    s = torch.stack([est.flat(x) for x in est.mgs_samples(grad, masks, sigma, lamb, 4000, gen)])
    torch.testing.assert_close(s.mean(0), torch.full((24,), -(1 - lamb) * 0.5, dtype=torch.float64), atol=0.01,
                               rtol=0)
    expected_std = sigma * math.sqrt((1 - lamb) ** 2 + lamb**2)
    assert abs(float(s.std(0).mean()) - expected_std) < 0.05 * expected_std


def test_sigma_cosine_schedule() -> None:
    s0, w, e = 0.025, 10, 50
    assert est.sigma_at(0, s0, w, e) == s0 and est.sigma_at(w, s0, w, e) == s0 and est.sigma_at(w + 1, s0, w, e) == s0
    assert math.isclose(est.sigma_at(49, s0, w, e), s0 * (1 + math.cos(math.pi * 38 / 40)) / 2)
    assert math.isclose(est.sigma_at(49, s0, w, e) / s0, 0.00616, rel_tol=1e-2)
    assert est.sigma_at(49, s0, w, e, "stable") == s0


def test_gld_default_radii_match_the_authors_derivation() -> None:
    big_r, small_r = 28.0, 0.01 / math.sqrt(98)  # 2·#edges and rs_error/√d, before rescaling R to 0.13
    n = math.floor(math.log2(big_r / small_r)) + 1
    radii = est.gld_radii(0.13, n)
    assert n == 15 and len(radii) == 15
    assert radii[0] == 0.13 and math.isclose(radii[-1], 0.13 / 2**14)


def _quadratic(dim_masks: dict[str, torch.Tensor], seed: int):
    gen = torch.Generator().manual_seed(seed)
    keys = sorted(dim_masks)
    d = sum(int(m.numel()) for m in dim_masks.values())
    a = torch.randn(d, d, generator=gen, dtype=torch.float64)
    a = a @ a.T / d + torch.eye(d, dtype=torch.float64)
    b = torch.randn(d, generator=gen, dtype=torch.float64)

    def f(alpha: dict[str, torch.Tensor]) -> float:
        x = torch.cat([alpha[k].reshape(-1) for k in keys])
        return float(0.5 * x @ a @ x + b @ x)

    def grad(alpha: dict[str, torch.Tensor]) -> torch.Tensor:
        x = torch.cat([alpha[k].reshape(-1) for k in keys])
        return a @ x + b

    return f, grad


def test_rs_antithetic_recovers_the_gradient_direction() -> None:
    masks = _masks()
    f, grad = _quadratic(masks, 3)
    gen = torch.Generator().manual_seed(4)
    alpha = {k: 0.3 * torch.randn(m.shape, generator=gen, dtype=torch.float64) for k, m in masks.items()}
    g_hat, _ = est.rs_gradient(alpha, est.pointwise(f), masks, 0.1, 3000, gen, "antithetic", "sphere")
    true = grad(alpha) * est.flat(masks).to(torch.float64)  # the masked entry is not a direction
    cos = float(torch.nn.functional.cosine_similarity(est.flat(g_hat), true, dim=0))
    assert cos > 0.9, cos
    assert float(g_hat["reduce"][0, -1]) == 0.0  # never perturbed outside the mask
    # unbiased: the norm matches too (φ = d per cell type)
    assert abs(float(est.flat(g_hat).norm()) / float(true.norm()) - 1) < 0.15
    g_gauss, _ = est.rs_gradient(alpha, est.pointwise(f), masks, 0.1, 3000, gen, "antithetic", "gaussian")
    assert float(torch.nn.functional.cosine_similarity(est.flat(g_gauss), true, dim=0)) > 0.9


def test_rs_forward_estimator_also_recovers_the_direction() -> None:
    masks = _masks(hole=False)
    f, grad = _quadratic(masks, 5)
    gen = torch.Generator().manual_seed(6)
    alpha = {k: torch.zeros(m.shape, dtype=torch.float64) for k, m in masks.items()}
    g_hat, _ = est.rs_gradient(alpha, est.pointwise(f), masks, 0.01, 3000, gen, "forward", "sphere")
    cos = float(torch.nn.functional.cosine_similarity(est.flat(g_hat), grad(alpha), dim=0))
    assert cos > 0.9, cos


def test_gld_never_moves_uphill_and_descends() -> None:
    masks = _masks()
    f, _ = _quadratic(masks, 7)
    gen = torch.Generator().manual_seed(8)
    alpha = {k: torch.randn(m.shape, generator=gen, dtype=torch.float64) * m for k, m in masks.items()}
    start = f(alpha)
    values = [start]
    moved = 0
    for _ in range(60):
        move, info = est.gld_step(alpha, est.pointwise(f), masks, est.gld_radii(1.0, 8), gen)
        alpha = {k: alpha[k] + move[k] for k in alpha}
        values.append(f(alpha))
        moved += int(info["moved"])
        assert values[-1] <= values[-2]
        assert float(move["reduce"][0, -1]) == 0.0
    assert moved > 0 and values[-1] < start - 0.5


def test_gld_stays_put_at_a_minimum() -> None:
    masks = _masks(hole=False)
    alpha = {k: torch.zeros(m.shape, dtype=torch.float64) for k, m in masks.items()}

    def bowl(a: dict[str, torch.Tensor]) -> float:
        return float(sum((v**2).sum() for v in a.values()))

    move, info = est.gld_step(alpha, est.pointwise(bowl), masks, est.gld_radii(0.13, 15),
                              torch.Generator().manual_seed(0))
    assert info["moved"] == 0.0 and all(float(v.abs().max()) == 0.0 for v in move.values())


def test_sigma_stops_at_the_end_of_the_search() -> None:
    """The official DecayScheduler is stepped once per search epoch and keeps its value after T_stop: epochs
    past the search (DARTS-PT tuning) get the last search epoch's σ, which is positive. Unclamped, the cosine
    came back to 0 at e = E + 1 (MGS then computed 0/0)."""
    s0, w, e = 0.025, 1, 4
    last = est.sigma_at(e - 1, s0, w, e)
    assert last > 0
    assert all(est.sigma_at(e - 1 + k, s0, w, e) == last for k in range(1, 20))
    with pytest.raises(ValueError, match="positive"):
        est.mgs_log_proposal(torch.zeros(2, 3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), 0.0, 0.1)


def test_gld_radii_count_from_the_space_as_the_official_code() -> None:
    """vis_optimzation.py@38bb2a6: R = 2·rows, r = rs_error/√(rows·K), ⌊log₂(R/r)⌋ + 1 radii."""
    assert est.gld_num_radii(14, 14 * 7) == 15 and est.gld_num_radii(14, 14 * 8) == 15  # DARTS 7 / 8 ops
    assert est.gld_num_radii(14, 14 * 2) == 14  # S1, S2, S4
    assert est.gld_num_radii(6, 6 * 5) == 13  # NAS-Bench-201


def test_free_entries_leave_out_decided_and_dropped_edges() -> None:
    m = torch.tensor([[True, True, False], [False, True, False], [False, False, False]])
    free = est.free_entries({"c": m})["c"]
    assert free.tolist() == [[True, True, False], [False] * 3, [False] * 3]
    g = est.gaussian({"c": free}, torch.Generator().manual_seed(0))["c"]
    assert bool((g[1:] == 0).all()) and bool((g[0, :2] != 0).all())
