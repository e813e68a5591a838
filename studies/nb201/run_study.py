"""Search-quality study on NAS-Bench-201: every method × seeds, scored by the true NB201 accuracies.

Each method's run config is built from ``configs/base.yaml`` and ``configs/<method>.yaml`` (a shared
part plus ``cpu`` / ``gpu`` protocol overrides), validated by ``nasfw.config`` and run through
``nasfw.engine.run_search`` in a fresh worker process per run, so that each run's peak memory is its
own. Finished runs (``summary.json`` present) are not repeated, so an interrupted study continues
where it stopped. The table (per run and per method) is rebuilt from the run directories.

    python studies/nb201/run_study.py --protocol cpu --data-dir .data/CIFAR-10-images
    python studies/nb201/run_study.py --protocol gpu --data-dir /data/CIFAR-10-images --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import copy
import csv
import gc
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from nasfw import hookimpl

HERE = Path(__file__).resolve().parent
CONFIGS = HERE / "configs"
REPO = HERE.parents[1]
#: the study's method order (one YAML per name in configs/)
METHODS = ["darts", "darts-2nd", "zarts-rs", "zarts-mgs", "zarts-gld", "sharpdarts", "darts-perturb",
           "zarts-mgs-perturb", "synflow", "snip", "grasp", "random",
           "gdas", "drnas", "sdarts-rs", "sdarts-adv", "pc-darts"]
#: NB201 operations without weights: the ones DARTS drifts to
PARAM_FREE = ("skip_connect", "avg_pool_3x3", "none")
DATASETS = ("cifar10", "cifar100", "imagenet16-120")
SHUFFLED_DATASET = "image-folder-shuffled"


class StudyError(Exception):
    """A user-fixable problem (missing data, unknown method); printed as one line, exit code 2."""


# --------------------------------------------------------------------------- configs


def _as_ref(value: Any) -> Any:
    """``optimizer: darts`` and ``optimizer: {name: darts}`` must merge the same way."""
    return {"name": value} if isinstance(value, str) else value


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge (``over`` wins); lists and scalars are replaced, not merged."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if key in ("space", "optimizer", "selector", "dataset", "benchmark", "edge_weighting", "shrinker"):
            value = _as_ref(value)
            if key in out:
                out[key] = _as_ref(out[key])
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise StudyError(f"{path} must hold a mapping")
    return data


def method_spec(method: str) -> dict[str, Any]:
    path = CONFIGS / f"{method}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CONFIGS.glob("*.yaml") if p.stem != "base"))
        raise StudyError(f"unknown method '{method}' (no {path}); known: {known}")
    return load_yaml(path)


def run_config(method: str, protocol: str, seed: int, data_dir: Path, out_dir: Path,
               table: Path | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The raw RunConfig mapping of one run: base → base[protocol] → method → method[protocol] → run."""
    base, spec = load_yaml(CONFIGS / "base.yaml"), method_spec(method)
    for name, part in (("base.yaml", base), (f"{method}.yaml", spec)):
        if protocol not in part.get("protocols", {}):
            raise StudyError(f"{name} has no '{protocol}' protocol (have: {', '.join(part.get('protocols', {}))})")
    cfg = deep_merge(base.get("run", {}), base["protocols"][protocol] or {})
    cfg = deep_merge(cfg, spec.get("run", {}))
    cfg = deep_merge(cfg, spec["protocols"][protocol] or {})
    cfg = deep_merge(cfg, extra or {})
    run_part: dict[str, Any] = {"seed": seed, "out": str(out_dir), "dataset": {"params": {"data_dir": str(data_dir)}}}
    if table is not None:
        run_part["benchmark"] = {"name": "nb201", "params": {"path": str(table)}}
    return deep_merge(cfg, run_part)


# --------------------------------------------------------------------------- worker (one run per process)


def _proc_status_mb(field: str) -> float | None:
    """A memory field of /proc/self/status in MB (psutil is not a dependency); None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0), so the peak of the search is not the data loading's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


class StudyPlugin:
    """In-process nasfw plugin of the study: the shuffled ImageFolder dataset and a memory probe.

    The built-in ``image-folder`` dataset keeps ImageFolder's class-sorted order, so its DARTS split
    (first part → w, rest → α) gives the two halves disjoint classes. This dataset applies one fixed
    permutation first, which makes the 50/50 split a random split, as torchvision's CIFAR-10 order is.
    """

    def __init__(self) -> None:
        self.started: dict[str, float] = {}

    @hookimpl
    def nasfw_register_datasets(self, register: Any) -> None:
        register(SHUFFLED_DATASET, _shuffled_dataset_class(),
                 description="image-folder with one fixed shuffle of the training images (random DARTS split)")

    @hookimpl
    def nasfw_run_started(self, run: Any) -> None:
        """Mark memory after data loading and supernet construction: the search's own peak comes after."""
        gc.collect()
        self.started = {"rss_at_start_mb": _proc_status_mb("VmRSS"), "peak_rss_at_start_mb": _peak_rss_mb(),
                        "peak_rss_reset": _reset_peak_rss()}


def _shuffled_dataset_class() -> type:
    import torch
    from pydantic import Field

    from nasfw.builtin.datasets import ImageFolderData, load_image_folder, make_splits
    from nasfw.data import DataSplits
    from nasfw.errors import DataError

    class ShuffledImageFolder(ImageFolderData):
        """``image-folder`` with a fixed shuffle of the training images before the DARTS split."""

        class Config(ImageFolderData.Config):
            shuffle_seed: int = Field(default=2019, ge=0, description="seed of the fixed training-set order")

        def splits(self, seed: int) -> DataSplits:
            root = Path(self.config.data_dir).expanduser()
            if not (root / "train").is_dir():
                found = [p.parent for p in root.glob("*/train") if p.is_dir()] if root.is_dir() else []
                if len(found) != 1:
                    raise DataError(f"{SHUFFLED_DATASET}: {root}/train not found; the data dir must hold "
                                    f"train/<class>/ and test/<class>/")
                root = found[0]
            tx, ty, classes = load_image_folder(root / "train")
            order = torch.randperm(tx.shape[0], generator=torch.Generator().manual_seed(self.config.shuffle_seed))
            tx, ty = tx[order], ty[order]
            vx = vy = None
            if (root / "test").is_dir():
                vx, vy, test_classes = load_image_folder(root / "test")
                if test_classes != classes:
                    raise DataError(f"{SHUFFLED_DATASET}: test classes differ from train classes")
            mean, std = self.config.mean, self.config.std
            if mean is None or std is None:
                sample = tx[:5000].float() / 255
                mean = tuple(sample.mean(dim=(0, 2, 3)).tolist())
                std = tuple(sample.std(dim=(0, 2, 3)).tolist())
            return make_splits(self.config, tx, ty, vx, vy, mean, std, len(classes), seed, name=SHUFFLED_DATASET)

    return ShuffledImageFolder


def worker(config_path: Path) -> int:
    """Run one config through the project's API and add the study's measurements to the run dir."""
    import torch

    from nasfw.config import build_config, read_config_file
    from nasfw.engine import run_search
    from nasfw.registry import Registry

    registry = Registry()
    plugin = StudyPlugin()
    registry.add_plugin(plugin, "nb201-study", "studies/nb201")
    config = build_config(read_config_file(config_path))
    t0 = time.time()
    if torch.cuda.is_available() and (config.device.startswith("cuda") or config.device == "auto"):
        torch.cuda.reset_peak_memory_stats()
    run, _ = run_search(config, registry=registry, quiet=True)
    measures = {
        "wall_seconds": time.time() - t0,
        **plugin.started,
        # VmHWM was reset when the run started: the peak RSS of search + selection alone
        "search_peak_rss_mb": _proc_status_mb("VmHWM") if plugin.started.get("peak_rss_reset") else None,
        "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if run.device.type == "cuda" else None,
        "threads": torch.get_num_threads(),
    }
    measures["peak_rss_mb"] = max(v for v in (_peak_rss_mb(), measures["peak_rss_at_start_mb"],
                                               measures["search_peak_rss_mb"]) if v is not None)
    (run.out_dir / "study.json").write_text(json.dumps(measures, indent=2) + "\n")
    return 0


# --------------------------------------------------------------------------- table


def _fmt(values: list[float], digits: int = 2) -> str:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return "n/a"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    return f"{statistics.mean(vals):.{digits}f} ± {statistics.stdev(vals):.{digits}f}"


def _mean(values: list[float]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.mean(vals) if vals else None


def _std(values: list[float]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.stdev(vals) if len(vals) > 1 else (0.0 if vals else None)


def collect_run(run_dir: Path) -> dict[str, Any]:
    """One row per run from its ``summary.json`` / ``study.json`` (or its error log)."""
    row: dict[str, Any] = {"run_dir": str(run_dir)}
    summary_path = run_dir / "summary.json"
    if not summary_path.exists():
        err = run_dir / "worker.log"
        lines = err.read_text().strip().splitlines() if err.exists() else []
        row["error"] = lines[-1][:300] if lines else "not run"
        return row
    s = json.loads(summary_path.read_text())
    study = json.loads((run_dir / "study.json").read_text()) if (run_dir / "study.json").exists() else {}
    bench = s.get("benchmark") or {}
    ops = [e["op"] for cell in s["genotype"]["cells"].values() for e in cell]
    row.update({
        "cell": s["genotype_str"],
        "param_free_ops": sum(op in PARAM_FREE for op in ops),
        "ops": len(ops),
        "search_seconds": s.get("search_seconds", 0.0),
        "selection_seconds": s.get("selection_seconds", 0.0),
        "method_seconds": s.get("search_seconds", 0.0) + s.get("selection_seconds", 0.0),
        "wall_seconds": study.get("wall_seconds"),
        "peak_rss_mb": study.get("peak_rss_mb"),
        "search_peak_rss_mb": study.get("search_peak_rss_mb"),
        "rss_at_start_mb": study.get("rss_at_start_mb"),
        "cuda_peak_mb": study.get("cuda_peak_mb"),
        "final_val_acc": (s.get("final") or {}).get("val_acc"),
        "benchmark_index": bench.get("index"),
        "error": bench.get("error", ""),
    })
    for d in DATASETS:
        row[f"{d}_test_acc"] = bench.get(f"{d}_test_acc")
    row["param_free_by_epoch"] = param_free_trajectory(run_dir)
    return row


def param_free_trajectory(run_dir: Path) -> list[float]:
    """Share of parameter-free ops in the argmax cell of α after each search epoch (the drift, epoch by epoch).

    Empty for optimizers whose α is not what they search with (``random`` overrides α with one-hot samples).
    """
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    if config["optimizer"]["name"] in ("random", "none") or not (run_dir / "alphas.jsonl").exists():
        return []
    ops = config["space"]["params"]["primitives"]
    shares = []
    for line in (run_dir / "alphas.jsonl").read_text().splitlines():
        weights = json.loads(line)["weights"]
        chosen = [ops[max(range(len(row)), key=row.__getitem__)] for cell in weights.values() for row in cell]
        shares.append(sum(op in PARAM_FREE for op in chosen) / len(chosen))
    return shares


def aggregate(method: str, label: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rows if "cell" in r]
    out: dict[str, Any] = {"method": method, "label": label, "seeds_done": len(ok), "seeds_failed": len(rows) - len(ok)}
    for d in DATASETS:
        vals = [r.get(f"{d}_test_acc") for r in ok]
        out[f"{d}_mean"], out[f"{d}_std"] = _mean(vals), _std(vals)
    n_ops = sum(r["ops"] for r in ok)
    out["param_free_share"] = sum(r["param_free_ops"] for r in ok) / n_ops if n_ops else None
    out["method_seconds_mean"] = _mean([r["method_seconds"] for r in ok])
    out["wall_seconds_mean"] = _mean([r["wall_seconds"] for r in ok if r.get("wall_seconds") is not None])
    def peak(key: str) -> float | None:
        return max((r[key] for r in ok if r.get(key) is not None), default=None)

    out["cuda_peak_mb_max"] = peak("cuda_peak_mb")
    out["peak_rss_mb_max"] = peak("peak_rss_mb")
    out["search_peak_rss_mb_max"] = peak("search_peak_rss_mb")
    out["search_rss_increase_mb_max"] = max(
        (r["search_peak_rss_mb"] - r["rss_at_start_mb"] for r in ok
         if r.get("search_peak_rss_mb") is not None and r.get("rss_at_start_mb") is not None), default=None)
    traj = [r["param_free_by_epoch"] for r in ok if r.get("param_free_by_epoch")]
    out["param_free_by_epoch"] = (" ".join(f"{statistics.mean(t[e] for t in traj):.2f}"
                                           for e in range(min(len(t) for t in traj))) if traj else "")
    out["cells"] = " ; ".join(r["cell"] for r in ok)
    out["errors"] = " ; ".join(r["error"] for r in rows if r.get("error"))
    return out


def table_context(table: Path | None) -> dict[str, Any]:
    """The table's optimum and the mean accuracy of a uniformly random cell, from the benchmark file."""
    from nasfw_space_nb201.benchmark import default_table_path, load_table

    entries = load_table(table or default_table_path())
    accs = [a for _, a in entries.values()]
    best_arch, (_, best) = max(entries.items(), key=lambda kv: kv[1][1]["cifar10"])
    ctx = {"cells": len(entries), "optimum_cell": best_arch}
    for d in DATASETS:
        vals = [a[d] for a in accs]
        ctx[f"{d}_uniform_mean"], ctx[f"{d}_uniform_std"] = statistics.mean(vals), statistics.pstdev(vals)
        ctx[f"{d}_at_c10_optimum"] = best[d]
        ctx[f"{d}_best"] = max(vals)
    for op in ("skip_connect", "avg_pool_3x3", "none"):  # the cells DARTS collapses to, and what they score
        cell = f"|{op}~0|+|{op}~0|{op}~1|+|{op}~0|{op}~1|{op}~2|"
        if cell in entries:
            ctx.update({f"{d}_all_{op}": entries[cell][1][d] for d in DATASETS})
    by_count: dict[int, list[float]] = {}
    for arch, (_, acc) in entries.items():
        k = sum(part.split("~")[0] in PARAM_FREE for part in arch.strip("|").replace("|+|", "|").split("|"))
        by_count.setdefault(k, []).append(acc["cifar10"])
    ctx["cifar10_mean_by_param_free_edges"] = {k: statistics.mean(v) for k, v in sorted(by_count.items())}
    ctx["cells_by_param_free_edges"] = {k: len(v) for k, v in sorted(by_count.items())}
    return ctx


def markdown(agg: list[dict[str, Any]], ctx: dict[str, Any] | None) -> str:
    gpu = any(a["cuda_peak_mb_max"] is not None for a in agg)
    mem_head = "peak CUDA MB" if gpu else "peak RSS MB: process / search (+ over start)"
    head = ("| method | seeds | CIFAR-10 | CIFAR-100 | ImageNet16-120 | param-free ops | search s (run s) "
            f"| {mem_head} |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
    lines = []
    for a in agg:
        def pm(d: str, a: dict[str, Any] = a) -> str:
            m, s = a[f"{d}_mean"], a[f"{d}_std"]
            return "n/a" if m is None else f"{m:.2f} ± {s:.2f}"
        share = "n/a" if a["param_free_share"] is None else f"{100 * a['param_free_share']:.0f} %"
        secs = "n/a" if a["method_seconds_mean"] is None else f"{a['method_seconds_mean']:.1f}"
        if a.get("wall_seconds_mean") is not None:
            secs += f" ({a['wall_seconds_mean']:.0f})"
        if gpu:
            mem = "n/a" if a["cuda_peak_mb_max"] is None else f"{a['cuda_peak_mb_max']:.0f}"
        elif a["peak_rss_mb_max"] is None:
            mem = "n/a"
        else:
            mem = f"{a['peak_rss_mb_max']:.0f}"
            if a["search_peak_rss_mb_max"] is not None:
                mem += f" / {a['search_peak_rss_mb_max']:.0f} (+{a['search_rss_increase_mb_max']:.0f})"
        seeds = f"{a['seeds_done']}" + (f" (+{a['seeds_failed']} failed)" if a["seeds_failed"] else "")
        lines.append(f"| {a['label']} | {seeds} | {pm('cifar10')} | {pm('cifar100')} | {pm('imagenet16-120')} "
                     f"| {share} | {secs} | {mem} |")
    if ctx:
        lines.append(f"| *uniformly random cell (mean ± sd over {ctx['cells']:,} cells)* | – "
                     + "".join(f"| {ctx[f'{d}_uniform_mean']:.2f} ± {ctx[f'{d}_uniform_std']:.2f} " for d in DATASETS)
                     + f"| {100 * 3 / 5:.0f} % | – | – |")
        lines.append("| *table optimum (best CIFAR-10 cell)* | – "
                     + "".join(f"| {ctx[f'{d}_at_c10_optimum']:.2f} " for d in DATASETS) + "| – | – | – |")
    text = head + "\n".join(lines) + "\n"
    traj = [a for a in agg if a.get("param_free_by_epoch")]
    if traj:
        text += ("\nShare of parameter-free ops (skip_connect, avg_pool_3x3, none) in the argmax cell of α after "
                 "each search epoch (mean over seeds):\n\n| method | by epoch |\n| --- | --- |\n")
        text += "".join(f"| {a['label']} | {a['param_free_by_epoch']} |\n" for a in traj)
    cells = "".join(f"| {a['label']} | " + "<br>".join(f"`{c}`".replace("|", "\\|") for c in a["cells"].split(" ; "))
                    + " |\n" for a in agg if a["cells"])
    if cells:
        text += "\nFound cells (one per seed, in seed order):\n\n| method | cells |\n| --- | --- |\n" + cells
    return text


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else
                            " ".join(f"{x:.2f}" for x in v) if isinstance(v, list) else v) for k, v in r.items()})


# --------------------------------------------------------------------------- driver


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--protocol", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--data-dir", type=Path, default=REPO / ".data" / "CIFAR-10-images",
                   help="ImageFolder root with train/ and test/ (CIFAR-10 JPEGs)")
    p.add_argument("--out", type=Path, default=None, help="run directories (default: runs/nb201-study-<protocol>)")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated names of configs/<method>.yaml")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--table", type=Path, default=None,
                   help="NB201 accuracy CSV (default: the nb201 benchmark's, $NASFW_NB201_TABLE or ../shared/data)")
    p.add_argument("--results", type=Path, default=None, help="per-method CSV (default: studies/nb201/results_<p>.csv)")
    p.add_argument("--set", dest="sets", action="append", default=[],
                   help="extra override for every run, KEY=VALUE as in nasfw run --set (e.g. search.epochs=1)")
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of the workers (cpu default: 1)")
    p.add_argument("--timeout", type=float, default=None, help="seconds before a run is killed")
    p.add_argument("--in-process", action="store_true",
                   help="run each config in this process instead of a worker (faster start; for tests)")
    p.add_argument("--table-only", action="store_true", help="only rebuild the tables from existing runs")
    p.add_argument("--dry-run", action="store_true", help="write and validate the run configs, run nothing")
    return p.parse_args(argv)


def _extra_overrides(sets: list[str]) -> dict[str, Any]:
    """``--set`` texts as a nested mapping (nasfw's parser; no defaults filled in, unlike ``set_path``)."""
    from nasfw.config import parse_override

    data: dict[str, Any] = {}
    for text in sets:
        parts, value = parse_override(text)
        cur = data
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = value
    return data


def _has_images(data_dir: Path) -> bool:
    if (data_dir / "train").is_dir():
        return True
    return data_dir.is_dir() and len([p for p in data_dir.glob("*/train") if p.is_dir()]) == 1



def _run_worker(cfg_path: Path, log_path: Path, env: dict[str, str], timeout: float | None) -> int:
    """One run in a fresh process, so its peak memory is its own."""
    with log_path.open("w") as log:
        try:
            return subprocess.run([sys.executable, __file__, "_worker", str(cfg_path)], env=env, stdout=log,
                                  stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            log.write(f"\nkilled after the study's timeout of {timeout} s\n")
            return -1


def _run_in_process(cfg_path: Path, log_path: Path) -> int:
    """One run in this process (tests: no second start-up); the search peak RSS stays per run (VmHWM reset)."""
    from nasfw.errors import NasfwError

    try:
        return worker(cfg_path)
    except (NasfwError, RuntimeError, ValueError) as exc:
        log_path.write_text(f"Error: {type(exc).__name__}: {exc}\n")
        return 2


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    out = (args.out or REPO / "runs" / f"nb201-study-{args.protocol}").resolve()
    results = args.results or HERE / f"results_{args.protocol}.csv"
    table = args.table.resolve() if args.table else None
    specs = {m: method_spec(m) for m in methods}
    if not args.table_only:
        data_dir = args.data_dir.expanduser().resolve()
        if not _has_images(data_dir):
            raise StudyError(f"no CIFAR-10 images at {data_dir} (need train/<class>/*.jpg and test/); unpack "
                             f"CIFAR-10-images_jpeg.tar.gz there or pass --data-dir")
        extra = _extra_overrides(args.sets)
        from nasfw.config import build_config, dump_config

        env = dict(os.environ)
        threads = args.threads or (1 if args.protocol == "cpu" else None)
        if threads:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
            if args.in_process:
                import torch

                torch.set_num_threads(threads)
        todo = []
        for seed in seeds:  # seeds outermost: a study cut short still has every method at the first seeds
            for m in methods:
                run_dir = out / m / f"seed{seed}"
                cfg = build_config(run_config(m, args.protocol, seed, data_dir, run_dir, table, extra))
                todo.append((m, seed, run_dir, cfg))
        for i, (m, seed, run_dir, cfg) in enumerate(todo, 1):
            if (run_dir / "summary.json").exists() and (run_dir / "study.json").exists():
                print(f"[{i}/{len(todo)}] {m} seed {seed}: done before, kept", flush=True)
                continue
            run_dir.mkdir(parents=True, exist_ok=True)
            for stale in ("summary.json", "checkpoint.pt", "metrics.jsonl", "alphas.jsonl"):
                (run_dir / stale).unlink(missing_ok=True)
            cfg_path = run_dir.parent / f"seed{seed}.yaml"
            cfg_path.write_text(dump_config(cfg))
            if args.dry_run:
                print(f"[{i}/{len(todo)}] {m} seed {seed}: {cfg_path}", flush=True)
                continue
            t0 = time.time()
            if args.in_process:
                rc = _run_in_process(cfg_path, run_dir / "worker.log")
            else:
                rc = _run_worker(cfg_path, run_dir / "worker.log", env, args.timeout)
            row = collect_run(run_dir)
            what = (f"C10 {row.get('cifar10_test_acc', float('nan')):.2f} {row['cell']}" if "cell" in row
                    else f"FAILED (rc {rc}): {row['error']}")
            print(f"[{i}/{len(todo)}] {m} seed {seed}: {time.time() - t0:.0f}s {what}", flush=True)
    if args.dry_run:
        return 0
    per_run, agg = [], []
    for m in methods:
        rows = []
        for seed in seeds:
            run_dir = out / m / f"seed{seed}"
            if args.table_only and not run_dir.is_dir():
                continue  # never attempted (a study run with fewer seeds for this method)
            rows.append({"method": m, "seed": seed, **collect_run(run_dir)})
        per_run += rows
        agg.append(aggregate(m, specs[m].get("label", m), rows))
    try:
        ctx = table_context(table)
    except Exception as exc:  # the benchmark table is optional for running, needed for context only
        print(f"no NB201 table context: {exc}", file=sys.stderr)
        ctx = None
    results.parent.mkdir(parents=True, exist_ok=True)
    write_csv(results, agg)
    write_csv(results.with_name(results.stem + "_runs.csv"), per_run)
    md = markdown(agg, ctx)
    results.with_suffix(".md").write_text(md)
    if ctx:
        (results.with_name(results.stem + "_context.json")).write_text(json.dumps(ctx, indent=2) + "\n")
    print(md)
    failed = [f"{r['method']} seed {r['seed']}" for r in per_run if "cell" not in r]
    if failed:
        print(f"{len(failed)} run(s) without a result: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_worker":
        from nasfw.errors import NasfwError

        try:
            sys.exit(worker(Path(sys.argv[2])))
        except NasfwError as exc:
            print(f"Error: {type(exc).__name__}: {exc}", flush=True)
            sys.exit(2)
    try:
        sys.exit(main())
    except StudyError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(2)
