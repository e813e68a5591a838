"""What keeping cheap activations as recipes (``nasfw.recompute``) costs in time: one DARTS first-order search
step with the recipes on and off (``recompute.usable`` patched to ``False``), alternated in one process, best of
``--repeats``; also the saved-for-backward memory of each.

    OMP_NUM_THREADS=2 python benchmarks/recompute_cost.py --cases darts --layers 5 --channels 8 --batch-size 64
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_step import make_run, saved_bytes

import nasfw.recompute as recompute


def measure(case: str, a: argparse.Namespace) -> str:
    usable = recompute.usable
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(case, a, Path(tmp) / "run", baseline=False)
        assert run.data is not None and run.optimizer is not None and run.supernet is not None
        train, val = run.data.train.next(), run.data.val.next()

        def step() -> None:
            run.supernet.train()
            run.optimizer.step(run.to_device(train), run.to_device(val))
        step()
        best, mb = {True: float("inf"), False: float("inf")}, {}
        try:
            for _ in range(a.repeats):
                for on in (False, True):
                    recompute.usable = usable if on else (lambda *t: False)
                    t = time.perf_counter()
                    step()
                    best[on] = min(best[on], time.perf_counter() - t)
                    mb[on] = saved_bytes(run, train) / 2**20
        finally:
            recompute.usable = usable
    return (f"case={case}  off_ms={best[False] * 1000:.0f}  on_ms={best[True] * 1000:.0f}  "
            f"time_ratio={best[True] / best[False]:.3f}  off_mb={mb[False]:.0f}  on_mb={mb[True]:.0f}  "
            f"memory_ratio={mb[True] / mb[False]:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default="darts", help="comma-separated: darts, nb201")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--nb201-cells", type=int, default=5)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=4)
    a = p.parse_args()
    a.channels_last = a.bf16 = a.compile = a.tf32 = False
    a.device, a.zarts_inner_steps, a.zarts_samples = "cpu", 1, 1
    for case in a.cases.split(","):
        print(measure(case, a), flush=True)


if __name__ == "__main__":
    main()
