"""One checkpoint write of a real run's state: format 3 (tensors packed) against the format-2 write, alternated.

The format-2 write is what ``save_atomic`` did before packing: the SHA-256 / finiteness walk over every tensor and
``torch.save`` of the unpacked state. Both write the same state (the ``search_step.py`` case's run) to the same
directory, with fsync.

    OMP_NUM_THREADS=2 python benchmarks/checkpoint_cost.py --case perturb --layers 5 --channels 8
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search_step

from nasfw import checkpoint as ck


def write_v2(state: dict, path: Path) -> None:
    """The format-2 write: digest and finiteness over the unpacked state, then torch.save of it."""
    payload = {"format": ck.FORMAT, "version": 2, **state}
    d = ck._Digest(("supernet", "optimizer"))
    d.feed(payload)
    assert not d.bad
    payload[ck.DIGEST_KEY] = d.hexdigest()
    with open(path, "wb") as fh:
        torch.save(payload, fh)
        fh.flush()
        os.fsync(fh.fileno())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", default="perturb", choices=search_step.CASES)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    ns = argparse.Namespace(channels=a.channels, layers=a.layers, batch_size=16, size=8, nb201_cells=5,
                            zarts_inner_steps=1, zarts_samples=2, channels_last=False, bf16=False, compile=False,
                            tf32=True, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        run = search_step.make_run(a.case, ns, Path(tmp) / "run", baseline=False)
        assert run.supernet is not None and run.optimizer is not None
        state = {"supernet": run.supernet.state_dict(), "optimizer": run.optimizer.state_dict(),
                 "rng": ck.rng_state(), "epoch": 1}
        n = sum(1 for v in state["supernet"].values() if isinstance(v, torch.Tensor))
        fns = {"format 2": lambda: write_v2(state, Path(tmp) / "v2.pt"),
               "format 3": lambda: ck.save_atomic(state, Path(tmp) / "v3.pt", finite=("supernet", "optimizer"))}
        best = dict.fromkeys(fns, float("inf"))
        for fn in fns.values():
            fn()
        for _ in range(a.repeats):
            for name, fn in fns.items():
                t = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - t)
        sizes = {"format 2": (Path(tmp) / "v2.pt").stat().st_size, "format 3": (Path(tmp) / "v3.pt").stat().st_size}
    print(f"# {a.case} run, {a.layers} cells, C={a.channels}: {n} supernet tensors; {torch.get_num_threads()} threads")
    for name in fns:
        print(f"{name}: {best[name] * 1000:.1f} ms, {sizes[name] / 2**20:.2f} MB")
    print(f"ratio format 2 / format 3: {best['format 2'] / best['format 3']:.2f}x")


if __name__ == "__main__":
    main()
