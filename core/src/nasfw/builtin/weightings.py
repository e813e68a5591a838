"""The default edge weighting: softmax over the ops available on each edge."""

from __future__ import annotations

import torch

from nasfw.components import EdgeWeighting


def masked_softmax(alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Row-wise softmax over available entries; masked entries and fully masked rows get 0."""
    neg = torch.finfo(alpha.dtype).min
    logits = alpha.masked_fill(~mask, neg)
    w = torch.softmax(logits, dim=-1)
    return w * mask.any(dim=-1, keepdim=True).to(w.dtype) * mask.to(w.dtype)


class Softmax(EdgeWeighting):
    """Σ softmax(α)_k · op_k (DARTS)."""

    def __call__(self, alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_softmax(alpha, mask)
