"""DARTS-PT selection: every variant of a decision in one vmap-ed forward vs one evaluation after another.

Both modes select from the same trained supernet (restored before each pass), without fine-tuning in between,
so the time is the evaluations' alone; the decisions and accuracies of the two must be identical (checked).
Timings alternate (sequential, batched, sequential, ...), best of ``--repeats``; the ratio is sequential /
batched.

    OMP_NUM_THREADS=2 python benchmarks/perturb_batched.py                        # digits 8x8, the CPU default
    OMP_NUM_THREADS=2 python benchmarks/perturb_batched.py --dataset synthetic --size 32
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from nasfw.config import build_config
from nasfw.engine import Run, build, prepare


def make_run(a: argparse.Namespace, out: Path) -> Run:
    dataset: dict[str, Any] = {"name": a.dataset}
    if a.dataset == "synthetic":
        dataset["params"] = {"size": a.size, "n_train": 8 * a.batch_size, "n_test": 0}
    config = build_config({
        "space": {"name": a.space, "params": {"layers": a.layers, "init_channels": a.channels}},
        "optimizer": {"name": "darts"},
        "selector": {"name": "perturb", "params": {"tune_epochs": 0, "eval_batches": a.eval_batches}},
        "dataset": dataset,
        "search": {"epochs": 1, "batch_size": a.batch_size, "steps_per_epoch": a.train_steps, "eval_batches": 1},
        "log": {"progress": "none", "tensorboard": False, "plots": False},
        "seed": 0, "device": a.device,
    })
    run = prepare(config, out_dir=out, quiet=True)
    build(run)
    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="darts")
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--dataset", default="digits")
    p.add_argument("--size", type=int, default=32, help="image size of the synthetic dataset")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--eval-batches", type=int, default=2)
    p.add_argument("--train-steps", type=int, default=4, help="weight steps before selecting")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(a, Path(tmp))
        assert run.supernet is not None and run.optimizer is not None and run.data is not None
        net, sel, opt = run.supernet, run.selector, run.optimizer
        opt.epoch_start(0)
        for _ in range(a.train_steps):  # a supernet whose ops differ, so the scores carry signal
            net.train()
            opt.step(run.to_device(run.data.train.next()), run.to_device(run.data.val.next()))
        state = {k: v.clone() for k, v in net.state_dict().items()}

        def select(batched: bool) -> tuple[float, Any, list]:
            net.load_state_dict(state)
            net.set_override({})
            sel.load_state_dict({})
            sel.config.batched_variants = batched
            if run.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            genotype = sel.select(net, run.space, run)
            if run.device.type == "cuda":
                torch.cuda.synchronize()
            return time.perf_counter() - t0, genotype, [(d["cell"], d.get("chosen"), d.get("kept"), d.get("acc"))
                                                          for d in sel.state["decisions"]]
        best = {False: float("inf"), True: float("inf")}
        seen: dict[bool, Any] = {}
        for _ in range(a.repeats):
            for batched in (False, True):
                t, genotype, decisions = select(batched)
                best[batched] = min(best[batched], t)
                seen[batched] = (str(genotype), decisions)
        same = seen[False] == seen[True]
        evaluations = sel.state["cost"]["evaluations"]
    out = {"space": a.space, "layers": a.layers, "channels": a.channels, "dataset": a.dataset,
           "batch_size": a.batch_size, "eval_batches": a.eval_batches, "evaluations": evaluations,
           "threads": torch.get_num_threads(), "device": a.device, "sequential_s": round(best[False], 2),
           "batched_s": round(best[True], 2), "ratio": round(best[False] / best[True], 2),
           "identical_decisions": same}
    print(json.dumps(out))
    if a.json is not None:
        a.json.write_text(json.dumps(out, indent=1) + "\n")
    if not same:
        raise SystemExit("the batched selection decided differently from the sequential one")


if __name__ == "__main__":
    main()
