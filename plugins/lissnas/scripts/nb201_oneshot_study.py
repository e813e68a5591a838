"""LISSNAS on NAS-Bench-201 with CIFAR-10 images: does one-shot search gain inside the shrunk space?

Two parts, each over several seeds, every number scored by the NB201 table *after* the fact (no shrinker
and no search reads it, except the rows labelled oracle):

``evaluators``  LISSNAS at the study's target size with each candidate estimator f(a) — SynFlow and NASWOT
                (zero-cost proxies), the weight-sharing supernet, and the oracle (the table itself, an upper
                bound) — to choose the default evaluator by measurement: shrink quality against cost.
``oneshot``     the paper's claim: at an equal evaluation budget, shrink the space with LISSNAS, with
                operational pruning (``op-prune``, global, 3 rounds: 2 ops per edge = 64 cells), with the
                best-scored of uniformly random samples (``random-sample``), or not at all; then run the same
                one-shot searches inside each space — random search with weight sharing (RSPS, ranks every
                member) and first-order DARTS with member-constrained selection. Reported: the found cell's
                true accuracy, the supernet's Kendall-τ over the space it searched (RSPS: its one-shot
                accuracies of the ranked cells; DARTS: the Σ log-softmax α score of every cell it could
                select), and the shrunk space's size, pockets, diversity, true mean/best and top-1 % recall.

The equal budget: each seed's LISSNAS shrink reports its evaluations E; op-prune then samples ceil(E/3) cells
per round for 3 rounds and random-sample scores E cells, with the same evaluator. The protocol is the NB201
study's cpu one (``studies/nb201``): C = 8, N = 1 supernet, 16×16 images, a 5,000-image subset, 15 steps per
epoch, 8 epochs. Results: ``results/nb201_oneshot_{evaluators,study}{,_runs}.csv`` and ``.md``; the run
directories (resumable: finished units are not repeated) go to ``--work``.

    mkdir -p .data && tar xzf ../shared/data/cifar10_jpeg/CIFAR-10-images_jpeg.tar.gz -C .data
    OMP_NUM_THREADS=1 nice -n 5 python plugins/lissnas/scripts/nb201_oneshot_study.py --seeds 0,1,2,3,4
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from pydantic import Field

from nasfw import hookimpl
from nasfw.components import SearchSpace, Shrinker, ShrunkSpace, StrictModel
from nasfw.errors import ConfigError
from nasfw.genotype import Genotype

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
TABLE = REPO.parent / "shared" / "data" / "nb201_nats_tss_acc" / "nats_bench.csv"
#: the proxies' network and input: the cpu protocol's supernet size, data-free SynFlow on 16x16
PROXY_NET = {"C": 8, "N": 1}
SYNFLOW = {"proxy": "synflow", "network": PROXY_NET, "input_shape": [3, 16, 16, 10]}
NWOT = {"proxy": "nwot", "network": PROXY_NET, "batch_size": 32}
SUPERNET = {"steps": 300, "batch_size": 64, "eval_batches": 2}
#: evaluator part: label -> (evaluator, params)
EVALUATORS = {
    "synflow": ("proxy", SYNFLOW),
    "nwot": ("proxy", NWOT),
    "supernet": ("supernet", SUPERNET),
    "oracle": ("oracle", {}),
}
CONDITIONS = ["none", "lissnas", "op-prune", "random-sample"]
OPTIMIZERS = {
    "rsps": {"optimizer": {"name": "random", "params": {"num_candidates": 64, "eval_batches": 4}}},
    "darts": {"optimizer": {"name": "darts"}},
}


# --------------------------------------------------------------------------- configs


def base_config(data_dir: Path, seed: int) -> dict[str, Any]:
    """The NB201 study's cpu protocol (studies/nb201/configs/base.yaml)."""
    return {
        "space": {"name": "nb201", "params": {"init_channels": 8, "cells_per_stage": 1}},
        "dataset": {"name": "image-folder", "params": {"data_dir": str(data_dir), "resize": 16, "subset": 5000,
                                                       "test_subset": 500, "train_portion": 0.5, "augment": True,
                                                       "cutout": 0}},
        "benchmark": {"name": "nb201", "params": {"path": str(TABLE)}},
        "search": {"epochs": 8, "batch_size": 64, "steps_per_epoch": 15, "eval_batches": 2},
        "log": {"tensorboard": False, "plots": False, "progress": "none"},
        "device": "cpu",
        "seed": seed,
    }


#: set by main(): a proxy-score cache shared by the baseline shrinks (their evaluations are still counted
#: per shrink, but their seconds are not their cost)
CACHE: dict[str, Path | None] = {"path": None}


def with_cache(evaluator: str, params: dict[str, Any]) -> dict[str, Any]:
    if evaluator == "proxy" and CACHE["path"] is not None:
        return {**params, "cache": str(CACHE["path"])}
    return params


def lissnas_params(target: int, evaluator: str, params: dict[str, Any]) -> dict[str, Any]:
    """LISSNAS at the target, without the cache: its seconds are what the shrink costs."""
    return {"target_size": target, "evaluator": evaluator, "evaluator_params": params}


# --------------------------------------------------------------------------- shrinking (nasfw shrink)


def shrink(data_dir: Path, seed: int, shrinker: dict[str, Any], out: Path) -> dict[str, Any]:
    """``nasfw shrink --config`` in-process (click's runner: the command-line path); its shrunk_space.json."""
    from nasfw.cli import cli

    done = out / "shrunk_space.json"
    if done.exists():
        return json.loads(done.read_text())
    out.mkdir(parents=True, exist_ok=True)
    cfg = {**base_config(data_dir, seed), "shrinker": shrinker}
    (out / "shrink_config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    res = CliRunner().invoke(cli, ["shrink", "--config", str(out / "shrink_config.yaml"), "--out", str(out),
                                   "--quiet"], catch_exceptions=False)
    if res.exit_code != 0:
        raise SystemExit(f"nasfw shrink failed for {shrinker['name']} seed {seed}:\n{res.output}")
    return json.loads(done.read_text())


# --------------------------------------------------------------------------- searching (nasfw run)


class MembersConfig(StrictModel):
    path: str = Field(description="a shrunk_space.json")


class StudyMembers(Shrinker):
    """The members of one of this study's shrinks, so both searches run inside the same shrunk space."""

    Config = MembersConfig
    config: MembersConfig

    def shrink(self, space: SearchSpace, run: Any) -> ShrunkSpace:
        data = json.loads(Path(self.config.path).read_text())
        members = [Genotype.from_dict(g) for g in data["members"]]
        if not members:
            raise ConfigError(f"{self.config.path} has no members")
        return ShrunkSpace(members, {**data["info"], "from": self.config.path})


class StudyPlugin:
    @hookimpl
    def nasfw_register_shrinkers(self, register: Any) -> None:
        register("study-members", StudyMembers, description="members of a saved shrink (this study)")


def search(data_dir: Path, seed: int, optimizer: str, members_file: Path | None, out: Path,
           table: dict[str, float]) -> dict[str, Any]:
    """One search through the engine; the found cell's truth and the supernet's Kendall-τ."""
    from nasfw.config import build_config
    from nasfw.engine import run_search
    from nasfw.registry import Registry
    from nasfw.shrinkage import kendall_tau

    done = out / "study.json"
    if done.exists():
        return json.loads(done.read_text())
    cfg = {**base_config(data_dir, seed), **OPTIMIZERS[optimizer], "selector": {"name": "magnitude"},
           "out": str(out)}
    if members_file is not None:
        cfg["shrinker"] = {"name": "study-members", "params": {"path": str(members_file)}}
    registry = Registry()
    registry.add_plugin(StudyPlugin(), "lissnas-oneshot-study", "plugins/lissnas/scripts")
    t0 = time.time()
    run, summary = run_search(build_config(cfg), registry=registry, quiet=True)
    space = run.space
    if optimizer == "rsps":
        ranking = summary["activity"]["optimizer"]["ranking"]
        scores = [r["val_acc"] for r in ranking]
        truth = [table[r["genotype"]] for r in ranking]
        tau_over = len(ranking)
    else:
        searched = space if space.members is not None else space.restrict_to(list(space.enumerate()))
        scores = searched.member_scores(run.supernet.strengths()).tolist()
        truth = [table[space.format(g)] for g in searched.members]
        tau_over = len(truth)
    row = {
        "true_acc": summary["benchmark"]["cifar10_test_acc"],
        "genotype": summary["genotype_str"],
        "kendall_tau": kendall_tau(scores, truth),
        "tau_over": tau_over,
        "search_seconds": summary["search_seconds"] + summary["selection_seconds"],
        "wall_seconds": round(time.time() - t0, 1),
        "selected_is_member": members_file is None or space.contains(Genotype.from_dict(summary["genotype"])),
    }
    done.write_text(json.dumps(row, indent=1) + "\n")
    del run
    gc.collect()
    return row


# --------------------------------------------------------------------------- parts


def shrink_row(data: dict[str, Any], label: str, seed: int) -> dict[str, Any]:
    rep, info = data["report"], data["info"]
    b = rep["benchmark"]
    return {"shrink": label, "seed": seed, "size": rep["size_after"], "pockets": rep["pockets"],
            "normalised_distance": rep["diversity"]["normalised_distance"],
            "op_coverage": rep["diversity"]["op_coverage"], "mean_acc": b["mean"], "best_acc": round(b["best"], 3),
            "top1pct_recall": b["top1pct_recall"], "optimum_survived": b["optimum_survived"],
            "evaluations": info.get("evaluations", 0), "shrink_seconds": rep["seconds"],
            "score_tau": rep.get("kendall_tau")}


def evaluators_part(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for seed in args.evaluator_seeds:
        for label, (name, params) in EVALUATORS.items():
            data = shrink(args.data_dir, seed, {"name": "lissnas", "params": lissnas_params(args.target, name, params)},
                          args.work / "evaluators" / label / f"seed{seed}")
            rows.append(shrink_row(data, label, seed))
            print(f"[evaluators] {label} seed {seed}: mean {rows[-1]['mean_acc']:.2f} best {rows[-1]['best_acc']:.2f} "
                  f"recall {rows[-1]['top1pct_recall']} evals {rows[-1]['evaluations']} "
                  f"({rows[-1]['shrink_seconds']:.0f} s)", flush=True)
    return rows


def oneshot_part(args: argparse.Namespace, table: dict[str, float]) -> tuple[list[dict[str, Any]], list[dict]]:
    shrinks, runs = [], []
    name, params = EVALUATORS[args.evaluator]
    for seed in args.seeds:
        work = args.work / "oneshot" / f"seed{seed}"
        # the same shrinks as the evaluator part's (same configs, same directories: done once)
        lis_dir = args.work / "evaluators" / args.evaluator / f"seed{seed}"
        lis = shrink(args.data_dir, seed, {"name": "lissnas", "params": lissnas_params(args.target, name, params)},
                     lis_dir)
        budget = int(lis["info"]["evaluations"])
        specs = {
            "lissnas": None,
            "op-prune": {"name": "op-prune", "params": {"evaluator": name, "evaluator_params": with_cache(name, params),
                                                        "rounds": 3,
                                                        "samples": math.ceil(budget / 3), "target_size": args.target}},
            "random-sample": {"name": "random-sample", "params": {"evaluator": name,
                                                                  "evaluator_params": with_cache(name, params),
                                                                  "samples": budget, "target_size": args.target}},
        }
        files: dict[str, Path | None] = {"none": None}
        for label, spec in specs.items():
            data = lis if spec is None else shrink(args.data_dir, seed, spec, work / label)
            files[label] = (lis_dir if spec is None else work / label) / "shrunk_space.json"
            shrinks.append(shrink_row(data, label, seed))
        oracle = shrink(args.data_dir, seed, {"name": "lissnas", "params": lissnas_params(args.target, "oracle", {})},
                        args.work / "evaluators" / "oracle" / f"seed{seed}")
        shrinks.append(shrink_row(oracle, "lissnas (oracle)", seed))
        for cond in CONDITIONS:
            for opt in OPTIMIZERS:
                row = search(args.data_dir, seed, opt, files[cond], work / f"{cond}-{opt}", table)
                runs.append({"condition": cond, "optimizer": opt, "seed": seed, **row})
                print(f"[oneshot] seed {seed} {cond:13s} {opt:5s}: acc {row['true_acc']:.2f} "
                      f"tau {row['kendall_tau']:.3f} "
                      f"({row['wall_seconds']:.0f} s)", flush=True)
    return shrinks, runs


# --------------------------------------------------------------------------- tables


def ms(values: list[Any], digits: int = 2) -> str:
    vals = [float(v) for v in values if v is not None and v != "" and math.isfinite(float(v))]
    if not vals:
        return "n/a"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    return f"{statistics.mean(vals):.{digits}f} ± {statistics.stdev(vals):.{digits}f}"


def shrink_table(rows: list[dict[str, Any]], labels: list[str]) -> str:
    head = ["shrink", "seeds", "size", "pockets", "norm. distance", "op coverage", "mean C10 acc", "best C10 acc",
            "top-1% recall", "optimum kept", "evaluations", "τ(score, truth)", "seconds"]
    out = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for label in labels:
        rs = [r for r in rows if r["shrink"] == label]
        if not rs:
            continue
        out.append("| " + " | ".join([
            label, str(len(rs)), ms([r["size"] for r in rs], 0), ms([r["pockets"] for r in rs], 1),
            ms([r["normalised_distance"] for r in rs]), ms([r["op_coverage"] for r in rs]),
            ms([r["mean_acc"] for r in rs]), ms([r["best_acc"] for r in rs]), ms([r["top1pct_recall"] for r in rs], 3),
            f"{sum(bool(r['optimum_survived']) for r in rs)}/{len(rs)}", ms([r["evaluations"] for r in rs], 0),
            ms([r["score_tau"] for r in rs], 3), ms([r["shrink_seconds"] for r in rs], 0)]) + " |")
    return "\n".join(out) + "\n"


def search_table(runs: list[dict[str, Any]]) -> str:
    head = ["space searched", "RSPS: true C10 acc", "RSPS: τ (one-shot acc)", "DARTS: true C10 acc",
            "DARTS: τ (α score)", "cells τ is over (RSPS / DARTS)"]
    out = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for cond in CONDITIONS:
        r = [x for x in runs if x["condition"] == cond and x["optimizer"] == "rsps"]
        d = [x for x in runs if x["condition"] == cond and x["optimizer"] == "darts"]
        if not r and not d:
            continue
        out.append("| " + " | ".join([
            cond, ms([x["true_acc"] for x in r]), ms([x["kendall_tau"] for x in r], 3),
            ms([x["true_acc"] for x in d]), ms([x["kendall_tau"] for x in d], 3),
            f"{ms([x['tau_over'] for x in r], 0)} / {ms([x['tau_over'] for x in d], 0)}"]) + " |")
    return "\n".join(out) + "\n"


def paired_table(runs: list[dict[str, Any]]) -> str:
    """LISSNAS minus each other space, seed by seed (the same seed's data and search RNG)."""
    head = ["LISSNAS minus", "RSPS: Δ true acc", "RSPS: seeds LISSNAS ahead", "DARTS: Δ true acc",
            "DARTS: seeds LISSNAS ahead"]
    out = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    acc = {(x["condition"], x["optimizer"], x["seed"]): x["true_acc"] for x in runs}
    seeds = sorted({x["seed"] for x in runs})
    for cond in CONDITIONS:
        if cond == "lissnas":
            continue
        cells = [cond]
        for opt in OPTIMIZERS:
            diffs = [acc[("lissnas", opt, s)] - acc[(cond, opt, s)] for s in seeds
                     if ("lissnas", opt, s) in acc and (cond, opt, s) in acc]
            cells += [ms(diffs), f"{sum(d > 0 for d in diffs)}/{len(diffs)}"]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=REPO / ".data" / "CIFAR-10-images")
    ap.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2, 3, 4])
    ap.add_argument("--target", type=int, default=64, help="members every shrink keeps (64 = op-prune's 2^6)")
    ap.add_argument("--evaluator", default="synflow", choices=list(EVALUATORS), help="f(a) of the oneshot part")
    ap.add_argument("--parts", default="evaluators,oneshot")
    ap.add_argument("--evaluator-seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2],
                    help="seeds of the evaluator part (the supernet evaluator is the slow one)")
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "lissnas-oneshot-study")
    ap.add_argument("--out", type=Path, default=HERE.parent / "results")
    args = ap.parse_args()
    if not TABLE.exists():
        sys.exit(f"the NB201 table is not at {TABLE}; this study needs it")
    if not (args.data_dir / "train").is_dir():
        sys.exit(f"CIFAR-10 images not found at {args.data_dir}; unpack them first (see the docstring)")
    from nasfw.registry import get_registry

    bench = get_registry().create("benchmark", {"name": "nb201", "params": {"path": str(TABLE)}})
    space = get_registry().create("search_space", "nb201")
    table = {space.format(g): bench.query(g)["cifar10_test_acc"] for g in space.enumerate()}
    args.out.mkdir(parents=True, exist_ok=True)
    CACHE["path"] = args.work / "proxy_scores.json"
    t0 = time.time()
    parts = args.parts.split(",")
    context = f"seeds {','.join(map(str, args.seeds))}, target {args.target} members"
    if "evaluators" in parts:
        context_e = f"seeds {','.join(map(str, args.evaluator_seeds))}, target {args.target} members"
        rows = evaluators_part(args)
        write_csv(args.out / "nb201_oneshot_evaluators.csv", rows)
        (args.out / "nb201_oneshot_evaluators.md").write_text(
            f"LISSNAS with each evaluator ({context_e}; mean ± sd over seeds)\n\n"
            + shrink_table(rows, list(EVALUATORS)))
    if "oneshot" in parts:
        shrinks, runs = oneshot_part(args, table)
        write_csv(args.out / "nb201_oneshot_shrinks.csv", shrinks)
        write_csv(args.out / "nb201_oneshot_runs.csv", runs)
        (args.out / "nb201_oneshot_study.md").write_text(
            f"Shrunk spaces ({context}, evaluator {args.evaluator}, equal evaluations; mean ± sd over seeds)\n\n"
            + shrink_table(shrinks, ["lissnas", "op-prune", "random-sample", "lissnas (oracle)"])
            + "\nOne-shot search inside each space (true NB201 CIFAR-10 test accuracy of the found cell)\n\n"
            + search_table(runs)
            + "\nPaired by seed\n\n" + paired_table(runs))
    print(f"done in {time.time() - t0:.0f} s; tables in {args.out}")


if __name__ == "__main__":
    main()
