"""The fast supernet forward (shared ReLU, skipped `none`, fused multiply-add, conv avg-pool) equals the
reference formulation ``sum(w * op(x))`` of ``benchmarks/baseline.py`` in fp32: outputs, every gradient
and the BN running statistics."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasfw import recompute
from nasfw.data import DataShape
from nasfw.fastops import AvgPool2d, after_leading_relu, starts_with_relu
from nasfw.registry import get_registry

BASELINE = Path(__file__).resolve().parents[3] / "benchmarks" / "baseline.py"


def _baseline():
    if not BASELINE.exists():
        pytest.skip(f"{BASELINE} is not in this checkout")
    spec = importlib.util.spec_from_file_location("nasfw_bench_baseline", BASELINE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _pair(space: str, **params):
    torch.manual_seed(0)
    reg = get_registry()
    sp = reg.create("search_space", {"name": space, "params": params})
    net = sp.build_supernet(DataShape(3, 16, 16, 10), reg.create("edge_weighting", "softmax"))
    with torch.no_grad():
        for a in net.alphas.values():
            a.normal_(0, 0.5)  # far from uniform, so every op's weight matters
    return net, _baseline().plain_copy(net)


def _grads(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    net.zero_grad(set_to_none=True)
    out = net(x)
    F.cross_entropy(out, y).backward()
    return out.detach(), {n: p.grad for n, p in net.named_parameters() if p.grad is not None}


SPACES = [("darts", {"layers": 3, "init_channels": 4}), ("s3", {"layers": 3, "init_channels": 4}),
          ("nb201", {"init_channels": 4, "cells_per_stage": 1})]


@pytest.mark.parametrize(("space", "params"), SPACES, ids=[s for s, _ in SPACES])
def test_fast_forward_matches_reference_sum(space: str, params: dict) -> None:
    if space not in get_registry().names("search_space"):
        pytest.skip(f"space '{space}' is not installed")
    try:
        fast, plain = _pair(space, **params)
    except Exception as exc:  # a space option name differs: the test must say so, not pass
        raise AssertionError(f"could not build '{space}' with {params}: {exc}") from exc
    x, y = torch.randn(6, 3, 16, 16), torch.randint(0, 10, (6,))
    out_f, g_f = _grads(fast, x, y)
    out_p, g_p = _grads(plain, x, y)
    assert torch.allclose(out_f, out_p, rtol=1e-5, atol=1e-6), (out_f - out_p).abs().max()
    assert set(g_p) - set(g_f) <= {n for n in g_p if g_p[n].abs().max() == 0}  # only `none`-only paths
    for name, g in g_f.items():
        assert torch.allclose(g, g_p[name], rtol=1e-4, atol=1e-6), (name, (g - g_p[name]).abs().max())
    for (name, b), b_p in zip(fast.named_buffers(), plain.buffers()):
        if b.is_floating_point():
            assert torch.allclose(b, b_p, rtol=1e-5, atol=1e-6), name
    # under a mask and without autograd (selectors), too
    for net in (fast, plain):
        for k in net.alphas:
            m = net.mask(k).clone()
            m[0, :] = False
            m[0, -1] = True
            net.set_mask(k, m)
    with torch.no_grad():
        assert torch.allclose(fast(x), plain(x), rtol=1e-5, atol=1e-6)


def test_avg_pool_equals_torch_including_gradient() -> None:
    torch.manual_seed(0)
    for stride in (1, 2):
        for include in (False, True):
            x = torch.randn(3, 5, 9, 8, requires_grad=True)
            fast, ref = AvgPool2d(3, stride, 1, include), nn.AvgPool2d(3, stride, 1, count_include_pad=include)
            yf, yr = fast(x), ref(x)
            assert yf.shape == yr.shape and torch.allclose(yf, yr, rtol=1e-6, atol=1e-7)
            w = torch.randn_like(yr)
            gf, = torch.autograd.grad((yf * w).sum(), x)
            gr, = torch.autograd.grad((yr * w).sum(), x)
            assert torch.allclose(gf, gr, rtol=1e-6, atol=1e-7)


def test_leading_relu_split_is_exact() -> None:
    from nasfw_space_darts.ops import OPS

    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8)
    split = {name for name in OPS if starts_with_relu(OPS[name](4, 4, 1, False))}
    assert {"sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5", "conv_7x1_1x7"} <= split
    assert not split & {"none", "skip_connect", "max_pool_3x3", "avg_pool_3x3", "noise"}
    for name in sorted(split):
        op = OPS[name](4, 4, 1, False)
        assert torch.equal(after_leading_relu(op, torch.relu(x)), op(x)), name


GRID = [("darts", 8, 16, 8, 5), ("darts", 4, 8, 4, 3), ("darts", 2, 16, 4, 3), ("darts", 6, 12, 4, 4),
        ("darts", 4, 32, 4, 3), ("nb201", 4, 16, 4, 1), ("nb201", 8, 8, 4, 2)]


@pytest.mark.parametrize(("case", "batch", "size", "channels", "depth"), GRID,
                         ids=[f"{c}-b{b}-{s}px-C{ch}-{d}" for c, b, s, ch, d in GRID])
def test_benchmark_gradient_check_over_sizes(tmp_path, case: str, batch: int, size: int, channels: int,
                                             depth: int) -> None:
    """``benchmarks/search_step.py``'s own fp32 check (dL/dα vs fp64: nasfw within 3× the reference formulation's
    error, or within 2× the fp64 gradient's jump where a kink lies within rounding) over a grid of sizes; the
    first point is issue 23's batch 8, 5 cells, C = 8, 16×16."""
    import argparse
    import sys

    path = BASELINE.parent / "search_step.py"
    spec = importlib.util.spec_from_file_location("nasfw_bench_search_step", path)
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BASELINE.parent))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(BASELINE.parent))
    a = argparse.Namespace(channels=channels, layers=depth, nb201_cells=depth, batch_size=batch, size=size,
                           zarts_inner_steps=1, zarts_samples=1, channels_last=False, bf16=False, compile=False,
                           tf32=True, device="cpu")
    run = mod.make_run(case, a, tmp_path / "run", baseline=False)
    e = mod.grad_errors(run, run.data.val.next())
    assert e["ok"], e
    assert e["nasfw"] < 1e-3, e


@pytest.mark.parametrize("space", ["darts", "nb201"])
def test_bf16_autocast_training_forward_tracks_fp32_statistics(space: str) -> None:
    """Under CPU bf16 autocast (``performance.bf16``) the batched supernet trains: finite loss and α gradients,
    BN running statistics stay fp32 and within bf16 rounding of the fp32 forward's (the shared affine-free BN
    once crashed here on bf16 activations)."""
    params = {"layers": 3, "init_channels": 4} if space == "darts" else {"init_channels": 4, "cells_per_stage": 1}
    fast, plain = _pair(space, **params)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    plain(x)  # fp32 statistics of the same forward
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = F.cross_entropy(fast(x).float(), y)
    grads = torch.autograd.grad(loss, list(fast.arch_parameters().values()))
    assert torch.isfinite(loss) and all(torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().max()) > 0 for g in grads)
    for (name, b), b32 in zip(fast.named_buffers(), plain.buffers()):
        if b.is_floating_point():
            assert b.dtype == torch.float32, name
            assert torch.allclose(b, b32, rtol=5e-2, atol=2e-2), (name, float((b - b32).abs().max()))


def _saved_bytes(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """What autograd keeps for backward in one training forward (distinct storages), as benchmarks/search_step.py
    measures it."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        F.cross_entropy(net(x), y)
    return sum(seen.values())


@pytest.mark.parametrize(("space", "params", "at_most"), [
    ("darts", {"layers": 3, "init_channels": 4}, 0.6), ("nb201", {"init_channels": 4, "cells_per_stage": 1}, 0.6)])
def test_saved_for_backward_memory_is_under_the_issue_target(monkeypatch, space: str, params: dict,
                                                             at_most: float) -> None:
    """Issue 23.1's memory target (≤ 0.6× the per-edge formulation), here at a tiny size: batched edges plus the
    cheap activations (ReLU outputs, stacked inputs, relu(BN)) kept as recipes (nasfw.recompute); the same
    gradients with and without the recipes."""
    fast, plain = _pair(space, **params)
    x, y = torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,))
    ratio = _saved_bytes(fast, x, y) / _saved_bytes(plain, x, y)
    assert ratio <= at_most, ratio
    _, g = _grads(fast, x, y)
    monkeypatch.setattr(recompute, "usable", lambda *t: False)
    _, g_plain = _grads(fast, x, y)
    assert _saved_bytes(fast, x, y) / _saved_bytes(plain, x, y) > ratio  # the recipes did the difference
    for name, t in g.items():
        torch.testing.assert_close(t, g_plain[name], rtol=0, atol=0, msg=name)
