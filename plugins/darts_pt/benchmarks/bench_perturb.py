"""Time DARTS-PT's perturbed evaluations: in-place weight override vs rebuilding (deep-copying) the supernet.

One op decision evaluates the supernet once per candidate op with that op zeroed. ``perturb`` does it with
``Supernet.override_weights`` (no module is rebuilt, zeroed ops are skipped); the baseline deep-copies the
supernet and masks the op in the copy, as a naive implementation would. Prints seconds per decision for
both, their ratio, and the forward passes a full DARTS-space selection needs.

    OMP_NUM_THREADS=1 python plugins/darts_pt/benchmarks/bench_perturb.py [--device cuda] [--channels 16]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from nasfw.builtin.weightings import Softmax
from nasfw.data import DataShape
from nasfw.registry import get_registry


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.manual_seed(0)
    space = get_registry().create("search_space", {"name": "darts", "params": {
        "layers": args.layers, "init_channels": args.channels}})
    shape = DataShape(3, args.size, args.size, 10)
    net = space.build_supernet(shape, Softmax()).to(dev).train()
    batches = [torch.randn(args.batch, 3, args.size, args.size, device=dev) for _ in range(args.batches)]
    row, cell = 5, "normal"
    ops = net.mask(cell).shape[1]

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    @torch.no_grad()
    def override_decision() -> None:
        base = net.mixing_weights()[cell].detach()
        for k in range(ops):
            w = base.clone()
            w[row, k] = 0.0
            with net.override_weights({cell: w}):
                for x in batches:
                    net(x)

    @torch.no_grad()
    def rebuild_decision() -> None:
        for k in range(ops):
            copy_net = copy.deepcopy(net)
            m = copy_net.mask(cell).clone()
            m[row, k] = False
            copy_net.set_mask(cell, m)
            for x in batches:
                copy_net(x)

    def timed(fn) -> float:
        fn()  # warm-up
        sync()
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            sync()
            best = min(best, time.perf_counter() - t0)
        return best

    t_override = timed(override_decision)
    t_rebuild = timed(rebuild_decision)
    print(f"device={dev} layers={args.layers} C={args.channels} batch={args.batch}x{args.batches} ops={ops}")
    print(f"one op decision ({ops} perturbed evaluations): override {t_override:.3f}s, "
          f"rebuild (deepcopy) {t_rebuild:.3f}s, ratio rebuild/override = {t_rebuild / t_override:.2f}x")
    n_evals = 2 * (14 * ops + 3 + 4 + 3 + 5 + 4 + 3)
    print(f"a full DARTS-space selection: {n_evals} evaluations of the val split "
          f"(≈ {n_evals / (2 * 14) * t_override / ops * 2 * 14:.1f}s at this size and {args.batches} batches each)")


if __name__ == "__main__":
    main()
