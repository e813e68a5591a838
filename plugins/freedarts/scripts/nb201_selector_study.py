"""FreeDARTS selectors on NAS-Bench-201: the cell each variant picks per seed and its true accuracy.

The GraSP notebook (NAS_Bench201/exps/algos/FreeDARTS_GraSP_oneshot.ipynb @93375fa7) multiplies the
Hessian by row 0 of g₀ broadcast over all six edges (``zip(grads, vector)`` pairs its one tensor with the
first row); ``nb201-row0`` is that, ``nb201`` the corrected product, ``hg`` GraSP's definition (the default).
SynFlow is scored with BN in eval mode (the default) and in the notebooks' train mode (``synflow-notebook``),
each also with every α set to 1 (``-alpha1``: the setting of the notebook's saved SynFlow run, here in float64).

For every variant and seed: the NB201 search supernet (C = 16, N = 5, α ~ 1e-3·N(0, 1), seeded default
init), one batch of 64 CIFAR-10 training images (seeded, from ``../shared/data/cifar10_jpeg``), the
selector's scores in its working precision, the space's discretization, and the cell's NB201 200-epoch
test accuracies from ``../shared/data/nb201_nats_tss_acc``.

    OMP_NUM_THREADS=1 python plugins/freedarts/scripts/nb201_selector_study.py --seeds 8
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from darts_space_validation import CIFAR_NET, ScoringRun, read_rows  # noqa: E402
from nb201_proxy_study import DATA, cifar_batch  # noqa: E402

from nasfw.registry import get_registry  # noqa: E402
from nasfw_freedarts.weighting import RawAlpha  # noqa: E402

VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "grasp": ("grasp", {"variant": "hg"}),
    "grasp-nb201": ("grasp", {"variant": "nb201"}),
    "grasp-nb201-row0": ("grasp", {"variant": "nb201-row0"}),
    "snip": ("snip", {}),
    "synflow": ("synflow", {}),
    "synflow-notebook": ("synflow", {"bn": "batch"}),
    "synflow-alpha1": ("synflow", {"alpha_value": 1.0}),
    "synflow-notebook-alpha1": ("synflow", {"bn": "batch", "alpha_value": 1.0}),
}
DATASETS = {"cifar10": "CIFAR10TestAccuracy200Epochs", "cifar100": "CIFAR100TestAccuracy200Epochs",
            "imagenet16-120": "ImageNetTestAccuracy200Epochs"}
FIELDS = ["variant", "seed", "cell", *DATASETS, "seconds"]


def accuracies() -> dict[str, dict[str, float]]:
    with (DATA / "nb201_nats_tss_acc" / "nats_bench.csv").open() as fh:
        return {r["ArchitectureString"]: {d: float(r[c]) for d, c in DATASETS.items()} for r in csv.DictReader(fh)}


def pick(variant: str, seed: int, batch: Any) -> tuple[str, float]:
    reg = get_registry()
    name, params = VARIANTS[variant]
    space = reg.create("search_space", "nb201")
    sel = reg.create("selector", {"name": name, "params": params})
    torch.manual_seed(seed)
    net = space.build_supernet(CIFAR_NET, RawAlpha())
    table = space.op_table()
    t0 = time.perf_counter()
    s = sel.scores(net, ScoringRun(CIFAR_NET, batch, seed))
    s = {k: torch.where(table[k] & torch.isfinite(v), v, -math.inf) for k, v in s.items()}
    return space.format(space.discretize(s)), time.perf_counter() - t0


def edges_differing(a: str, b: str) -> int:
    return sum(x != y for x, y in zip(a.strip("|").split("|"), b.strip("|").split("|")))


def summarise(rows: list[dict[str, Any]]) -> str:
    lines = ["| variant | seeds | CIFAR-10 | CIFAR-100 | ImageNet16-120 | distinct cells | mean s |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    by: dict[str, dict[int, dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["variant"], {})[int(r["seed"])] = r
    for v in VARIANTS:
        rs = list(by.get(v, {}).values())
        if not rs:
            continue
        cells = []
        for d in DATASETS:
            xs = [float(r[d]) for r in rs]
            cells.append(f"{statistics.fmean(xs):.2f} ± {statistics.stdev(xs) if len(xs) > 1 else 0:.2f}")
        lines.append(f"| {v} | {len(rs)} | {' | '.join(cells)} | {len({r['cell'] for r in rs})} "
                     f"| {statistics.fmean(float(r['seconds']) for r in rs):.1f} |")
    pairs = [("grasp-nb201", "grasp-nb201-row0"), ("grasp", "grasp-nb201"), ("synflow", "synflow-notebook"),
             ("synflow-alpha1", "synflow-notebook-alpha1")]
    lines += ["", "| pair | seeds | same cell | edges differing (of 6), mean | CIFAR-10 accuracy difference, mean |",
              "| --- | --- | --- | --- | --- |"]
    for a, b in pairs:
        seeds = sorted(set(by.get(a, {})) & set(by.get(b, {})))
        if not seeds:
            continue
        ra, rb = [by[a][s] for s in seeds], [by[b][s] for s in seeds]
        same = sum(x["cell"] == y["cell"] for x, y in zip(ra, rb))
        diff = statistics.fmean(edges_differing(x["cell"], y["cell"]) for x, y in zip(ra, rb))
        acc = statistics.fmean(float(x["cifar10"]) - float(y["cifar10"]) for x, y in zip(ra, rb))
        lines.append(f"| {a} vs {b} | {len(seeds)} | {same}/{len(seeds)} | {diff:.1f} | {acc:+.2f} |")
    lines += ["", "Cells per seed:", ""]
    for v in VARIANTS:
        for s, r in sorted(by.get(v, {}).items()):
            lines.append(f"* {v} seed {s}: `{r['cell']}` ({float(r['cifar10']):.2f} %)")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {', '.join(VARIANTS)}")
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--out", type=Path, default=HERE.parent / "results" / "nb201_selectors.csv")
    a = p.parse_args(argv)
    unknown = [v for v in a.variants.split(",") if v not in VARIANTS]
    if unknown:
        print(f"error: unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    table = DATA / "nb201_nats_tss_acc" / "nats_bench.csv"
    if not table.exists():
        print(f"error: the NB201 table {table} is missing (../shared/data)", file=sys.stderr)
        return 2
    acc = accuracies()
    rows = read_rows(a.out)
    done = {(r["variant"], int(r["seed"])) for r in rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with a.out.open("a", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        if not rows:
            writer.writeheader()
        batches: dict[int, Any] = {}
        for seed, variant in itertools.product(range(a.seeds), a.variants.split(",")):
            if (variant, seed) in done:
                continue
            if seed not in batches:
                batches = {seed: cifar_batch(64, seed)}
            cell, seconds = pick(variant, seed, batches[seed])
            row = {"variant": variant, "seed": seed, "cell": cell, **acc[cell], "seconds": round(seconds, 2)}
            writer.writerow(row)
            f.flush()
            print(f"{variant} seed {seed}: {cell} {acc[cell]['cifar10']:.2f} % ({seconds:.1f} s)", flush=True)
    md = a.out.with_suffix(".md")
    md.write_text(summarise(read_rows(a.out)))
    print(md.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
