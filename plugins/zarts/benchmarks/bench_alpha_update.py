"""Seconds per ZARTS α update: the N scratch trainings batched with ``vmap`` against one after the other,
and against a DARTS second-order step on the same supernet, measured alternately in one process.

    OMP_NUM_THREADS=1 python plugins/zarts/benchmarks/bench_alpha_update.py                  # default supernet
    OMP_NUM_THREADS=1 python plugins/zarts/benchmarks/bench_alpha_update.py --optimizers zarts-gld --repeats 3

The default is what ``nasfw run --space darts`` builds: the ``darts`` space with its defaults (5 cells,
C = 8) on the ``digits`` data (8×8), batch 64, the ZARTS defaults (M = 10 inner steps at batch 48, MGS N = 4,
GLD 15 radii from the space). Every timing is one α update on the same weights, α and batches (α is restored
after each); the rows are ``sequential`` (``batched=false``: the samples one after the other, today's path),
``batched`` (the default) and ``darts-2nd`` (one DARTS second-order step: its α update and weight step).
Both oracles are checked to give the same losses first (fp32 rounding). Prints best-of-repeats seconds, the
ratios sequential / batched and batched / darts-2nd, and the amortised cost per weight step (a ZARTS weight
step plus 1/``--update-every`` of a batched update) over a DARTS 2nd-order step.
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

from nasfw.config import build_config
from nasfw.engine import Run, build, prepare


def make_run(optimizer: str, params: dict[str, Any], a: argparse.Namespace, out: Path) -> Run:
    config = build_config({
        "space": {"name": a.space, "params": {"layers": a.layers, "init_channels": a.channels}},
        "optimizer": {"name": optimizer, "params": params},
        "dataset": a.dataset if a.dataset != "synthetic" else {
            "name": "synthetic", "params": {"size": a.size, "n_train": 8 * a.batch, "n_test": 0}},
        "search": {"epochs": 2, "batch_size": a.batch},
        "log": {"progress": "none", "tensorboard": False, "plots": False}, "seed": 0, "device": a.device})
    run = prepare(config, out_dir=out, quiet=True)
    build(run)
    run.supernet.train()
    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--optimizers", default="zarts-mgs,zarts-gld", help="comma-separated ZARTS optimizers")
    p.add_argument("--space", default="darts")
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--dataset", default="digits", help="digits (default run) or synthetic (then --size)")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--inner-steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--update-every", type=int, default=10,
                   help="α-update period for the amortised cost (the paper's M = 10; 'update_every' of the run)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {a.device}, {torch.get_num_threads()} thread(s), load {load:.1f}; space {a.space} {a.layers} cells "
          f"C={a.channels}, {a.dataset}, batch {a.batch}, M={a.inner_steps}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        second = make_run("darts-2nd", {}, a, Path(tmp) / "d2")
        b2 = [second.to_device(second.data.train.next()), second.to_device(second.data.val.next())]

        def darts_2nd() -> None:
            second.supernet.train()
            second.optimizer.step(b2[0], b2[1])

        for name in [n.strip() for n in a.optimizers.split(",") if n.strip()]:
            run = make_run(name, {"warmup_epochs": 0, "inner_steps": a.inner_steps}, a, Path(tmp) / name)
            opt = run.optimizer
            val = run.to_device(run.data.val.next())
            alpha0 = {k: v.detach().clone() for k, v in run.supernet.arch_parameters().items()}
            gen_state = opt.generator.get_state()
            inner = opt.inner_batches()
            probe = [opt.current_alpha() for _ in range(2)]
            seq = [opt.perturbed_loss(x, inner, val) for x in probe]
            bat = opt.batched_losses(probe, inner, val)
            err = max(abs(s - b) / max(abs(s), 1e-12) for s, b in zip(seq, bat))

            def update(batched: bool, opt: Any = opt, run: Any = run, val: Any = val, alpha0: Any = alpha0,
                       gen_state: Any = gen_state) -> None:
                opt.config.batched = batched
                opt.generator.set_state(gen_state)
                with torch.no_grad():
                    for k, v in run.supernet.arch_parameters().items():
                        v.copy_(alpha0[k])
                opt.alpha_update(val)

            train = run.to_device(run.data.train.next())
            weights = {k: v.detach().clone() for k, v in run.supernet.state_dict().items()}

            def weight_step(opt: Any = opt, run: Any = run, train: Any = train, weights: Any = weights) -> None:
                opt.weight_step(train)
                with torch.no_grad():  # the oracle timings all start from the same weights (and BN statistics)
                    for k, v in run.supernet.state_dict().items():
                        v.copy_(weights[k])

            fns = {"sequential": lambda: update(False), "batched": lambda: update(True), "darts-2nd": darts_2nd,
                   "weight-step": weight_step}
            best = dict.fromkeys(fns, float("inf"))
            fns["darts-2nd"]()  # warm-up of the 2nd-order path (the ZARTS paths warm up in the loss check)
            fns["weight-step"]()
            for _ in range(a.repeats):
                for key in fns:
                    t = time.perf_counter()
                    fns[key]()
                    best[key] = min(best[key], time.perf_counter() - t)
            row = {"optimizer": name, "oracle_calls": opt.oracle_calls_per_update(),
                   "sequential_s": round(best["sequential"], 2), "batched_s": round(best["batched"], 2),
                   "darts_2nd_step_s": round(best["darts-2nd"], 2),
                   "speedup": round(best["sequential"] / best["batched"], 2),
                   "batched_over_2nd": round(best["batched"] / best["darts-2nd"], 2),
                   "weight_step_s": round(best["weight-step"], 3), "update_every": a.update_every,
                   # per weight step: one ZARTS weight step + 1/period of an update, against one 2nd-order step
                   "amortised_over_2nd": round((best["weight-step"] + best["batched"] / a.update_every)
                                               / best["darts-2nd"], 2),
                   "loss_rel_diff": f"{err:.1e}",
                   "load_after": round(os.getloadavg()[0], 1) if hasattr(os, "getloadavg") else None}
            print(json.dumps(row) if a.json else "  ".join(f"{k}={v}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
