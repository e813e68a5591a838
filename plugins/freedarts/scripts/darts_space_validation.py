"""FreeDARTS on the DARTS space: the cells each saliency finds over seeds, and whether they mean anything.

For every selector variant and seed this builds the DARTS search supernet (8 cells, C = 16, α ~ 1e-3·N(0, 1),
weights at PyTorch's default init, seeded), scores it with the registered selector in float64 and in
float32 (exactly the two passes of the selector's signal guard), discretizes both and records

* the cell (the working precision's choice), its parameter count in the darts-cifar evaluation network
  (C = 36, 20 cells, CIFAR-10 shape, auxiliary head excluded) and its share of parameter-free edges
  (`max_pool`, `avg_pool`, `skip_connect`),
* the guard's figures (spread / noise of the scores, verdict) and the float32/float64 agreement (share of
  the 16 genotype edges both precisions pick),

then summarises per variant: agreement across seeds (mean share of identical edges over seed pairs) and
against the cells the FreeDARTS repository published for the same proxy (5 seeds each).

    OMP_NUM_THREADS=1 python plugins/freedarts/scripts/darts_space_validation.py                 # digits 1×8×8
    OMP_NUM_THREADS=1 python plugins/freedarts/scripts/darts_space_validation.py --input cifar   # CIFAR 3×32×32

Variants: ``synflow`` (defaults: BN in eval mode, float64), ``synflow-notebook`` (BN in train mode, as the
FreeDARTS notebooks: no signal), ``synflow-input32`` (the same supernet scored on a 32×32 all-ones input),
``snip``, ``grasp`` (defaults: batch of 64, float32). The CSV of runs is
written as it goes and the script resumes from it.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from nasfw.data import DataShape
from nasfw.genotype import Genotype
from nasfw.registry import get_registry
from nasfw_freedarts.base import SaliencySelector, dtype_name
from nasfw_freedarts.guard import check_signal
from nasfw_freedarts.weighting import RawAlpha
from nasfw_space_darts.network import count_parameters
from nasfw_space_darts.ops import PARAMETER_FREE

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "results"
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "synflow": ("synflow", {}),
    "synflow-notebook": ("synflow", {"bn": "batch"}),
    "synflow-input32": ("synflow", {"input_size": 32}),
    "snip": ("snip", {}),
    "grasp": ("grasp", {}),
}
CIFAR_NET = DataShape(3, 32, 32, 10)
FIELDS = ["variant", "input", "seed", "dtype", "verdict", "ratio", "precision_agreement", "grad_max", "params",
          "param_free", "seconds", "genotype"]


class ScoringRun:
    """What a saliency selector reads from a run: the data shape, one labelled batch, the seed, the device."""

    def __init__(self, shape: DataShape, batch: tuple[torch.Tensor, torch.Tensor], seed: int):
        self.data = SimpleNamespace(shape=shape, stream=lambda *_: SimpleNamespace(next=lambda: batch))
        self.config = SimpleNamespace(seed=seed)
        self.device = torch.device("cpu")
        self.extra_summary: dict[str, Any] = {}

    def to_device(self, batch: Any) -> Any:
        return batch


def digits_batch(n: int, seed: int) -> tuple[DataShape, tuple[torch.Tensor, torch.Tensor]]:
    """``n`` seeded images of the digits dataset's architecture-validation split, as a run sees them."""
    splits = get_registry().create("dataset", "digits").splits(seed)
    idx = torch.randperm(len(splits.val), generator=torch.Generator().manual_seed(seed))[:n]
    xs, ys = zip(*(splits.val[int(i)] for i in idx))
    return splits.shape, (torch.stack(xs), torch.tensor([int(y) for y in ys]))


def cifar_input(n: int, seed: int) -> tuple[DataShape, tuple[torch.Tensor, torch.Tensor]]:
    sys.path.insert(0, str(HERE))
    from nb201_proxy_study import cifar_batch

    return CIFAR_NET, cifar_batch(n, seed)


def param_free_share(g: Genotype) -> float:
    edges = [e for cell in g.cells.values() for e in cell]
    return sum(e.op in PARAMETER_FREE for e in edges) / len(edges)


def edge_overlap(a: Genotype, b: Genotype) -> float:
    """Share of genotype edges (node, input, op) two cells have in common."""
    total = same = 0
    for cell, edges in a.cells.items():
        other = {(e.node, e.input, e.op) for e in b.cells[cell]}
        total += len(edges)
        same += sum((e.node, e.input, e.op) in other for e in edges)
    return same / total


def network_params(space: Any, g: Genotype) -> int:
    return count_parameters(space.build_network(g, CIFAR_NET, C=36, layers=20, auxiliary=True))


def score_one(variant: str, seed: int, shape: DataShape, batch: Any, layers: int, channels: int,
              batch_size: int) -> dict[str, Any]:
    reg = get_registry()
    name, params = VARIANTS[variant]
    params = {**params, **({"batch_size": batch_size} if name != "synflow" else {})}
    space = reg.create("search_space", {"name": "darts", "params": {"layers": layers, "init_channels": channels}})
    sel: SaliencySelector = reg.create("selector", {"name": name, "params": params})
    torch.manual_seed(seed)
    net = space.build_supernet(shape, RawAlpha())
    run = ScoringRun(shape, batch, seed)
    table = space.op_table()
    t0 = time.perf_counter()
    dtype = sel.score_dtype(net)
    found = {}
    for dt in (dtype, sel.noise_dtype(dtype)):
        s = sel.scores(net, run, dt)
        s = {k: torch.where(table[k] & torch.isfinite(v), v, -math.inf) for k, v in s.items()}
        found[dt] = (s, space.discretize(s))
    seconds = time.perf_counter() - t0
    (s1, g1), (s2, g2) = found.values()
    report = check_signal(name, s1, s2, table, (dtype_name(dtype), dtype_name(sel.noise_dtype(dtype))),
                          sel.config.min_signal_ratio, (g1, g2))
    fig = report.figures()
    # SynFlow's score is |α|·|∂R/∂α| (raw weighting): the largest |∂R/∂α| of a live op, the gradient's own size
    grad_max = max(float((s1[k][live] / net.alphas[k].detach().double().abs()[live]).max())
                   for k in s1 for live in [torch.isfinite(s1[k]) & (s1[k] > 0)] if bool(live.any())) \
        if name == "synflow" and not params.get("alpha_value") else None
    return {"variant": variant, "seed": seed, "dtype": dtype_name(dtype), "verdict": fig["verdict"],
            "ratio": fig["ratio"], "precision_agreement": fig["precision_agreement"], "grad_max": grad_max,
            "params": network_params(space, g1), "param_free": param_free_share(g1),
            "seconds": round(seconds, 2), "genotype": space.format(g1)}


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def published(measure: str) -> list[Genotype]:
    reg = get_registry()
    return [reg.get("genotype", f"freedarts-{measure}-seed{i}").genotype for i in range(5)]


def mean_pairwise(gs: Sequence[Genotype]) -> float:
    pairs = list(itertools.combinations(gs, 2))
    return statistics.fmean(edge_overlap(a, b) for a, b in pairs) if pairs else float("nan")


def summarise(rows: list[dict[str, Any]], inputs: str) -> str:
    reg = get_registry()
    space = reg.create("search_space", "darts")
    lines = [f"Input: {inputs}. Cells of the working precision; params = darts-cifar network (C = 36, 20 cells, "
             "auxiliary head excluded), in millions.", "",
             "| variant | seeds | guard verdict (min ratio) | fp32/fp64 edges agreeing | max \\|∂R/∂α\\| "
             "| params (M), mean [min, max] | parameter-free edges | seed-pair edge overlap "
             "| overlap with published cells |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for variant in VARIANTS:
        rs = [r for r in rows if r["variant"] == variant]
        if not rs:
            continue
        gs = [space.parse(r["genotype"]) for r in rs]
        params = [int(r["params"]) / 1e6 for r in rs]
        ratios = [float(r["ratio"]) for r in rs if r["ratio"] not in ("", "None")]
        verdicts = sorted({r["verdict"] for r in rs})
        measure = VARIANTS[variant][0]
        pub = published(measure)
        ours_vs_pub = statistics.fmean(edge_overlap(a, b) for a in gs for b in pub)
        agree = statistics.fmean(float(r["precision_agreement"]) for r in rs)
        grads = [float(r["grad_max"]) for r in rs if r.get("grad_max") not in (None, "", "None")]
        grad = f"{min(grads):.2g} – {max(grads):.2g}" if grads else "–"
        lines.append(
            f"| {variant} | {len(rs)} | {'/'.join(verdicts)} ({min(ratios):.2g}) | {agree:.0%} | {grad} "
            f"| {statistics.fmean(params):.2f} [{min(params):.2f}, {max(params):.2f}] "
            f"| {statistics.fmean(float(r['param_free']) for r in rs):.0%} | {mean_pairwise(gs):.0%} "
            f"| {ours_vs_pub:.0%} |")
    by = {(r["variant"], r["seed"]): space.parse(r["genotype"]) for r in rows}
    same = [edge_overlap(by[("synflow", s)], by[("synflow-input32", s)]) for v, s in by if v == "synflow"
            and ("synflow-input32", s) in by]
    if same:
        lines += ["", f"SynFlow on the same supernets with the run's input size and with a 32×32 input: "
                      f"{statistics.fmean(same):.0%} of the genotype edges agree (mean over {len(same)} seeds)."]
    lines += ["", "Published FreeDARTS cells (DARTS_CNN/genotypes.py @93375fa7, 8-cell searches, seeds 0–4):", "",
              "| proxy | params (M), mean [min, max] | parameter-free edges | seed-pair edge overlap |",
              "| --- | --- | --- | --- |"]
    for measure in ("synflow", "snip", "grasp"):
        pub = published(measure)
        params = [network_params(space, g) / 1e6 for g in pub]
        lines.append(f"| {measure} | {statistics.fmean(params):.2f} [{min(params):.2f}, {max(params):.2f}] "
                     f"| {statistics.fmean(param_free_share(g) for g in pub):.0%} | {mean_pairwise(pub):.0%} |")
    lines += ["", "Cells per seed:", ""]
    for r in rows:
        lines.append(f"* {r['variant']} seed {r['seed']} ({r['dtype']}, {r['verdict']}, {r['seconds']} s): "
                     f"`{r['genotype']}`")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {', '.join(VARIANTS)}")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--input", choices=["digits", "cifar"], default="digits",
                   help="digits: the run's default data (1×8×8); cifar: CIFAR-10 3×32×32 from ../shared/data")
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=64, help="labelled images for snip/grasp")
    p.add_argument("--out", type=Path, default=None, help="CSV of runs (default results/darts_space_<input>.csv)")
    a = p.parse_args(argv)
    unknown = [v for v in a.variants.split(",") if v not in VARIANTS]
    if unknown:
        print(f"error: unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    out = a.out or RESULTS / f"darts_space_{a.input}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [r for r in read_rows(out) if r["input"] == a.input]
    done = {(r["variant"], int(r["seed"])) for r in rows}
    with out.open("a", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        if not rows:
            writer.writeheader()
        for variant, seed in itertools.product(a.variants.split(","), range(a.seeds)):
            if (variant, seed) in done:
                continue
            shape, batch = (cifar_input if a.input == "cifar" else digits_batch)(a.batch_size, seed)
            row = {"input": a.input, **score_one(variant, seed, shape, batch, a.layers, a.channels, a.batch_size)}
            writer.writerow(row)
            f.flush()
            rows.append(row)
            print(f"{variant} seed {seed}: {row['verdict']} ratio {row['ratio']} fp32/fp64 agree "
                  f"{row['precision_agreement']} params {row['params']} ({row['seconds']} s)", flush=True)
    rows = [r for r in read_rows(out) if r["input"] == a.input]
    shape_text = "digits 1×8×8 (the run's default data)" if a.input == "digits" else "CIFAR-10 3×32×32"
    out.with_suffix(".md").write_text(summarise(rows, shape_text))
    print(out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
