"""SharpSepConv and the sharp ops: hand-counted parameters, shapes, the mid-channel rules."""

from __future__ import annotations

import pytest
import torch

from nasfw.testing import check_operation
from nasfw_sharpdarts.ops import OPS, ResizablePool, SharpSepConv
from nasfw_space_darts.ops import SepConv


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def hand_count(c_in: int, c_out: int, k: int, c_mid: int, affine: bool) -> int:
    """dw k×k on C_in + pw C_in·C_mid + BN(C_mid) + dw k×k on C_mid + pw C_mid·C_out + BN(C_out)."""
    bn = 2 if affine else 0
    return c_in * k * k + c_in * c_mid + bn * c_mid + c_mid * k * k + c_mid * c_out + bn * c_out


@pytest.mark.parametrize(("name", "k", "mid"), [
    ("sharp_sep_conv_3x3", 3, lambda c: c), ("sharp_sep_conv_5x5", 5, lambda c: c),
    ("sharp_sep_conv_7x7", 7, lambda c: c), ("sharp_dil_conv_3x3", 3, lambda c: c),
    ("sharp_dil_conv_5x5", 5, lambda c: c), ("flood_conv_3x3", 3, lambda c: 4 * c),
    ("flood_conv_5x5", 5, lambda c: 4 * c), ("dil_flood_conv_3x3", 3, lambda c: 4 * c),
    ("dil_flood_conv_5x5", 5, lambda c: 4 * c), ("choke_conv_3x3", 3, lambda c: 32),
    ("dil_choke_conv_3x3", 3, lambda c: 32),
])
@pytest.mark.parametrize("affine", [True, False])
def test_ssc_variant_parameter_counts(name, k, mid, affine):
    C = 36
    assert n_params(OPS[name](C, C, 1, affine)) == hand_count(C, C, k, mid(C), affine)


def test_ssc_hand_counts_concrete_and_darts_sepconv_equivalence():
    # C=16, k=3, C_mid=16, affine: 144 + 256 + 32 + 144 + 256 + 32 = 864
    assert n_params(SharpSepConv(16, 16, 3, 1, 1)) == 864
    # with C_mid = C_out it has exactly DARTS SepConv's parameters
    assert n_params(SharpSepConv(20, 20, 5, 2, 2)) == n_params(SepConv(20, 20, 5, 2, 2))
    # channel change and explicit C_mid: 8·9 + 8·96 + 192 + 96·9 + 96·24 + 48
    assert n_params(SharpSepConv(8, 24, 3, C_mid=96)) == 72 + 768 + 192 + 864 + 2304 + 48
    assert OPS["choke_conv_3x3"](36, 36, 1, True, C_mid=96).c_mid == 96


def test_ssc_dilation_only_in_first_stage_and_stride():
    m = OPS["sharp_dil_conv_3x3"](4, 4, 2, True)
    assert m[1].dilation == (2, 2) and m[1].stride == (2, 2) and m[1].padding == (2, 2)
    assert m[5].dilation == (1, 1) and m[5].stride == (1, 1) and m[5].padding == (1, 1)
    assert m(torch.randn(2, 4, 9, 9)).shape == (2, 4, 5, 5)


def test_resizable_pool_channel_change_and_avg_count_include_pad():
    assert n_params(ResizablePool(8, 8)) == 0
    p = ResizablePool(8, 16, stride=2, affine=True)
    assert n_params(p) == 8 * 16 + 2 * 16 and p(torch.randn(1, 8, 8, 8)).shape == (1, 16, 4, 4)
    x = torch.ones(1, 1, 4, 4)
    corner = OPS["sharp_avg_pool_3x3"](1, 1, 1, False)(x)[0, 0, 0, 0]
    assert corner == pytest.approx(4 / 9)  # zero padding counted, unlike DARTS' count_include_pad=False


@pytest.mark.parametrize("name", sorted(OPS))
def test_sharp_op_contract(name):
    check_operation(OPS[name])
