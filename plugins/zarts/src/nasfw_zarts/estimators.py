"""The zero-order update rules of ZARTS as pure functions of a black-box loss L(α).

Kept free of supernets and data so each rule can be checked against its closed form on toy
functions (tests) and reused by any optimizer: ``loss_fn`` maps a dict of per-cell-type α tensors
to a float. Architecture tensors are dicts ``{cell_type: (rows, K) tensor}``; ``masks`` (same
shapes, bool) say which entries exist, and every perturbation is zero outside them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Arch = dict[str, torch.Tensor]
LossFn = Callable[[Arch], float]


def _add(a: Arch, b: Arch, scale: float = 1.0) -> Arch:
    return {k: a[k] + scale * b[k] for k in a}


def flat(x: Arch) -> torch.Tensor:
    """The cell types stacked into one vector (sorted by name, so the order is fixed)."""
    return torch.cat([x[k].reshape(-1) for k in sorted(x)])


def dims(masks: Arch) -> dict[str, int]:
    """Number of existing entries per cell type (the dimension each direction lives in)."""
    return {k: int(m.sum()) for k, m in masks.items()}


def gaussian(masks: Arch, generator: torch.Generator) -> Arch:
    """i.i.d. N(0, 1) on the existing entries, 0 elsewhere (drawn on CPU so every device agrees)."""
    out = {}
    for k in sorted(masks):
        m = masks[k].cpu()
        out[k] = torch.randn(m.shape, generator=generator, dtype=torch.float64) * m
    return out


def unit_sphere(masks: Arch, generator: torch.Generator) -> Arch:
    """One direction per cell type, uniform on that cell type's unit sphere (a normalised Gaussian)."""
    g = gaussian(masks, generator)
    return {k: v / v.norm().clamp_min(1e-300) for k, v in g.items()}


# --------------------------------------------------------------------------- MGS


def mgs_log_proposal(deltas: torch.Tensor, grad: torch.Tensor, sigma: float, lamb: float,
                     precedence: str = "intended") -> torch.Tensor:
    """log q̃(Δα_i) for each row of ``deltas`` (N, d); ``grad`` is g (d,).

    q̃(Δα) = (1−λ)·exp(−‖Δα + g‖²/(2σ²)) + λ·exp(−‖Δα‖²/(2σ²))            (``intended``)
    The released code writes the second exponent as ``-‖Δα‖²/2*σ²`` = −‖Δα‖²σ²/2 (``released``).
    No Gaussian normalising constant, as in the code. Computed in log space (the terms underflow in
    the DARTS space: the first is about e^{−d/2}).
    """
    a = -((deltas + grad) ** 2).sum(1) / (2 * sigma**2)
    sq = (deltas**2).sum(1)
    if precedence == "intended":
        b = -sq / (2 * sigma**2)
    elif precedence == "released":
        b = -sq * sigma**2 / 2
    else:
        raise ValueError(f"unknown precedence '{precedence}' (use intended or released)")
    terms = torch.stack([a + math.log(1 - lamb) if lamb < 1 else torch.full_like(a, -math.inf),
                         b + math.log(lamb) if lamb > 0 else torch.full_like(b, -math.inf)])
    return torch.logsumexp(terms, dim=0)


def mgs_weights(losses: torch.Tensor, loss0: float, deltas: torch.Tensor, grad: torch.Tensor, sigma: float,
                tau: float, lamb: float, precedence: str = "intended", floor: float = 1e-4) -> torch.Tensor:
    """Normalised importance weights w_i = w̃_i / Σ_j w̃_j with
    w̃_i = exp(−(L_i − L_0)/τ) / (q̃(Δα_i) + floor), evaluated stably in log space (same value)."""
    logq = mgs_log_proposal(deltas, grad, sigma, lamb, precedence)
    log_denominator = torch.logaddexp(logq, torch.full_like(logq, math.log(floor)))
    logw = -(losses.to(torch.float64) - loss0) / tau - log_denominator
    return torch.softmax(logw, dim=0)


def mgs_samples(grad: Arch, masks: Arch, sigma: float, lamb: float, n: int, generator: torch.Generator) -> list[Arch]:
    """Δα_i = (1−λ)(−g + σ ε_i) + λ σ ε'_i with ε, ε' ~ N(0, I) on the existing entries."""
    out = []
    for _ in range(n):
        e1, e2 = gaussian(masks, generator), gaussian(masks, generator)
        out.append({k: (1 - lamb) * (-grad[k] + sigma * e1[k]) + lamb * sigma * e2[k] for k in sorted(masks)})
    return out


def ess_diagnostics(weights: torch.Tensor) -> dict[str, float]:
    """The code's coefficient of variation sqrt(mean (N w_i − 1)²) and Kish's ESS 1/Σ w_i²."""
    n = weights.numel()
    return {"ess_cv": float(((n * weights - 1) ** 2).mean().sqrt()), "ess": float(1.0 / (weights**2).sum())}


def sigma_at(epoch: int, sigma0: float, warmup: int, epochs: int, decay: str = "cosine") -> float:
    """ZARTS' ``DecayScheduler``: σ₀ through epoch W+1, then σ₀(1 + cos(π(e−1−W)/(E−W)))/2 (cosine)."""
    if decay == "stable" or epoch < warmup + 1:
        return sigma0
    if decay == "cosine":
        return sigma0 * (1 + math.cos(math.pi * (epoch - 1 - warmup) / max(epochs - warmup, 1))) / 2
    raise ValueError(f"unknown sigma decay '{decay}' (use stable or cosine)")


def mgs_step(alpha: Arch, grad: Arch, loss0: float, loss_fn: LossFn, masks: Arch, sigma: float, tau: float,
             lamb: float, n: int, generator: torch.Generator,
             precedence: str = "intended") -> tuple[Arch, dict[str, float]]:
    """One MGS move: sample N Δα, weight them by the importance weights, return Σ w_i Δα_i."""
    deltas = mgs_samples(grad, masks, sigma, lamb, n, generator)
    losses = torch.tensor([loss_fn(_add(alpha, d)) for d in deltas], dtype=torch.float64)
    w = mgs_weights(losses, loss0, torch.stack([flat(d) for d in deltas]), flat(grad), sigma, tau, lamb, precedence)
    move = {k: sum(float(w[i]) * deltas[i][k] for i in range(n)) for k in sorted(masks)}
    info = {"loss_mean": float(losses.mean()), "loss_min": float(losses.min()), **ess_diagnostics(w),
            "w_max": float(w.max())}
    return move, info


# --------------------------------------------------------------------------- RS


def rs_gradient(alpha: Arch, loss_fn: LossFn, masks: Arch, delta: float, n: int, generator: torch.Generator,
                estimator: str = "antithetic", directions: str = "sphere",
                loss0: float | None = None) -> tuple[Arch, dict[str, float]]:
    """Zero-order gradient estimate from N random directions u_i (one per cell type, jointly perturbed).

    antithetic: ĝ_k = φ_k/(2δN) Σ_i (L(α+δu_i) − L(α−δu_i)) u_{i,k}
    forward:    ĝ_k = φ_k/(δN)  Σ_i (L(α+δu_i) − L_0) u_{i,k}
    single:     ĝ_k = φ_k/(δN)  Σ_i L(α+δu_i) u_{i,k}
    φ_k = d_k (the cell type's dimension) for unit-sphere directions, since E[u uᵀ] = I/d_k; φ = 1
    for Gaussian directions.
    """
    if estimator == "forward" and loss0 is None:
        loss0 = loss_fn(alpha)
    d = dims(masks)
    phi = {k: float(d[k]) if directions == "sphere" else 1.0 for k in d}
    acc = {k: torch.zeros(masks[k].shape, dtype=torch.float64) for k in sorted(masks)}
    losses = []
    for _ in range(n):
        u = unit_sphere(masks, generator) if directions == "sphere" else gaussian(masks, generator)
        lp = loss_fn(_add(alpha, u, delta))
        losses.append(lp)
        if estimator == "antithetic":
            lm = loss_fn(_add(alpha, u, -delta))
            losses.append(lm)
            coef = (lp - lm) / (2 * delta)
        elif estimator == "forward":
            coef = (lp - loss0) / delta  # type: ignore[operator]
        elif estimator == "single":
            coef = lp / delta
        else:
            raise ValueError(f"unknown RS estimator '{estimator}' (use antithetic, forward or single)")
        for k in acc:
            acc[k] += coef * u[k]
    grad = {k: phi[k] * acc[k] / n for k in acc}
    return grad, {"loss_mean": float(sum(losses) / len(losses)), "grad_norm": float(flat(grad).norm())}


# --------------------------------------------------------------------------- GLD


def gld_radii(max_radius: float, num_radii: int) -> list[float]:
    """R, R/2, …, R/2^(n−1). The authors' defaults (R = 0.13, r = 0.13·(0.01/√98)/28) give
    ⌊log₂(R/r)⌋ + 1 = 15 radii."""
    return [max_radius / 2**k for k in range(num_radii)]


def gld_step(alpha: Arch, loss_fn: LossFn, masks: Arch, radii: list[float], generator: torch.Generator,
             loss0: float | None = None) -> tuple[Arch, dict[str, float]]:
    """GradientLess Descent with radius halving: try v_k = r_k·u_k (u_k on each cell type's unit sphere),
    keep the best candidate that beats L(α), else stay (move = 0)."""
    best = loss_fn(alpha) if loss0 is None else loss0
    base = best
    move = {k: torch.zeros(masks[k].shape, dtype=torch.float64) for k in sorted(masks)}
    chosen = -1
    for i, r in enumerate(radii):
        v = {k: r * u for k, u in unit_sphere(masks, generator).items()}
        loss = loss_fn(_add(alpha, v))
        if loss < best:
            best, move, chosen = loss, v, i
    return move, {"loss0": base, "loss_best": best, "radius": radii[chosen] if chosen >= 0 else 0.0,
                  "moved": float(chosen >= 0)}
