"""Dirichlet mixing weights (DrNAS): concentration ``elu(β) + 1``, pathwise samples, the mean, the KL to Dir(1).

DrNAS treats each edge's mixing weights as ``w ~ Dir(elu(β) + 1)`` and trains β through reparameterised
(pathwise) samples: ``torch.distributions.Dirichlet.rsample`` (implicit reparameterisation of the gamma draws).
Masked ops get no weight: the row is sampled whole, masked entries are zeroed and the rest renormalised, as the
official ``process_step_vector`` does. By the gamma construction of the Dirichlet that is exactly a draw of
``Dir(concentration of the available ops)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nasfw.builtin.weightings import masked_softmax
from nasfw.components import EdgeWeighting


def concentration(beta: torch.Tensor) -> torch.Tensor:
    """DrNAS' positive concentration ``elu(β) + 1`` (β = 0 gives the uniform Dir(1))."""
    return F.elu(beta) + 1


def _renormalise(w: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    w = w * mask.to(w.dtype)
    total = w.sum(dim=-1, keepdim=True)
    return torch.where(total > 0, w / total.clamp_min(torch.finfo(w.dtype).tiny), w)


def dirichlet_mean(beta: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """E[w] = concentration / its sum over the available ops (0 where masked)."""
    return _renormalise(concentration(beta), mask)


def dirichlet_sample(beta: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """One pathwise sample per row of ``Dir(elu(β) + 1)`` over the available ops (global torch RNG)."""
    w = torch.distributions.Dirichlet(concentration(beta)).rsample()
    return _renormalise(w, mask)


def kl_to_uniform(beta: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ_rows KL(Dir(a) ‖ Dir(1, …, 1)) over each row's available ops, ``a = elu(β) + 1``:
    ``lnΓ(A) − Σ lnΓ(a_i) − lnΓ(n) + Σ (a_i − 1)(ψ(a_i) − ψ(A))`` with ``A = Σ a_i`` and ``n`` ops."""
    m = mask.to(beta.dtype)
    a = torch.where(mask, concentration(beta), torch.ones_like(beta))
    total = (a * m).sum(dim=-1)
    n = m.sum(dim=-1)
    kl = (torch.lgamma(total.clamp_min(1e-30)) - (torch.lgamma(a) * m).sum(-1) - torch.lgamma(n.clamp_min(1))
          + ((a - 1) * (torch.digamma(a) - torch.digamma(total.clamp_min(1e-30)).unsqueeze(-1)) * m).sum(-1))
    return torch.where(n > 0, kl, torch.zeros_like(kl)).sum()


class DirichletMean(EdgeWeighting):
    """The Dirichlet mean ``(elu(β) + 1) / Σ`` as the supernet's deterministic mixing weights (evaluation, and
    the base of selectors); magnitude selection ranks the softmax of β, as DrNAS' ``genotype()`` does (the same
    argmax per edge)."""

    def __call__(self, alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return dirichlet_mean(alpha, mask)

    def strength(self, alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_softmax(alpha, mask)
