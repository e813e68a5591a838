"""What ``fd_updates_bn`` changes: eval-mode logits after a few 2nd-order DARTS steps, true vs false.

The reference (``architect.py``) runs the two finite-difference passes of the unrolled α-gradient on the real
model, so BN running statistics move 4 times per search step; ``fd_updates_bn=false`` keeps them on a copy
(2 moves). Both start from the same weights, α and batches; the training-mode math is identical (batch
statistics), only the running statistics, and so eval-mode outputs, differ.

    OMP_NUM_THREADS=1 python benchmarks/second_order_bn.py --seeds 0,1,2 --steps 5
"""

from __future__ import annotations

import argparse
import copy

import torch

from nasfw.builtin.weightings import Softmax
from nasfw.data import DataShape
from nasfw.registry import get_registry
from nasfw_darts.optimizer import DartsOptimizer


def _batch(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, 3, 16, 16, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=5)
    a = p.parse_args(argv)
    reg = get_registry()
    for seed in (int(s) for s in a.seeds.split(",")):
        torch.manual_seed(seed)
        space = reg.create("search_space", {"name": "darts", "params": {"layers": 5, "init_channels": 8}})
        net0 = space.build_supernet(DataShape(3, 16, 16, 10), Softmax())
        gen = torch.Generator().manual_seed(seed)

        batches = [(_batch(16, gen), _batch(16, gen)) for _ in range(a.steps)]
        x_eval = _batch(32, gen)[0]
        outs = {}
        for flag in (True, False):
            net = copy.deepcopy(net0)
            opt = DartsOptimizer(DartsOptimizer.Config(unrolled=True, fd_updates_bn=flag))
            opt.setup(net, None, epochs=1, steps_per_epoch=a.steps)
            for tr, val in batches:
                net.train()
                opt.step(tr, val)
            net.eval()
            with torch.no_grad():
                outs[flag] = net(x_eval)
        d = (outs[True] - outs[False]).abs()
        agree = (outs[True].argmax(1) == outs[False].argmax(1)).float().mean()
        print(f"seed {seed}: {a.steps} steps; eval logits |true - false| max {d.max():.3f} mean {d.mean():.3f} "
              f"(mean |logit| {outs[True].abs().mean():.3f}); argmax agreement {agree:.2f}", flush=True)


if __name__ == "__main__":
    main()
