"""Max-W edge weighting (sharpDARTS): Σ_k (1 − max_j w_j + w_k) · op_k on per-row softmax weights w."""

from __future__ import annotations

import torch
from pydantic import Field

from nasfw.builtin.weightings import masked_softmax
from nasfw.components import EdgeWeighting, StrictModel


def max_w(alpha: torch.Tensor, mask: torch.Tensor, detach_max: bool = False) -> torch.Tensor:
    """Coefficients 1 − max(w) + w over the available entries of each row; 0 where masked."""
    w = masked_softmax(alpha, mask)
    w_max = w.amax(dim=-1, keepdim=True)
    if detach_max:
        w_max = w_max.detach()
    return (1.0 - w_max + w) * mask.to(w.dtype)


class MaxW(EdgeWeighting):
    """The strongest op of a row gets coefficient 1, the others 1 − (w_max − w_k).

    Gradients flow through w_max, as in the official code (its comment says they should not;
    ``detach_max=true`` gives that intended variant). Magnitude selection ranks the softmax weights,
    as sharpDARTS' genotype extraction does.
    """

    class Config(StrictModel):
        detach_max: bool = Field(default=False, description="stop gradients through max(w) (the code's stated intent)")

    config: Config

    def __call__(self, alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return max_w(alpha, mask, self.config.detach_max)

    def strength(self, alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_softmax(alpha, mask)
