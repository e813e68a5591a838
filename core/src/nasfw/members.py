"""Member-constrained selection: the best architecture of an explicit member set under per-(edge, op) scores.

A shrunk space (``SearchSpace.restrict_to``) is a list of architectures, not a product of per-edge choices, so
a selector's per-edge argmax may pick a cell that is not a member. Every selector ends in the space's
``discretize(scores)``; on a member space that call returns the member whose ops score best together:

    score(m) = Σ over m's (edge, op) of log w[edge, op]

with ``w`` each edge's scores turned into weights. Non-negative scores (softmax or Max-W weights, saliencies,
one-hot decisions) are divided by their row sum, so for DARTS' softmax this is the log-likelihood of ``m``
under the per-edge categorical distributions; rows with negative entries are read as logits (log-softmax).
Zero weights and unavailable entries count ``log 1e-12``, so a one-hot decision (DARTS-PT) selects the member
with the most matching edges. Ties go to the earlier member.
"""

from __future__ import annotations

import math

import torch

#: log-weight of a zero-weight or unavailable (edge, op): a large finite penalty, so mismatches are counted
LOG_FLOOR = math.log(1e-12)


def row_log_weights(scores: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
    """(rows, K) log-weights of one architecture tensor's scores; ``LOG_FLOOR`` where unavailable."""
    s = scores.detach().float().cpu()
    ok = available.to(torch.bool).cpu() & torch.isfinite(s)
    out = torch.full_like(s, LOG_FLOOR)
    for r in range(s.shape[0]):
        sel = ok[r]
        if not bool(sel.any()):
            continue
        v = s[r, sel]
        if bool((v >= 0).all()):
            total = float(v.sum())
            w = v / total if total > 0 else torch.full_like(v, 1.0 / v.numel())
            out[r, sel] = torch.log(w.clamp_min(1e-12))
        else:
            out[r, sel] = torch.log_softmax(v, dim=0).clamp_min(LOG_FLOOR)
    return out


def member_scores(encodings: dict[str, torch.Tensor], scores: dict[str, torch.Tensor],
                  table: dict[str, torch.Tensor]) -> torch.Tensor:
    """Σ of log-weights over each member's (edge, op); ``encodings[k]`` is (members, rows, K) one-hot."""
    total: torch.Tensor | None = None
    for k, enc in encodings.items():
        if k not in scores:
            raise KeyError(f"scores lack the architecture tensor '{k}'")
        logw = row_log_weights(scores[k], table[k])
        part = (enc * logw.unsqueeze(0)).sum(dim=(1, 2))
        total = part if total is None else total + part
    assert total is not None
    return total


def best_index(values: torch.Tensor) -> int:
    """The first index of the maximum (ties go to the earlier member)."""
    top = values.max()
    return int((values == top).nonzero()[0])


__all__ = ["LOG_FLOOR", "best_index", "member_scores", "row_log_weights"]
