"""Do ``channels_last`` and CPU bf16 change what a search finds? Short DARTS searches, several seeds, each flag.

Issue 23 asks whether the two speed flags may become the CPU default: only if a short search with them lands on
the same genotypes and α trajectories as plain fp32 *within seed noise*. For every seed this runs the same
search (same data, init and batches) with each flag and compares it with the fp32 run of that seed:

* ``alpha_rel``: ‖α_flag − α_fp32‖ / ‖α_fp32 − α_init‖ over the α logged after each epoch (largest epoch); the
  rounding floor is the same quantity for an fp32 run with the other thread count (``fp32-threads``), the seed
  noise the same quantity between fp32 runs of different seeds;
* ``same_ops``: the fraction of the genotype's (cell, node, input, op) choices equal to fp32's;
* ``s``: wall time of the whole run (not alternated: read the speed ratios from ``search_step.py``).

    OMP_NUM_THREADS=2 python benchmarks/fast_flags_study.py --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from nasfw.config import build_config
from nasfw.engine import build, prepare, run_search

MODES = {"fp32": {}, "channels_last": {"channels_last": True}, "bf16": {"bf16": True}}


def _config(seed: int, mode: str, a: argparse.Namespace) -> Any:
    perf = {"channels_last": False, "bf16": False, **MODES.get(mode, {})}
    return build_config({
        "space": {"name": "darts", "params": {"layers": a.layers, "init_channels": a.channels}},
        "optimizer": {"name": "darts"}, "selector": {"name": "magnitude"},
        "dataset": {"name": "digits"},
        "search": {"epochs": a.epochs, "batch_size": a.batch_size, "steps_per_epoch": a.steps, "eval_batches": 1},
        "performance": perf, "log": {"progress": "none", "tensorboard": False, "plots": False},
        "seed": seed, "device": "cpu",
    })


def flat(alphas: dict[str, Any]) -> torch.Tensor:
    return torch.cat([torch.as_tensor(v, dtype=torch.float64).flatten() for _, v in sorted(alphas.items())])


def initial_alphas(seed: int, a: argparse.Namespace, out: Path) -> torch.Tensor:
    """α as the seeded run starts (the same build, no search)."""
    run = prepare(_config(seed, "fp32", a), out_dir=out, quiet=True)
    build(run)
    assert run.supernet is not None
    return flat({k: v.detach() for k, v in run.supernet.arch_parameters().items()})


def search(seed: int, mode: str, a: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One short DARTS 1st-order search on the embedded digits; its α per epoch, genotype and time."""
    threads = torch.get_num_threads()
    if mode == "fp32-threads":  # same arithmetic, other kernel blocking: the fp32 rounding floor
        torch.set_num_threads(1 if threads > 1 else 2)
    t = time.perf_counter()
    _, summary = run_search(_config(seed, mode, a), out_dir=out, quiet=True)
    seconds = time.perf_counter() - t
    torch.set_num_threads(threads)
    lines = [json.loads(x) for x in (out / "alphas.jsonl").read_text().splitlines()]
    alphas = [flat(x["alphas"]) for x in lines]
    return {"alphas": alphas, "genotype": summary["genotype"], "s": seconds}


def choices(genotype: dict[str, Any]) -> set[str]:
    """The genotype as a set of (cell, node, input, op) strings."""
    cells = genotype.get("cells", genotype)
    out = set()
    for cell, edges in sorted(cells.items()):
        if isinstance(edges, list):
            out.update(f"{cell}:{json.dumps(e, sort_keys=True)}" for e in edges)
    return out


def alpha_rel(a: list[torch.Tensor], b: list[torch.Tensor], init: torch.Tensor) -> float:
    return max(float((x - y).norm() / ((y - init).norm() + 1e-12)) for x, y in zip(a, b))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--steps", type=int, default=10, help="steps per epoch")
    p.add_argument("--batch-size", type=int, default=32)
    a = p.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    print(f"# DARTS {a.layers} cells C={a.channels}, digits 8x8, {a.epochs}x{a.steps} steps, batch {a.batch_size}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}", flush=True)
    res: dict[tuple[int, str], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for mode in ("fp32", "fp32-threads", "channels_last", "bf16"):
                res[seed, mode] = search(seed, mode, a, Path(tmp) / f"{mode}-{seed}")
        init = {seed: initial_alphas(seed, a, Path(tmp) / f"init-{seed}") for seed in seeds}
    for seed in seeds:
        ref = res[seed, "fp32"]
        for mode in ("fp32-threads", "channels_last", "bf16"):
            r = res[seed, mode]
            same = len(choices(r["genotype"]) & choices(ref["genotype"])) / max(1, len(choices(ref["genotype"])))
            print(json.dumps({"seed": seed, "mode": mode, "alpha_rel": round(alpha_rel(r["alphas"], ref["alphas"],
                                                                                       init[seed]), 4),
                              "same_ops": round(same, 3), "s": round(r["s"], 1), "fp32_s": round(ref["s"], 1)}))
    for s1, s2 in itertools.combinations(seeds, 2):
        r1, r2 = res[s1, "fp32"], res[s2, "fp32"]
        same = len(choices(r1["genotype"]) & choices(r2["genotype"])) / max(1, len(choices(r2["genotype"])))
        print(json.dumps({"seeds": [s1, s2], "mode": "fp32 seed vs seed",
                          "alpha_rel": round(alpha_rel(r1["alphas"], r2["alphas"], init[s2]), 4),
                          "same_ops": round(same, 3)}))


if __name__ == "__main__":
    main()
