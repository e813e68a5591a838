"""NAS-Bench-201 candidate operations, as the benchmark defines them (Dong & Yang, ICLR 2020).

Cells never change resolution or width (the residual blocks between stages do), so every op here maps
C channels to C channels at stride 1. ``affine=False`` (the search supernet) gives convolutions a bias,
as NB201's ``ReLUConvBN`` does (``bias=not affine``); the stand-alone network has affine BN and no bias.
"""

from __future__ import annotations

import torch
from torch import nn

from nasfw.fastops import AvgPool2d

#: The five NB201 ops, in the benchmark's column order.
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


class ReLUConvBN(nn.Sequential):
    """ReLU, k×k conv, BN (NB201's ``nor_conv_kxk``)."""

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int = 1, affine: bool = True,
                 track_running_stats: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel, stride=stride, padding=kernel // 2, bias=not affine),
            nn.BatchNorm2d(C_out, affine=affine, track_running_stats=track_running_stats),
        )


class Zero(nn.Module):
    """The ``none`` op: zeros shaped like the input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class Identity(nn.Identity):
    """``skip_connect`` (``nn.Identity``, so batched edges share it across edges)."""


def make_op(name: str, C: int, affine: bool, track_running_stats: bool) -> nn.Module:
    """Build one NB201 op on C channels at stride 1."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(C, C, 1, 1, affine, track_running_stats)
    if name == "nor_conv_3x3":
        return ReLUConvBN(C, C, 3, 1, affine, track_running_stats)
    if name == "avg_pool_3x3":
        return AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise KeyError(name)


class ResNetBasicBlock(nn.Module):
    """The fixed reduction block between stages: two ReLU-Conv-BN (first strided) plus a pooled 1×1 shortcut."""

    def __init__(self, C_in: int, C_out: int, stride: int = 2):
        super().__init__()
        self.conv_a = ReLUConvBN(C_in, C_out, 3, stride)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1)
        self.downsample: nn.Module | None
        if stride == 2:
            self.downsample = nn.Sequential(nn.AvgPool2d(2, stride=2, padding=0, ceil_mode=True),
                                            nn.Conv2d(C_in, C_out, 1, bias=False))
        elif C_in != C_out:
            self.downsample = ReLUConvBN(C_in, C_out, 1, 1)
        else:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_b(self.conv_a(x))
        residual = self.downsample(x) if self.downsample is not None else x
        return residual + out
