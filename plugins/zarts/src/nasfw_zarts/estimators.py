"""The zero-order update rules of ZARTS as pure functions of a black-box loss L(α).

Kept free of supernets and data so each rule can be checked against its closed form on toy
functions (tests) and reused by any optimizer. ``losses_fn`` maps a *list* of α's to their losses
(one float each): every rule draws all its sample points first and asks for their losses in one call,
so an oracle can evaluate them together (ZARTS' batched scratch trainings); :func:`pointwise` turns a
function of one α into such a batch function. Architecture tensors are dicts
``{cell_type: (rows, K) tensor}``; ``masks`` (same shapes, bool) say which entries are free to move,
and every perturbation is zero outside them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

Arch = dict[str, torch.Tensor]
LossFn = Callable[[Arch], float]
LossesFn = Callable[[list[Arch]], Sequence[float]]


def pointwise(loss_fn: LossFn) -> LossesFn:
    """A batch loss function that evaluates ``loss_fn`` on each α in turn."""
    return lambda alphas: [loss_fn(a) for a in alphas]


def _add(a: Arch, b: Arch, scale: float = 1.0) -> Arch:
    return {k: a[k] + scale * b[k] for k in a}


def flat(x: Arch) -> torch.Tensor:
    """The cell types stacked into one vector (sorted by name, so the order is fixed)."""
    return torch.cat([x[k].reshape(-1) for k in sorted(x)])


def dims(masks: Arch) -> dict[str, int]:
    """Number of free entries per cell type (the dimension each direction lives in)."""
    return {k: int(m.sum()) for k, m in masks.items()}


def free_entries(masks: Arch) -> Arch:
    """The entries whose α can change anything: on rows with at least two live candidates. A row with one
    live op (a decided edge) weighs exactly 1 whatever its α, a row with none (a dropped edge) 0."""
    return {k: m.bool() & (m.bool().sum(dim=-1, keepdim=True) > 1) for k, m in masks.items()}


def gaussian(masks: Arch, generator: torch.Generator) -> Arch:
    """i.i.d. N(0, 1) on the free entries, 0 elsewhere (drawn on CPU so every device agrees; the draw
    does not depend on the mask, so the random stream is the same whatever has been decided)."""
    out = {}
    for k in sorted(masks):
        m = masks[k].cpu()
        out[k] = torch.randn(m.shape, generator=generator, dtype=torch.float64) * m
    return out


def unit_sphere(masks: Arch, generator: torch.Generator) -> Arch:
    """One direction per cell type, uniform on that cell type's unit sphere (a normalised Gaussian); the
    zero vector for a cell type with no free entry."""
    g = gaussian(masks, generator)
    return {k: v / v.norm().clamp_min(1e-300) for k, v in g.items()}


# --------------------------------------------------------------------------- MGS


def mgs_log_proposal(deltas: torch.Tensor, grad: torch.Tensor, sigma: float, lamb: float,
                     precedence: str = "intended") -> torch.Tensor:
    """log q̃(Δα_i) for each row of ``deltas`` (N, d); ``grad`` is g (d,).

    q̃(Δα) = (1−λ)·exp(−‖Δα + g‖²/(2σ²)) + λ·exp(−‖Δα‖²/(2σ²))            (``intended``)
    The released code writes the second exponent as ``-‖Δα‖²/2*σ²`` = −‖Δα‖²σ²/2 (``released``).
    No Gaussian normalising constant, as in the code. Computed in log space (the terms underflow in
    the DARTS space: the first is about e^{−d/2}). σ must be positive (σ = 0 makes q̃ 0/0).
    """
    if not sigma > 0:
        raise ValueError(f"MGS needs a positive σ, got {sigma}")
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
    """Δα_i = (1−λ)(−g + σ ε_i) + λ σ ε'_i with ε, ε' ~ N(0, I) on the free entries."""
    out = []
    for _ in range(n):
        e1, e2 = gaussian(masks, generator), gaussian(masks, generator)
        out.append({k: ((1 - lamb) * (-grad[k] + sigma * e1[k]) + lamb * sigma * e2[k]) * masks[k].cpu()
                    for k in sorted(masks)})
    return out


def ess_diagnostics(weights: torch.Tensor) -> dict[str, float]:
    """The code's coefficient of variation sqrt(mean (N w_i − 1)²) and Kish's ESS 1/Σ w_i²."""
    n = weights.numel()
    return {"ess_cv": float(((n * weights - 1) ** 2).mean().sqrt()), "ess": float(1.0 / (weights**2).sum())}


def sigma_at(epoch: float, sigma0: float, warmup: float, epochs: int, decay: str = "cosine") -> float:
    """ZARTS' ``DecayScheduler`` (utils.py@38bb2a6): σ₀ through epoch W, then σ₀(1 + cos(π(e−1−W)/(E−W)))/2.

    The schedule stops where the search does: the official scheduler is stepped once per search epoch and
    keeps its value past ``T_stop``, so any epoch after the last search epoch E−1 (fine-tuning between
    DARTS-PT decisions) gets the last search epoch's σ. That value is positive whenever W < E (the cosine
    reaches 0 only at e = E + 1, after the run), so MGS never sees σ = 0 — unclamped, the cosine is periodic
    and returns to 0 every 2(E − W) epochs.
    """
    if decay == "stable":
        return sigma0
    if decay != "cosine":
        raise ValueError(f"unknown sigma decay '{decay}' (use stable or cosine)")
    e = min(epoch, epochs - 1)
    if e < warmup + 1:
        return sigma0
    return sigma0 * (1 + math.cos(math.pi * (e - 1 - warmup) / max(epochs - warmup, 1))) / 2


def mgs_step(alpha: Arch, grad: Arch, loss0: float, losses_fn: LossesFn, masks: Arch, sigma: float, tau: float,
             lamb: float, n: int, generator: torch.Generator,
             precedence: str = "intended") -> tuple[Arch, dict[str, float]]:
    """One MGS move: sample N Δα, weight them by the importance weights, return Σ w_i Δα_i."""
    deltas = mgs_samples(grad, masks, sigma, lamb, n, generator)
    losses = torch.tensor(list(losses_fn([_add(alpha, d) for d in deltas])), dtype=torch.float64)
    w = mgs_weights(losses, loss0, torch.stack([flat(d) for d in deltas]), flat(grad), sigma, tau, lamb, precedence)
    move = {k: sum(float(w[i]) * deltas[i][k] for i in range(n)) for k in sorted(masks)}
    info = {"loss_mean": float(losses.mean()), "loss_min": float(losses.min()), **ess_diagnostics(w),
            "w_max": float(w.max())}
    return move, info


# --------------------------------------------------------------------------- RS


def rs_gradient(alpha: Arch, losses_fn: LossesFn, masks: Arch, delta: float, n: int, generator: torch.Generator,
                estimator: str = "antithetic", directions: str = "sphere",
                loss0: float | None = None) -> tuple[Arch, dict[str, float]]:
    """Zero-order gradient estimate from N random directions u_i (one per cell type, jointly perturbed).

    antithetic: ĝ_k = φ_k/(2δN) Σ_i (L(α+δu_i) − L(α−δu_i)) u_{i,k}
    forward:    ĝ_k = φ_k/(δN)  Σ_i (L(α+δu_i) − L_0) u_{i,k}
    single:     ĝ_k = φ_k/(δN)  Σ_i L(α+δu_i) u_{i,k}
    φ_k = d_k (the cell type's dimension) for unit-sphere directions, since E[u uᵀ] = I/d_k; φ = 1
    for Gaussian directions. All 2N (or N, N + 1) points go to ``losses_fn`` in one call.
    """
    if estimator not in ("antithetic", "forward", "single"):
        raise ValueError(f"unknown RS estimator '{estimator}' (use antithetic, forward or single)")
    d = dims(masks)
    phi = {k: float(d[k]) if directions == "sphere" else 1.0 for k in d}
    us = [unit_sphere(masks, generator) if directions == "sphere" else gaussian(masks, generator) for _ in range(n)]
    points = [_add(alpha, u, delta) for u in us]
    if estimator == "antithetic":
        points += [_add(alpha, u, -delta) for u in us]
    if estimator == "forward" and loss0 is None:
        points.append(alpha)
    losses = list(losses_fn(points))
    if estimator == "forward" and loss0 is None:
        loss0 = losses.pop()
    acc = {k: torch.zeros(masks[k].shape, dtype=torch.float64) for k in sorted(masks)}
    for i, u in enumerate(us):
        lp = losses[i]
        if estimator == "antithetic":
            coef = (lp - losses[n + i]) / (2 * delta)
        elif estimator == "forward":
            coef = (lp - loss0) / delta  # type: ignore[operator]
        else:
            coef = lp / delta
        for k in acc:
            acc[k] += coef * u[k]
    grad = {k: phi[k] * acc[k] / n for k in acc}
    return grad, {"loss_mean": float(sum(losses) / len(losses)), "grad_norm": float(flat(grad).norm())}


# --------------------------------------------------------------------------- GLD


def gld_num_radii(rows: int, entries: int, error: float = 0.01) -> int:
    """The official number of GLD radii for an α table of ``rows`` edges × ``entries`` entries
    (vis_optimzation.py@38bb2a6 l. 503-515): R = 2·rows, r = error/√entries, ⌊log₂(R/r)⌋ + 1 radii (the
    rescaling of R to ``rs_maxr`` divides both by the same factor). DARTS (14 × 7 or 8): 15; S1, S2, S4
    (14 × 2): 14; S3 (14 × 3): 15; NAS-Bench-201 (6 × 5): 13."""
    return math.floor(math.log2(2 * rows * math.sqrt(entries) / error)) + 1


def gld_radii(max_radius: float, num_radii: int) -> list[float]:
    """R, R/2, …, R/2^(n−1). The authors' defaults (R = 0.13, r = 0.13·(0.01/√98)/28) give
    ⌊log₂(R/r)⌋ + 1 = 15 radii."""
    return [max_radius / 2**k for k in range(num_radii)]


def gld_step(alpha: Arch, losses_fn: LossesFn, masks: Arch, radii: list[float], generator: torch.Generator,
             loss0: float | None = None) -> tuple[Arch, dict[str, float]]:
    """GradientLess Descent with radius halving: try v_k = r_k·u_k (u_k on each cell type's unit sphere),
    keep the best candidate that beats ``loss0`` (default L(α), evaluated with the candidates), else stay."""
    moves = [{k: r * u for k, u in unit_sphere(masks, generator).items()} for r in radii]
    points = [_add(alpha, v) for v in moves] + ([alpha] if loss0 is None else [])
    losses = list(losses_fn(points))
    base = losses.pop() if loss0 is None else loss0
    best, chosen = base, -1
    for i, loss in enumerate(losses):
        if loss < best:
            best, chosen = loss, i
    move = moves[chosen] if chosen >= 0 else {k: torch.zeros(masks[k].shape, dtype=torch.float64)
                                                for k in sorted(masks)}
    return move, {"loss0": base, "loss_best": best, "radius": radii[chosen] if chosen >= 0 else 0.0,
                  "moved": float(chosen >= 0)}
