"""The ``raw`` edge weighting FreeDARTS uses: the mixed op is Σ_k α_k·op_k, no softmax."""

from __future__ import annotations

import torch

from nasfw.components import EdgeWeighting


class RawAlpha(EdgeWeighting):
    """α itself is the mixing coefficient (zero where masked), so a saliency on the coefficients is a saliency on α."""

    def __call__(self, alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return alpha * mask.to(alpha.dtype)
