"""The DARTS candidate operations (ReLU-Conv-BN order), as factories ``(C_in, C_out, stride, affine)``."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nasfw.batched import Act, EdgeBatch, Shared, Stacked, batch_signature
from nasfw.fastops import AvgPool2d

OpFactory = Callable[[int, int, int, bool], nn.Module]


class ReLUConvBN(nn.Sequential):
    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(C_in, C_out, kernel, stride, padding, bias=False),
                         nn.BatchNorm2d(C_out, affine=affine))


class DilConv(nn.Sequential):
    """ReLU, depthwise k×k (dilation d), pointwise 1×1, BN — applied once."""

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, dilation: int,
                 affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel, stride, padding, dilation=dilation, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """(ReLU, depthwise k×k, pointwise 1×1, BN) twice; the first depthwise conv has the stride."""

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__(
            DilConv(C_in, C_in, kernel, stride, padding, 1, affine),
            DilConv(C_in, C_out, kernel, 1, padding, 1, affine),
        )


class Identity(nn.Identity):
    """``skip_connect`` at stride 1 (``nn.Identity``, so batched edges share it across edges)."""


class Zero(nn.Module):
    """The `none` op: zeros of the (strided) output shape."""

    def __init__(self, stride: int, C_out: int | None = None):
        super().__init__()
        self.stride = stride
        self.C_out = C_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.C_out is not None and self.C_out != x.shape[1]:
            return x.new_zeros(x.shape[0], self.C_out, *x.shape[2:])
        return x.mul(0.0)


class FactorizedReduce(nn.Module):
    """Two 1×1 stride-2 convs on offset inputs, concatenated, then BN (the stride-2 skip)."""

    def __init__(self, C_in: int, C_out: int, affine: bool = True):
        super().__init__()
        assert C_out % 2 == 0
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        a = self.conv_1(x)
        b = self.conv_2(x[:, :, 1:, 1:]) if x.shape[-1] > 1 else self.conv_2(x)
        if b.shape[-2:] != a.shape[-2:]:  # odd sizes
            b = F.pad(b, (0, a.shape[-1] - b.shape[-1], 0, a.shape[-2] - b.shape[-2]))
        return self.bn(torch.cat([a, b], dim=1))

    # -- batched edges (nasfw.batched): the stride-2 skip of every input edge of a reduction cell at once
    def batch_signature(self) -> Hashable | None:
        if type(self.relu) is not nn.ReLU:
            return None
        subs = (batch_signature(self.conv_1), batch_signature(self.conv_2), batch_signature(self.bn))
        return None if any(s is None for s in subs) else subs

    @classmethod
    def batch_forward(cls, ops: Sequence[FactorizedReduce], x: Act, scale: torch.Tensor | None,
                      ctx: EdgeBatch) -> tuple[Act, bool]:
        r = ctx.elementwise(ops[0].relu, ("act", nn.ReLU, ""), x)

        def shift(t: torch.Tensor) -> torch.Tensor:
            return t[:, :, 1:, 1:] if t.shape[-1] > 1 else t
        a = ctx.conv([o.conv_1 for o in ops], r)
        b = ctx.conv([o.conv_2 for o in ops], r.map(shift) if isinstance(r, Shared) else Stacked(shift(r.t), r.edges))
        bt = b.t
        if bt.shape[-2:] != a.t.shape[-2:]:
            bt = F.pad(bt, (0, a.t.shape[-1] - bt.shape[-1], 0, a.t.shape[-2] - bt.shape[-2]))
        both = torch.cat([a.view5(), Stacked(bt, b.edges).view5()], dim=2).flatten(1, 2)
        return ctx.batch_norm([o.bn for o in ops], Stacked(both, a.edges), scale)


class NoiseOp(nn.Module):
    """RobustDARTS S4's `noise`: i.i.d. N(0, 1) of the (strided) input's shape; no parameters."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return torch.randn_like(x)


class Conv7x1_1x7(nn.Sequential):
    def __init__(self, C_in: int, C_out: int, stride: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
            nn.Conv2d(C_in, C_out, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


def _skip(C_in: int, C_out: int, stride: int, affine: bool) -> nn.Module:
    if stride == 1 and C_in == C_out:
        return Identity()
    if stride == 1:
        return ReLUConvBN(C_in, C_out, 1, 1, 0, affine)
    return FactorizedReduce(C_in, C_out, affine)


def _pool(kind: str) -> OpFactory:
    def make(C_in: int, C_out: int, stride: int, affine: bool) -> nn.Module:
        pool = (AvgPool2d(3, stride=stride, padding=1, count_include_pad=False) if kind == "avg"
                else nn.MaxPool2d(3, stride=stride, padding=1))
        if C_in != C_out:
            return nn.Sequential(pool, ReLUConvBN(C_in, C_out, 1, 1, 0, affine))
        return pool
    return make


#: name -> factory(C_in, C_out, stride, affine). Registered through ``nasfw_register_operations``.
OPS: dict[str, OpFactory] = {
    "none": lambda ci, co, s, a: Zero(s, co if co != ci else None),
    "avg_pool_3x3": _pool("avg"),
    "max_pool_3x3": _pool("max"),
    "skip_connect": _skip,
    "sep_conv_3x3": lambda ci, co, s, a: SepConv(ci, co, 3, s, 1, a),
    "sep_conv_5x5": lambda ci, co, s, a: SepConv(ci, co, 5, s, 2, a),
    "sep_conv_7x7": lambda ci, co, s, a: SepConv(ci, co, 7, s, 3, a),
    "dil_conv_3x3": lambda ci, co, s, a: DilConv(ci, co, 3, s, 2, 2, a),
    "dil_conv_5x5": lambda ci, co, s, a: DilConv(ci, co, 5, s, 4, 2, a),
    "conv_7x1_1x7": lambda ci, co, s, a: Conv7x1_1x7(ci, co, s, a),
    "noise": lambda ci, co, s, a: NoiseOp(s),
}

PARAMETER_FREE = {"none", "avg_pool_3x3", "max_pool_3x3", "skip_connect", "noise"}
