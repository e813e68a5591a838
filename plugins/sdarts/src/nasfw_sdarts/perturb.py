"""Perturbations of mixing weights on the simplex, inside an L∞ ball (SDARTS).

SDARTS perturbs the softmax weights ``w₀ = softmax(α)`` of every edge by ``δ`` with ``‖δ‖∞ ≤ ε`` and keeps the
result a distribution over the edge's ops. The official code (``attacker/perturb.py``) adds ``δ`` and then
``clip()``s: clamp to [0, 1] and divide by the row sum. The division can move entries out of the ε-ball (e.g.
``w₀ = (0.2, 0.2, 0.6)``, ``δ = (−0.3, −0.3, 0.3)`` ends at ``(0, 0, 1)``: 0.4 away from 0.6). The default here
is the Euclidean projection onto {x : Σx = 1, max(0, w₀ − ε) ≤ x ≤ min(1, w₀ + ε)}, which satisfies both
constraints; ``projection: official`` keeps the official clip.
"""

from __future__ import annotations

import torch


def project_box_simplex(v: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, mask: torch.Tensor,
                        iters: int = 64) -> torch.Tensor:
    """Per row, the point of {Σ_available x = 1, lo ≤ x ≤ hi} nearest to ``v`` (0 where masked).

    The projection is ``clamp(v − τ, lo, hi)`` for the shift τ that makes the row sum 1 (its KKT conditions);
    the sum is monotone in τ, so τ is found by bisection (in float64). Each row must be feasible
    (Σ lo ≤ 1 ≤ Σ hi), which holds whenever the ball's centre is a distribution.
    """
    avail = mask.any(dim=-1)
    v64, lo64, hi64 = v.double(), torch.where(mask, lo, 0).double(), torch.where(mask, hi, 0).double()
    inf = torch.tensor(float("inf"), dtype=torch.float64, device=v.device)
    t_lo = torch.where(mask, v64 - hi64, inf).amin(dim=-1)
    t_hi = torch.where(mask, v64 - lo64, -inf).amax(dim=-1)
    t_lo, t_hi = torch.where(avail, t_lo, 0), torch.where(avail, t_hi, 0)
    for _ in range(iters):
        t = (t_lo + t_hi) / 2
        over = torch.clamp(v64 - t.unsqueeze(-1), lo64, hi64).sum(dim=-1) > 1
        t_lo, t_hi = torch.where(over, t, t_lo), torch.where(over, t_hi, t)
    t = (t_lo + t_hi) / 2
    x = torch.clamp(v64 - t.unsqueeze(-1), lo64, hi64) * mask
    return x.to(v.dtype)


def project(w: torch.Tensor, center: torch.Tensor, eps: float, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """``w`` brought back into the ε-ball around ``center`` and onto the simplex (``mode``: box-simplex|official)."""
    if mode == "official":  # attacker/perturb.py: clamp the difference to the ball, then model.clip()
        return official_clip(center + (w - center).clamp(-eps, eps), mask)
    return project_box_simplex(w, (center - eps).clamp_min(0), (center + eps).clamp_max(1), mask)


def official_clip(w: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """SDARTS' ``Network.clip``: clamp to [0, 1]; a row that became all zero puts 1 on its largest entry; divide
    each row by its sum (over the available entries; fully masked rows stay 0)."""
    m = mask.to(w.dtype)
    argmax = w.masked_fill(~mask, float("-inf")).argmax(dim=-1, keepdim=True)
    c = w.clamp(0, 1) * m
    empty = (c.sum(dim=-1, keepdim=True) == 0) & mask.any(dim=-1, keepdim=True)
    c = torch.where(empty & (torch.arange(w.shape[-1], device=w.device) == argmax), torch.ones_like(c), c)
    total = c.sum(dim=-1, keepdim=True)
    return torch.where(total > 0, c / total.clamp_min(torch.finfo(w.dtype).tiny), c)


def epsilon_at(epoch: int, eps_min: float, eps_max: float, ramp_epochs: int) -> float:
    """SDARTS' linear ramp (``train_search.py``: ``0.03 + (ε − 0.03)·epoch/epochs``), held at ``eps_max`` after it."""
    if ramp_epochs <= 0:
        return eps_max
    return eps_min + (eps_max - eps_min) * min(1.0, epoch / ramp_epochs)
