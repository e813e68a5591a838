"""LISSNAS against the operational-pruning baseline on the real NAS-Bench-201 table.

Four shrinks of the NB201 cell space (15,625 cells), each through ``nasfw shrink`` (click's runner, the
same code path as the command line), then the report of the shrunk space against the NB201 200-epoch
CIFAR-10 test accuracy (``nats_bench.csv``):

* ``lissnas`` and ``op-prune`` with the ``benchmark`` evaluator: f(a) is the table itself (an upper bound:
  the shrinker sees the truth);
* ``lissnas`` and ``op-prune`` with the ``proxy`` evaluator and SynFlow: f(a) is the zero-cost score of the
  stand-alone NB201 network (C=16, N=5, 3x32x32 input, 10 classes; data-free, so no images are needed).

Every shrinker runs with its defaults except where ``--set`` below says otherwise. The table (mean and best
CIFAR-10 accuracy inside the shrunk space, size, pockets, diversity, Kendall-tau of the shrinker's own scores
against the truth, evaluations, seconds) is printed and written to ``results/nb201_validation.{csv,md}``.

    OMP_NUM_THREADS=1 python plugins/lissnas/scripts/nb201_validation.py [--seeds 0 1 2] [--no-proxy]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner

from nasfw.cli import cli
from nasfw.registry import get_registry
from nasfw.shrink_cmd import diversity

HERE = Path(__file__).resolve().parent
TABLE = HERE.parents[2].parent / "shared" / "data" / "nb201_nats_tss_acc" / "nats_bench.csv"
SYNFLOW = {"proxy": "synflow", "input_shape": [3, 32, 32, 10], "network": {"C": 16, "N": 5}}
#: (label, shrinker, extra --set overrides)
RUNS = [
    ("lissnas / benchmark", "lissnas", []),
    ("op-prune / benchmark", "op-prune", []),
    ("lissnas / synflow", "lissnas", ["shrinker.evaluator=proxy", f"shrinker.evaluator_params={json.dumps(SYNFLOW)}"]),
    # score_members=false: scoring all 729 members with SynFlow (~3 min) only feeds the Kendall-tau column
    ("op-prune / synflow", "op-prune", ["shrinker.evaluator=proxy", f"shrinker.evaluator_params={json.dumps(SYNFLOW)}",
                                        "shrinker.score_members=false"]),
]
COLUMNS = ["run", "seed", "size", "reduction", "pockets", "largest_pocket", "mean_acc", "best_acc",
           "top1pct_recall", "mean_distance", "normalised_distance", "op_coverage", "kendall_tau",
           "evaluations", "seconds", "detail"]


def shrink(shrinker: str, seed: int, sets: list[str], out: Path) -> dict:
    args = ["shrink", "--space", "nb201", "--shrinker", shrinker, "--seed", str(seed), "--out", str(out), "--quiet"]
    for s in sets:
        args += ["--set", s]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    if res.exit_code != 0:
        raise SystemExit(f"nasfw {' '.join(args)} failed:\n{res.output}")
    return json.loads((out / "shrunk_space.json").read_text())


def row(label: str, seed: int, data: dict) -> dict:
    rep, info = data["report"], data["info"]
    b = rep["benchmark"]
    detail = (f"stop={info['stop_reason']}, returned iteration {info['returned_iteration']}"
              if info["method"] == "lissnas" else f"pruned {', '.join(info['pruned_ops'])}")
    return {"run": label, "seed": seed, "size": rep["size_after"], "reduction": rep["reduction"],
            "pockets": rep["pockets"], "largest_pocket": rep["largest_pocket"], "mean_acc": b["mean"],
            "best_acc": round(b["best"], 3), "top1pct_recall": b["top1pct_recall"], **rep["diversity"],
            "kendall_tau": rep.get("kendall_tau", ""), "evaluations": info["evaluations"],
            "seconds": rep["seconds"], "detail": detail}, b


def whole_space_row(full: dict) -> dict:
    space = get_registry().create("search_space", "nb201")
    div = diversity(space, list(space.enumerate()))  # > 3000 members: 20,000 random pairs
    return {"run": "whole space (reference)", "seed": "", "size": 15625, "reduction": 1.0, "pockets": 1,
            "largest_pocket": 15625, "mean_acc": full["full_mean"], "best_acc": round(full["full_best"], 3),
            "top1pct_recall": 1.0, **div, "kendall_tau": "", "evaluations": "", "seconds": "", "detail": ""}


def markdown(rows: list[dict]) -> str:
    head = ["run", "seed", "size", "pockets (largest)", "mean C10 acc", "best C10 acc", "top-1% recall",
            "mean dist. (norm.)", "op coverage", "Kendall-τ", "evaluations", "s", "detail"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [r["run"], r["seed"], r["size"], f"{r['pockets']} ({r['largest_pocket']})", f"{r['mean_acc']:.2f}",
                 f"{r['best_acc']:.2f}", r["top1pct_recall"],
                 f"{r['mean_distance']:.2f} ({r['normalised_distance']:.2f})", r["op_coverage"],
                 r["kendall_tau"], r["evaluations"], r["seconds"], r["detail"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--no-proxy", action="store_true", help="only the benchmark-evaluator runs")
    ap.add_argument("--out", type=Path, default=HERE.parent / "results")
    args = ap.parse_args()
    if not TABLE.exists():
        sys.exit(f"the NB201 table is not at {TABLE}; this validation needs it")
    runs = [r for r in RUNS if not (args.no_proxy and "synflow" in r[0])]
    rows, full = [], None
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for label, shrinker, sets in runs:
            for seed in args.seeds:
                data = shrink(shrinker, seed, sets, Path(tmp) / f"{shrinker}-{len(rows)}")
                r, full = row(label, seed, data)
                rows.append(r)
                print(f"{label:22s} seed {seed}: size {r['size']}, pockets {r['pockets']}, mean {r['mean_acc']:.2f}, "
                      f"best {r['best_acc']:.2f} ({r['seconds']} s)", flush=True)
    rows.insert(0, whole_space_row(full))
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "nb201_validation.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    md = markdown(rows)
    (args.out / "nb201_validation.md").write_text(md)
    print(md)
    print(f"total {time.time() - t0:.0f} s; wrote {args.out / 'nb201_validation.csv'}")


if __name__ == "__main__":
    main()
