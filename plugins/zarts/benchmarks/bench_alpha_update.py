"""ms per ZARTS α update and per weight step: the preallocated scratch oracle vs a deep copy per sample.

    OMP_NUM_THREADS=1 python plugins/zarts/benchmarks/bench_alpha_update.py --layers 8 --channels 16 --size 32

The baseline is the straightforward implementation (what the released code does at every update):
``copy.deepcopy`` the supernet for every sample, set its α, train it with a fresh SGD, evaluate.
Both run the same math (checked: the losses agree), so the ratio is the cost of rebuilding modules.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from nasfw.components import Context
from nasfw.data import Batch, BatchStream, DataShape, DataSplits, SearchData
from nasfw.registry import get_registry


def deepcopy_oracle(opt: Any, alpha: dict[str, torch.Tensor], inner: list[Batch], val_batch: Batch) -> float:
    """The baseline oracle: a fresh deep copy of the supernet per sample."""
    net = opt.supernet
    ref = copy.deepcopy(net, memo={id(net.weighting): net.weighting})
    with torch.no_grad():
        for k, a in ref.arch_parameters().items():
            a.copy_(alpha[k].to(a.device, a.dtype))
    ref.train()
    weights = ref.weight_parameters()
    c = opt.config
    sgd = torch.optim.SGD(weights, lr=c.inner_lr, momentum=c.inner_momentum, weight_decay=c.inner_weight_decay)
    for x, y in inner:
        sgd.zero_grad(set_to_none=True)
        F.cross_entropy(ref(x), y).backward(inputs=weights)
        sgd.step()
    with torch.no_grad():
        return float(F.cross_entropy(ref(val_batch[0]), val_batch[1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="darts-7op")
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--size", type=int, default=16, help="input height = width")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--inner-batch", type=int, default=48)
    p.add_argument("--inner-steps", type=int, default=10)
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args()
    dev = torch.device(a.device)
    torch.manual_seed(0)
    reg = get_registry()
    ctx = Context(registry=reg, device=dev, seed=0)
    shape = DataShape(3, a.size, a.size, 10)
    n = 512
    ds = TensorDataset(torch.randn(n, 3, a.size, a.size), torch.randint(0, 10, (n,)))
    splits = DataSplits(ds, ds, None, shape)
    data = SearchData(splits, BatchStream(ds, a.batch, 1), BatchStream(ds, a.batch, 2), None,
                      stream_factory=lambda name, split, bs: BatchStream(ds, bs, 3))
    space = reg.create("search_space", {"name": a.space, "params": {"layers": a.layers, "init_channels": a.channels}},
                       ctx)
    net = space.build_supernet(shape, reg.create("edge_weighting", "softmax", ctx)).to(dev)
    opt = reg.create("optimizer", {"name": "zarts-mgs", "params": {
        "warmup_epochs": 0, "inner_steps": a.inner_steps, "num_samples": a.samples,
        "inner_batch_size": a.inner_batch}}, ctx)
    opt.setup(net, data, 50, 100)
    opt.epoch_start(0)
    net.train()

    def batch(stream: BatchStream) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = stream.next()
        return x.to(dev), y.to(dev)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def timed(fn: Callable[[], Any], reps: int) -> float:
        fn()  # warm-up
        sync()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        sync()
        return (time.perf_counter() - t0) / reps * 1e3

    # same inputs for both oracles: equal losses prove the fast path computes the same thing
    inner, val = opt.inner_batches(), batch(data.val)
    alpha = opt.current_alpha()
    fast, slow = opt.perturbed_loss(alpha, inner, val), deepcopy_oracle(opt, alpha, inner, val)
    print(f"same loss: preallocated {fast:.6f} vs deep copy {slow:.6f}")

    w_ms = timed(lambda: opt.weight_step(batch(data.train)), max(5, a.repeats))
    saved = {k: v.detach().clone() for k, v in net.arch_parameters().items()}
    fast_ms = timed(lambda: opt.alpha_update(val), a.repeats)
    opt.perturbed_loss = lambda al, inn, vb: deepcopy_oracle(opt, al, inn, vb)  # type: ignore[method-assign]
    slow_ms = timed(lambda: opt.alpha_update(val), a.repeats)
    with torch.no_grad():
        for k, v in net.arch_parameters().items():
            v.copy_(saved[k])
    print(f"device={dev} space={a.space} layers={a.layers} C={a.channels} {a.size}x{a.size} batch={a.batch} "
          f"inner {a.inner_steps}x{a.inner_batch} N={a.samples}")
    print(f"weight step:                     {w_ms:9.1f} ms")
    print(f"MGS α update, preallocated:      {fast_ms:9.1f} ms")
    print(f"MGS α update, deepcopy/sample:   {slow_ms:9.1f} ms")
    print(f"speed-up: {slow_ms / fast_ms:.2f}x   amortised per weight step (update every {opt.period}): "
          f"{w_ms + fast_ms / opt.period:.1f} ms")


if __name__ == "__main__":
    main()
