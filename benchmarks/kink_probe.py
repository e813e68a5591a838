"""Where an fp32 dL/dα error of ~1e-4 comes from: ReLU inputs and max-pool windows whose fp32 and fp64 sides differ.

Issue 23 found nasfw's fp32 dL/dα 4.0e-4 from fp64 at batch 8, 5 cells, C = 8, 16×16 (the reference formulation
then 5.7e-7) and suspected the avg-pool computed as a convolution. This runs the reference formulation
(``baseline.plain_copy``) in fp32 and fp64 on the same weights and batch, and lists every ReLU whose input
changes sign and every max pool whose argmax changes between the two: a gradient there jumps, and which side
fp32 lands on is decided by rounding. It also prints how far the fp64 gradient itself moves under a 1e-6
relative input perturbation (``search_step.kink_spread``).

    OMP_NUM_THREADS=1 python benchmarks/kink_probe.py --batch-size 8 --layers 5 --channels 8 --size 16
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search_step
from baseline import plain_copy


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--size", type=int, default=16)
    a = p.parse_args(argv)
    ns = argparse.Namespace(channels=a.channels, layers=a.layers, nb201_cells=1, batch_size=a.batch_size, size=a.size,
                            zarts_inner_steps=1, zarts_samples=1, channels_last=False, bf16=False, compile=False,
                            tf32=True, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        run = search_step.make_run("darts", ns, Path(tmp) / "run", baseline=False)
        assert run.data is not None and run.supernet is not None
        batch = run.data.val.next()
        errs = search_step.grad_errors(run, batch)
        ref = plain_copy(run.supernet).double()
        g_ref = search_step.alpha_grads(ref, batch, run, torch.float64)
        spread = search_step.kink_spread(ref, batch, run, g_ref)
        print(f"dL/dα error vs fp64: nasfw {errs['nasfw']:.1e}, reference formulation {errs['baseline']:.1e}; "
              f"fp64 gradient moves {spread:.1e} under 1e-6 input noise")
        seen: dict[str, list[torch.Tensor]] = {}
        nets = {"64": ref, "32": plain_copy(run.supernet)}
        for tag, net in nets.items():
            for name, mod in net.named_modules():
                if isinstance(mod, torch.nn.ReLU | torch.nn.MaxPool2d):
                    mod.register_forward_hook(lambda m, i, o, key=f"{tag}:{name}": seen.setdefault(key, []).append(
                        i[0].detach()))
        x, _ = batch
        with torch.no_grad():
            nets["64"](x.double())
            nets["32"](x)
        mods = dict(ref.named_modules())
        found = 0
        for key in [k for k in seen if k.startswith("64:")]:
            name = key[3:]
            m = mods[name]
            for i64, i32 in zip(seen[key], seen["32:" + name]):
                if isinstance(m, torch.nn.MaxPool2d):
                    idx = [F.max_pool2d(t, m.kernel_size, m.stride, m.padding, return_indices=True)[1]
                           for t in (i64, i32)]
                    n = int((idx[0] != idx[1]).sum())
                    if n:
                        found += 1
                        print(f"max pool {name}: {n} windows pick another maximum in fp32")
                else:
                    flip = (i64 > 0) != (i32 > 0)
                    if flip.any():
                        found += 1
                        print(f"ReLU {name}: {int(flip.sum())} inputs change sign, smallest |x| "
                              f"{float(i64.abs()[flip].min()):.1e}")
        if not found:
            print("no ReLU or max pool decides differently in fp32 and fp64")


if __name__ == "__main__":
    main()
