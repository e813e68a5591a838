"""sharpDARTS candidate operations as factories ``(C_in, C_out, stride, affine)``.

SharpSepConv ("SSC") is two depthwise-separable stages with a configurable middle width; only the
first depthwise conv carries the stride and the dilation. The variants differ in kernel, dilation and
middle width: plain (C_mid = C_out), flood (4·C_out), choke (a fixed C_mid, 32 by default).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn

OpFactory = Callable[..., nn.Module]

#: C_mid of the choke ops when none is given (sharpDARTS' search supernet never passes one).
DEFAULT_CHOKE_MID = 32


class SharpSepConv(nn.Sequential):
    """ReLU, dw k×k (stride, dilation), pw C_in→C_mid, BN, ReLU, dw k×k (stride 1), pw C_mid→C_out, BN."""

    def __init__(self, C_in: int, C_out: int, kernel: int = 3, stride: int = 1, padding: int = 1,
                 dilation: int = 1, affine: bool = True, C_mid_mult: float = 1.0, C_mid: int | None = None):
        c_mid = C_mid if C_mid is not None else int(C_out * C_mid_mult)
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel, stride=stride, padding=padding, dilation=dilation, groups=C_in, bias=False),
            nn.Conv2d(C_in, c_mid, 1, bias=False),
            nn.BatchNorm2d(c_mid, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(c_mid, c_mid, kernel, stride=1, padding=(kernel - 1) // 2, groups=c_mid, bias=False),
            nn.Conv2d(c_mid, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )
        self.c_mid = c_mid


class ResizablePool(nn.Module):
    """3×3 pooling; when the channel count changes, a 1×1 conv and BN (eps 1e-3) follow."""

    def __init__(self, C_in: int, C_out: int, stride: int = 1, affine: bool = True, kind: str = "max"):
        super().__init__()
        # sharpDARTS keeps PyTorch's default count_include_pad=True for average pooling (DARTS sets False)
        pool: nn.Module = (nn.AvgPool2d(3, stride=stride, padding=1) if kind == "avg"
                           else nn.MaxPool2d(3, stride=stride, padding=1))
        if C_in == C_out:
            self.op: nn.Module = pool
        else:
            self.op = nn.Sequential(pool, nn.Conv2d(C_in, C_out, 1, bias=False),
                                    nn.BatchNorm2d(C_out, eps=1e-3, affine=affine))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


def ssc(kernel: int, dilation: int = 1, mid_mult: float = 1.0, choke: bool = False) -> OpFactory:
    """A SharpSepConv factory; 'same' padding dilation·(k−1)/2; choke ops take ``C_mid`` (default 32)."""
    padding = dilation * (kernel - 1) // 2

    def make(C_in: int, C_out: int, stride: int, affine: bool, C_mid: int | None = None) -> nn.Module:
        if choke:
            C_mid = DEFAULT_CHOKE_MID if C_mid is None else C_mid
        return SharpSepConv(C_in, C_out, kernel, stride, padding, dilation, affine, mid_mult, C_mid)

    make.__name__ = f"ssc_k{kernel}_d{dilation}_x{mid_mult:g}{'_choke' if choke else ''}"
    return make


def pool(kind: str) -> OpFactory:
    def make(C_in: int, C_out: int, stride: int, affine: bool) -> nn.Module:
        return ResizablePool(C_in, C_out, stride, affine, kind)

    make.__name__ = f"resizable_{kind}_pool"
    return make


#: registered name -> factory. The ``sharp_`` names are sharpDARTS' versions of ops whose genotype
#: names DARTS already uses (the sharp spaces map those genotype names here through ``op_impl``).
OPS: dict[str, OpFactory] = {
    "sharp_sep_conv_3x3": ssc(3),
    "sharp_sep_conv_5x5": ssc(5),
    "sharp_sep_conv_7x7": ssc(7),
    "sharp_dil_conv_3x3": ssc(3, dilation=2),
    "sharp_dil_conv_5x5": ssc(5, dilation=2),
    "flood_conv_3x3": ssc(3, mid_mult=4),
    "flood_conv_5x5": ssc(5, mid_mult=4),
    "dil_flood_conv_3x3": ssc(3, dilation=2, mid_mult=4),
    # the official code pads this one by 2 (it needs 4) and shrinks the map; we register the corrected op
    "dil_flood_conv_5x5": ssc(5, dilation=2, mid_mult=4),
    "choke_conv_3x3": ssc(3, choke=True),
    "dil_choke_conv_3x3": ssc(3, dilation=2, choke=True),
    "sharp_max_pool_3x3": pool("max"),
    "sharp_avg_pool_3x3": pool("avg"),
}

#: genotype op name -> registered op, for spaces that use sharpDARTS' ``OPS`` dict
SHARP_OP_IMPL: dict[str, str] = {
    "sep_conv_3x3": "sharp_sep_conv_3x3",
    "sep_conv_5x5": "sharp_sep_conv_5x5",
    "sep_conv_7x7": "sharp_sep_conv_7x7",
    "dil_conv_3x3": "sharp_dil_conv_3x3",
    "dil_conv_5x5": "sharp_dil_conv_5x5",
    "max_pool_3x3": "sharp_max_pool_3x3",
    "avg_pool_3x3": "sharp_avg_pool_3x3",
}

#: registered ops that take a ``C_mid`` keyword
CHOKE_OPS = frozenset({"choke_conv_3x3", "dil_choke_conv_3x3"})


def with_mid(factory: OpFactory, C_mid: int) -> OpFactory:
    """A choke factory with a fixed middle width (the final network's ``--mid_channels``)."""
    return partial(factory, C_mid=C_mid)
