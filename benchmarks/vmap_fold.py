"""ZARTS-MGS step with 5×5 depthwise convolutions under vmap folded onto the physical channels-last kernels
(``nasfw.fastops._vmapped_depthwise``) against functorch's own convolution rule, alternated in one process.

    OMP_NUM_THREADS=2 python benchmarks/vmap_fold.py --inner-steps 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search_step

from nasfw import fastops


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--inner-steps", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--repeats", type=int, default=2)
    a = p.parse_args()
    ns = argparse.Namespace(channels=a.channels, layers=a.layers, batch_size=a.batch_size, size=32, nb201_cells=5,
                            zarts_inner_steps=a.inner_steps, zarts_samples=4, channels_last=False, bf16=False,
                            compile=False, tf32=True, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        run = search_step.make_run("zarts-mgs", ns, Path(tmp) / "run", baseline=False)
        assert run.supernet is not None and run.optimizer is not None and run.data is not None
        batches = (run.data.train.next(), run.data.val.next())

        def step() -> None:
            run.supernet.train()
            run.optimizer.step(run.to_device(batches[0]), run.to_device(batches[1]))

        fold = fastops._vmapped_depthwise
        best = {"functorch rule": float("inf"), "folded": float("inf")}
        step()
        try:
            for _ in range(a.repeats):
                for mode in best:
                    fastops._vmapped_depthwise = fold if mode == "folded" else (lambda *args: None)
                    t = time.perf_counter()
                    step()
                    best[mode] = min(best[mode], time.perf_counter() - t)
        finally:
            fastops._vmapped_depthwise = fold
    print(f"# ZARTS-MGS step, N=4, M={a.inner_steps}, batch {a.batch_size}, {a.layers} cells, C={a.channels}")
    for k, v in best.items():
        print(f"{k}: {v * 1000:.0f} ms")
    print(f"ratio: {best['functorch rule'] / best['folded']:.2f}x")


if __name__ == "__main__":
    main()
