"""Pruning-at-initialisation saliency of the mixing coefficients of a supernet (FreeDARTS v2).

FreeDARTS mixes ops as ``Σ_k α_k·o_k`` (no softmax) and scores each (edge, op) by a pruning criterion
applied to its α entry. We take the gradients with respect to the coefficients the forward pass uses
(:meth:`Supernet.mixing_weights`, injected through ``override_weights``): with the ``raw`` edge weighting
these *are* α, with any other weighting the score is the saliency of the mixing coefficients, which
keeps the selectors usable after a softmax search too. α is shared by every cell of a type, so each
gradient sums the contributions of all cells that use it, as in the reference.

Every function scores the supernet in place (:func:`nasfw_freedarts.scratch.in_place`) and puts it back
exactly: the caller's weights, α and BN statistics are untouched. SNIP and GraSP run BN in train mode
(batch statistics of their labelled batch), as the reference notebooks do; SynFlow runs it in eval mode by
default (see :func:`synflow_scores`). ``dtype`` computes a score in another precision (the signal guard
compares two).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from nasfw.supernet import Supernet
from nasfw_freedarts.errors import SaliencyError
from nasfw_freedarts.scratch import BnMode, in_place

Scores = dict[str, torch.Tensor]
GraspVariant = Literal["hg", "nb201", "nb201-row0", "darts"]
#: Adam learning rates of the pre-step in the reference notebooks
GRASP_ADAM_LR = {"nb201": 3e-2, "nb201-row0": 3e-2, "darts": 3e-4}


def coefficients(net: Supernet) -> Scores:
    """The current mixing coefficients as fresh leaves to differentiate against."""
    with torch.no_grad():
        return {k: w.detach().clone().requires_grad_(True) for k, w in net.mixing_weights().items()}


def logits(net: Supernet, coeffs: Scores, x: torch.Tensor) -> torch.Tensor:
    with net.override_weights(coeffs):
        out = net(x)
    return out[0] if isinstance(out, (tuple, list)) else out


def _grads(out: torch.Tensor, leaves: Sequence[torch.Tensor], create_graph: bool = False) -> list[torch.Tensor]:
    gs = torch.autograd.grad(out, list(leaves), create_graph=create_graph, allow_unused=True)
    return [torch.zeros_like(v) if g is None else g for v, g in zip(leaves, gs)]


def finalize(net: Supernet, scores: Scores, measure: str) -> Scores:
    """Detach to float64 CPU, -inf where masked; raise on non-finite available entries."""
    out = {}
    for k, s in scores.items():
        mask = net.mask(k).cpu()
        s = s.detach().to("cpu", torch.float64)
        bad = mask & ~torch.isfinite(s)
        if bool(bad.any()):
            rows = sorted({int(r) for r in bad.nonzero()[:, 0]})
            raise SaliencyError(
                f"{measure} scores of '{k}' are not finite on edges {rows[:5]} (overflow or NaN in the forward); "
                f"use dtype float64 or smaller α (e.g. --set selector.alpha_value=null)")
        out[k] = torch.where(mask, s, torch.full_like(s, float("-inf")))
    return out


def warn_if_zero(scores: Scores, measure: str) -> None:
    """Without the signal guard: say so when every available score of a cell type is exactly zero."""
    for k, s in scores.items():
        live = s[torch.isfinite(s)]
        if live.numel() and bool((live == 0).all()):
            warnings.warn(f"every {measure} score of '{k}' is zero (underflow, or no cell of that type in the "
                          f"supernet): its choice is arbitrary", stacklevel=3)


def _check_finite(value: torch.Tensor, measure: str, what: str) -> None:
    if not bool(torch.isfinite(value).all()):
        raise SaliencyError(f"{measure}: the {what} is not finite ({float(value)}); the forward overflowed. "
                            f"Use dtype float64 or keep α at its small init (--set selector.alpha_value=null)")


def _cast(x: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    return x.to(dtype) if dtype is not None and x.is_floating_point() else x


def snip_scores(supernet: Supernet, x: torch.Tensor, y: torch.Tensor, abs_weights: bool = False,
                dtype: torch.dtype | None = None) -> Scores:
    """SNIP on the coefficients: ``|c ⊙ ∂L/∂c|`` with L the cross-entropy of one labelled batch.

    ``abs_weights`` reproduces the DARTS-space notebook, which made the weights |θ| first (a SynFlow
    copy-paste; not part of SNIP).
    """
    with in_place(supernet, dtype) as scratch:
        net = scratch.net
        if abs_weights:
            scratch.absolute(alphas=False)
        c = coefficients(net)
        loss = F.cross_entropy(logits(net, c, _cast(x, dtype)), y)
        _check_finite(loss.detach(), "snip", "loss")
        g = _grads(loss, list(c.values()))
        return finalize(net, {k: (ck * gk).abs() for (k, ck), gk in zip(c.items(), g)}, "snip")


def synflow_scores(supernet: Supernet, input_shape: Sequence[int], dtype: torch.dtype = torch.float64,
                   abs_alpha: bool = True, alpha_value: float | None = None, bn: BnMode = "eval") -> Scores:
    """SynFlow on the coefficients: ``|c ⊙ ∂R/∂c|``, R = Σ logits of an all-ones input, every state
    tensor made absolute. Data-free. float64 by default: with α = 1 float32 overflows (the reference's
    all-NaN NB201 run); ``alpha_value`` sets every α to a constant first (the reference's α = 1 run).

    ``bn`` (:meth:`Scratch.set_bn`): SynFlow scores the network linearised by |θ|; ``eval`` (the default)
    keeps BN the per-channel affine map it is at initialisation, as SynFlow's own pruning does (the
    model in eval mode). The FreeDARTS notebooks ran it in train mode (``batch``): normalising a single
    all-ones image by its own statistics gives every channel zero spatial mean, so on the DARTS supernet,
    where every cell output is a sum of BN outputs, global pooling returns exactly 0, R is the classifier
    bias alone and ∂R/∂c is rounding residue.
    """
    with in_place(supernet, dtype) as scratch:
        net = scratch.net
        scratch.set_bn(bn)
        if alpha_value is not None:
            with torch.no_grad():
                for a in net.alphas.values():
                    scratch.own(a).fill_(alpha_value)
        scratch.absolute(alphas=abs_alpha)
        c = coefficients(net)
        device = next(iter(c.values())).device
        x = torch.ones(1, *input_shape, dtype=dtype, device=device)
        r = logits(net, c, x).sum()
        _check_finite(r.detach(), "synflow", "output sum R")
        g = _grads(r, list(c.values()))
        return finalize(net, {k: (ck * gk).abs() for (k, ck), gk in zip(c.items(), g)}, "synflow")


def _adam_step(c0: Scores, g0: list[torch.Tensor], lr: float, betas: tuple[float, float],
               weight_decay: float) -> Scores:
    """One Adam step on copies of the coefficients (the notebooks' pre-step before the Hessian product)."""
    c1 = {k: v.detach().clone().requires_grad_(True) for k, v in c0.items()}
    for v, g in zip(c1.values(), g0):
        v.grad = g.detach().clone()
    torch.optim.Adam(list(c1.values()), lr=lr, betas=betas, weight_decay=weight_decay).step()
    for v in c1.values():
        v.grad = None
    return c1


def row0_broadcast(g: torch.Tensor) -> torch.Tensor:
    """The NB201 notebook's vector: ``zip(grads, vector)`` pairs the one gradient tensor with row 0 of
    ``vector`` only, so ``g1 * v`` multiplies every edge by edge 0's gradient."""
    return g[:1].expand_as(g)


def grasp_scores(supernet: Supernet, x: torch.Tensor, y: torch.Tensor, variant: GraspVariant = "hg",
                 abs_weights: bool = False, adam_lr: float | None = None,
                 adam_betas: tuple[float, float] = (0.5, 0.999), adam_weight_decay: float = 1e-3,
                 dtype: torch.dtype | None = None) -> Scores:
    """GraSP on the coefficients; higher = keep. H = ∂²L/∂c², g = ∂L/∂c.

    - ``hg`` (GraSP's definition at c₀): ``c₀ ⊙ H(c₀) g``. GraSP prunes the largest ``−θ⊙Hg``, so it keeps
      the largest ``θ⊙Hg``.
    - ``nb201`` (the NB201 notebook's method, corrected): one Adam step c₀ → c₁ on g(c₀), then
      ``c₀ ⊙ H(c₁) g(c₀)``.
    - ``nb201-row0`` (the NB201 notebook exactly, bug included): the same, but the vector is row 0 of
      g(c₀) broadcast over every edge (:func:`row0_broadcast`), ``c₀ ⊙ H(c₁) (1 g₀[0])``.
    - ``darts`` (DARTS-space notebook, torch-1.5 semantics): the Hessian is applied to c₁ itself and c₁ is
      not detached, so the product is ``H(c₁)c₁ + g(c₁)``; score ``|c₀ ⊙ (H(c₁)c₁ + g(c₁))|``.
    """
    if variant not in ("hg", *GRASP_ADAM_LR):
        raise ValueError(f"unknown GraSP variant {variant!r}")
    x = _cast(x, dtype)
    with in_place(supernet, dtype) as scratch:
        net = scratch.net
        if abs_weights:
            scratch.absolute(alphas=False)
        c0 = coefficients(net)
        leaves0 = list(c0.values())
        if variant == "hg":
            g = _grads(F.cross_entropy(logits(net, c0, x), y), leaves0, create_graph=True)
            z = sum((gi * gi.detach()).sum() for gi in g)
            hg = _grads(z, leaves0)
            scores = {k: ck.detach() * h for (k, ck), h in zip(c0.items(), hg)}
            return finalize(net, scores, "grasp")
        g0 = _grads(F.cross_entropy(logits(net, c0, x), y), leaves0)
        lr = adam_lr if adam_lr is not None else GRASP_ADAM_LR[variant]
        c1 = _adam_step(c0, g0, lr, adam_betas, adam_weight_decay)
        leaves1 = list(c1.values())
        g1 = _grads(F.cross_entropy(logits(net, c1, x), y), leaves1, create_graph=True)
        if variant in ("nb201", "nb201-row0"):
            vs = [row0_broadcast(v) if variant == "nb201-row0" else v for v in g0]
            z = sum((a * b.detach()).sum() for a, b in zip(g1, vs))
            h = _grads(z, leaves1)
            scores = {k: ck.detach() * hk for (k, ck), hk in zip(c0.items(), h)}
        else:
            z = sum((a * b).sum() for a, b in zip(g1, leaves1))
            h = _grads(z, leaves1)
            scores = {k: (ck.detach() * hk).abs() for (k, ck), hk in zip(c0.items(), h)}
        return finalize(net, scores, "grasp")
