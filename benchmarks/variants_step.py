"""GDAS and PC-DARTS exist to be cheaper than DARTS: their search step against DARTS first order, in one run.

For each space, one process builds three runs with the same seed, data and supernet size: ``darts`` (first
order) on the plain supernet, ``gdas`` on the same supernet (one sampled op per edge), and ``pc-darts`` on its
partial-channel variant (``partial_channels`` K, edge normalisation). Their full search steps (α step + weight
step) are timed alternately, best of ``--repeats``, and the ratio is DARTS / method. Memory is what autograd
saves for backward in one training forward (the weight step's, with the method's own mixing weights) on CPU,
and the peak allocated memory of one step on CUDA.

    OMP_NUM_THREADS=1 python benchmarks/variants_step.py                     # DARTS space and NB201
    OMP_NUM_THREADS=2 python benchmarks/variants_step.py --spaces nb201 --batch-size 64
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from nasfw.config import build_config
from nasfw.engine import Run, build, prepare

METHODS = {"darts": "darts", "gdas": "gdas", "pc-darts": "pc-darts"}


def make_run(space: str, method: str, a: argparse.Namespace, out: Path) -> Run:
    params: dict[str, Any] = {"init_channels": a.channels}
    params.update({"cells_per_stage": a.nb201_cells} if space == "nb201" else {"layers": a.layers})
    if method == "pc-darts":
        params.update({"partial_channels": a.k, "edge_normalization": True})
    # α from the first step for every method (PC-DARTS' warm-up would time a weight step alone)
    opt_params = {"warmup_epochs": 0} if method != "darts" else {}
    config = build_config({
        "space": {"name": space, "params": params}, "optimizer": {"name": METHODS[method], "params": opt_params},
        "selector": "magnitude",
        "dataset": {"name": "synthetic", "params": {"size": a.size, "n_train": 4 * a.batch_size, "n_test": 0}},
        "search": {"epochs": 1, "batch_size": a.batch_size, "steps_per_epoch": 2, "eval_batches": 1},
        "log": {"progress": "none", "tensorboard": False, "plots": False}, "seed": 0, "device": a.device,
    })
    run = prepare(config, out_dir=out, quiet=True)
    build(run)
    assert run.optimizer is not None
    run.optimizer.epoch_start(0)
    return run


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def saved_mb(run: Run, batch: Any) -> float:
    """MB autograd keeps for backward in one weight-step forward (distinct storages), with the method's weights."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    assert run.optimizer is not None
    x, y = run.to_device(batch)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        F.cross_entropy(run.optimizer.logits("weight", (x, y)).float(), y)  # type: ignore[attr-defined]
    return sum(seen.values()) / 2**20


def bench_space(space: str, a: argparse.Namespace) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        runs = {m: make_run(space, m, a, Path(tmp) / m) for m in METHODS}
        data = runs["darts"].data
        assert data is not None
        batch, val = data.train.next(), data.val.next()

        def step(run: Run) -> None:
            assert run.optimizer is not None and run.supernet is not None
            run.supernet.train()
            run.optimizer.step(run.to_device(batch), run.to_device(val))
            sync(run.device)

        for run in runs.values():  # warm-up: allocator, first-call overheads
            step(run)
        best = {m: float("inf") for m in runs}
        for _ in range(a.repeats):  # alternated: load drift hits every method alike
            for m, run in runs.items():
                t = time.perf_counter()
                step(run)
                best[m] = min(best[m], (time.perf_counter() - t) * 1000)
        rows = []
        for m, run in runs.items():
            if run.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(run.device)
                step(run)
                mem = torch.cuda.max_memory_allocated(run.device) / 2**20
            else:
                mem = saved_mb(run, batch)
            rows.append({"space": space, "method": m, "ms": round(best[m], 1), "mb": round(mem, 1)})
        base = next(r for r in rows if r["method"] == "darts")
        for r in rows:
            r["speedup_vs_darts"] = round(base["ms"] / r["ms"], 2)
            r["memory_vs_darts"] = round(r["mb"] / base["mb"], 2)
        return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spaces", default="darts,nb201")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--size", type=int, default=32, help="image side")
    p.add_argument("--channels", type=int, default=16, help="C of the first cell (both spaces)")
    p.add_argument("--layers", type=int, default=8, help="DARTS-space cells")
    p.add_argument("--nb201-cells", type=int, default=5, help="NB201 cells per stage")
    p.add_argument("--k", type=int, default=4, help="PC-DARTS' partial channels")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    a = p.parse_args(argv)
    rows = [r for s in a.spaces.split(",") for r in bench_space(s.strip(), a)]
    print(f"threads={torch.get_num_threads()} OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} "
          f"batch={a.batch_size} size={a.size} C={a.channels} repeats={a.repeats} device={a.device}")
    print("| space | method | step ms (best) | speed vs DARTS | saved-for-backward MB | memory vs DARTS |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['space']} | {r['method']} | {r['ms']} | {r['speedup_vs_darts']}x | {r['mb']} | "
              f"{r['memory_vs_darts']}x |")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
