"""Parameters and multiply-adds of a network, as NAS papers report them.

Multiply-adds are counted with forward hooks over one eval-mode forward pass of a single input: every
convolution contributes ``out_elements * (C_in / groups) * kH * kW`` and every linear layer
``out_features * in_features`` (per output row). Pooling, BN, activations and additions are not counted,
which is the convention of the DARTS / NASNet "mult-adds" columns. Auxiliary heads do not run in eval mode,
so they are excluded from the count; their parameters are excluded by name.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def count_params(model: nn.Module, exclude: Iterable[str] = ("auxiliary",)) -> int:
    """Parameters whose qualified name contains none of ``exclude`` (papers exclude the auxiliary head)."""
    skip = tuple(exclude)
    return sum(p.numel() for n, p in model.named_parameters() if not any(s in n for s in skip))


def _conv_macs(module: nn.modules.conv._ConvNd, out: torch.Tensor) -> int:
    per_out = (module.in_channels // module.groups) * int(torch.tensor(module.kernel_size).prod())
    return out.numel() * per_out


def count_macs(model: nn.Module, input_shape: tuple[int, ...], device: torch.device | str = "cpu") -> int:
    """Multiply-adds of one forward pass of a batch of 1 with shape ``input_shape`` (C, H, W)."""
    total = [0]

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        if isinstance(module, nn.modules.conv._ConvNd):
            total[0] += _conv_macs(module, out)
        elif isinstance(module, nn.Linear):
            total[0] += out.numel() * module.in_features
        elif isinstance(module, nn.Bilinear):
            total[0] += out.numel() * module.in1_features * module.in2_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear, nn.Bilinear))]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    return int(total[0])


def profile(model: nn.Module, input_shape: tuple[int, ...], device: torch.device | str = "cpu") -> dict[str, int]:
    """``{"params": ..., "flops": ...}`` (flops = multiply-adds, as in the papers)."""
    return {"params": count_params(model), "flops": count_macs(model, input_shape, device)}


__all__ = ["count_macs", "count_params", "profile"]
