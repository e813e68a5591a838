"""``nasfw shrink``: run a shrinker on a space on its own and report what the shrunk space looks like.

Works for any space and shrinker through the generic interfaces (``size``, ``neighbours``,
``distance``, ``encode``; ``ShrunkSpace``). The report: size before and after, the number of pockets
(connected components under the space's one-step neighbourhood), diversity (mean pairwise distance,
op coverage), and, when a benchmark answers for the space, the true mean and best inside the shrunk
space and Kendall-τ between the shrinker's own scores (``info["member_scores"]``, if it gives them)
and the truth.
"""

from __future__ import annotations

import json
import random
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import torch

from nasfw.components import SearchSpace, ShrunkSpace
from nasfw.errors import ConfigError, NasfwError
from nasfw.genotype import Genotype

# --------------------------------------------------------------------------- generic metrics


def distance_matrix(space: SearchSpace, members: Sequence[Genotype]) -> torch.Tensor:
    """Pairwise ``space.distance`` (n, n); vectorised over one-hot encodings when the space keeps the default
    edit distance, so thousands of members take a fraction of a second."""
    n = len(members)
    if type(space).distance is not SearchSpace.distance:
        out = torch.zeros(n, n)
        for i in range(n):
            for j in range(i + 1, n):
                out[i, j] = out[j, i] = space.distance(members[i], members[j])
        return out
    encs = [space.encode(g) for g in members]
    cells = sorted(encs[0]) if encs else []
    flat = [torch.stack([e[k] for e in encs]).bool() for k in cells]  # (n, rows, K) per cell
    out = torch.zeros(n, n)
    step = max(1, 2_000_000 // max(1, n * sum(int(f[0].numel()) for f in flat)))
    for lo in range(0, n, step):
        for f in flat:
            out[lo:lo + step] += (f[lo:lo + step, None] != f[None]).any(dim=-1).sum(dim=-1).float()
    return out


def pockets(space: SearchSpace, members: Sequence[Genotype], radius: float = 1.0) -> list[list[int]]:
    """Connected components of ``members`` when those within ``radius`` (the space's distance; 1 = one
    edit) are linked; member indices, largest component first."""
    n = len(members)
    if n == 0:
        return []
    adj = distance_matrix(space, members) <= radius
    seen = torch.zeros(n, dtype=torch.bool)
    comps: list[list[int]] = []
    for start in range(n):
        if seen[start]:
            continue
        comp = torch.zeros(n, dtype=torch.bool)
        comp[start] = True
        while True:
            grown = comp | adj[comp].any(dim=0)
            if bool((grown == comp).all()):
                break
            comp = grown
        seen |= comp
        comps.append([int(i) for i in comp.nonzero().flatten()])
    return sorted(comps, key=lambda c: (-len(c), c[0]))


def max_distance(space: SearchSpace) -> int:
    """The largest possible default edit distance: every decision row differs."""
    return sum(len(edges) for edges in space.decisions().values())


def diversity(space: SearchSpace, members: Sequence[Genotype], max_pairs: int = 20000,
              seed: int = 0) -> dict[str, float]:
    """Mean pairwise distance (raw and divided by the largest possible) and op coverage: the share of the
    space's available (edge, op) entries that some member uses (what operational pruning destroys)."""
    n = len(members)
    if n < 2:
        mean = 0.0
    elif n <= 3000:
        mean = float(distance_matrix(space, members).sum()) / (n * (n - 1))
    else:
        rng = random.Random(seed)
        pairs = [(i, j) for i, j in ((rng.randrange(n), rng.randrange(n)) for _ in range(2 * max_pairs)) if i != j]
        mean = sum(space.distance(members[i], members[j]) for i, j in pairs[:max_pairs]) / len(pairs[:max_pairs])
    table = space.op_table()
    used = None
    for g in members:
        enc = {k: v.bool() for k, v in space.encode(g).items()}
        used = enc if used is None else {k: used[k] | enc[k] for k in used}
    avail = sum(int(t.sum()) for t in table.values())
    covered = sum(int((used[k] & table[k]).sum()) for k in table) if used else 0
    top = max_distance(space)
    return {"mean_distance": round(mean, 4), "normalised_distance": round(mean / top, 4) if top else 0.0,
            "op_coverage": round(covered / avail, 4) if avail else 0.0}


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's τ-b (ties in either ranking handled); NaN with fewer than two pairs or a constant side."""
    if len(x) != len(y):
        raise ValueError("kendall_tau needs two sequences of equal length")
    if len(x) < 2:
        return float("nan")
    from scipy.stats import kendalltau

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant input warns and gives NaN, which is the answer here
        return float(kendalltau(x, y).statistic)


def _metric_of(row: dict[str, float], metric: str | None, bench: str) -> str:
    if metric is not None:
        if metric not in row:
            raise ConfigError(f"benchmark '{bench}' has no metric '{metric}'; use --metric with one of "
                              f"{', '.join(sorted(row))}")
        return metric
    keys = [k for k in row if k.endswith("acc")]
    if not keys:
        raise ConfigError(f"benchmark '{bench}' reports no '*acc' metric; choose one with --metric")
    return keys[0]


def shrink_report(space: SearchSpace, shrunk: ShrunkSpace, benchmark: Any = None, bench_name: str = "",
                  metric: str | None = None, full_limit: int = 20000) -> dict[str, Any]:
    """What ``nasfw shrink`` prints: sizes, pockets, diversity and (with a benchmark) true quality and τ."""
    members = shrunk.members
    before = space.size()
    comps = pockets(space, members)
    report: dict[str, Any] = {
        "size_before": before,
        "size_after": len(members),
        "reduction": round(before / len(members), 3) if before else None,
        "pockets": len(comps),
        "largest_pocket": len(comps[0]) if comps else 0,
        "diversity": diversity(space, members),
    }
    if benchmark is None:
        return report
    rows = [benchmark.query(g) for g in members]
    metric = _metric_of(rows[0], metric, bench_name)
    truth = [float(r[metric]) for r in rows]
    best = max(range(len(members)), key=lambda i: truth[i])
    report["benchmark"] = {"name": bench_name, "metric": metric,
                           "mean": round(sum(truth) / len(truth), 4), "best": truth[best],
                           "best_genotype": space.format(members[best])}
    if before is not None and before <= full_limit:
        full = [float(benchmark.query(g)[metric]) for g in space.enumerate()]
        report["benchmark"].update({"full_mean": round(sum(full) / len(full), 4), "full_best": max(full)})
        ranked = sorted(full, reverse=True)
        top = ranked[max(0, len(ranked) // 100 - 1)]
        report["benchmark"]["top1pct_recall"] = round(
            sum(t >= top for t in truth) / sum(t >= top for t in full), 4)
    scores = shrunk.info.get("member_scores")
    if isinstance(scores, list) and len(scores) == len(members):
        pairs = [(float(s), t) for s, t in zip(scores, truth) if s is not None]
        if len(pairs) >= 2:
            report["kendall_tau"] = round(kendall_tau([p[0] for p in pairs], [p[1] for p in pairs]), 4)
            report["kendall_tau_n"] = len(pairs)
    return report


# --------------------------------------------------------------------------- the command


def _pick_benchmark(registry: Any, space: SearchSpace, name: str | None) -> str | None:
    if name is not None:
        return None if name == "none" else name
    for bench in registry.names("benchmark"):
        if space.name in getattr(registry.get("benchmark", bench), "spaces", ()):
            return bench
    return None


@click.command("shrink")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML or JSON run config.")
@click.option("--space", help="Search space (e.g. nb201, darts).")
@click.option("--shrinker", help="Shrinker (e.g. lissnas).")
@click.option("--dataset", help="Dataset, for evaluators that need data (default: digits).")
@click.option("--seed", type=click.IntRange(min=0), help="Random seed.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override any setting, e.g. --set shrinker.seeds=20 (repeatable).")
@click.option("--benchmark", "bench", help="Benchmark for the true-quality report (default: the space's; 'none').")
@click.option("--metric", help="Benchmark metric (default: its first '*acc' key).")
@click.option("--out", type=click.Path(file_okay=False), help="Output directory (default runs/<time>-shrink-<names>).")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def shrink(**kw: Any) -> None:
    """Shrink a search space and report it; writes shrunk_space.json (members, info, report)."""
    from datetime import datetime

    from nasfw.config import merge_config
    from nasfw.engine import _make_data, prepare, seed_everything

    flags = {k: kw[k] for k in ("space", "shrinker", "dataset") if kw.get(k)}
    if kw.get("seed") is not None:
        flags["seed"] = kw["seed"]
    config = merge_config(kw.get("config_file"), flags, kw.get("overrides", ()))
    if config.shrinker is None:
        raise ConfigError("no shrinker given; use --shrinker NAME (e.g. lissnas)")
    out = Path(kw["out"]) if kw.get("out") else Path("runs") / (
        f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-shrink-{config.space.name}-{config.shrinker.name}")
    run = prepare(config, out_dir=out, quiet=kw["quiet"])
    reg = run.registry
    seed_everything(config.seed, config.deterministic)
    space: SearchSpace = reg.create("search_space", config.space, run.ctx)
    shrinker = reg.create("shrinker", config.shrinker, run.ctx)
    run.data = _make_data(run, reg.create("dataset", config.dataset, run.ctx))
    run.space = space
    run.progress.line(f"shrinking space '{space.name}' with '{shrinker.name}'")
    t0 = time.time()
    shrunk = shrinker.shrink(space, run)
    seconds = time.time() - t0
    if not shrunk.members:
        raise NasfwError(f"shrinker '{shrinker.name}' returned an empty space; loosen its options")
    bench_name = _pick_benchmark(reg, space, kw.get("bench") or (config.benchmark.name if config.benchmark else None))
    bench = None
    if bench_name is not None:
        ref = config.benchmark if config.benchmark is not None and config.benchmark.name == bench_name else bench_name
        bench = reg.create("benchmark", ref, run.ctx)
    report = shrink_report(space, shrunk, bench, bench_name or "", kw.get("metric"))
    report["seconds"] = round(seconds, 3)
    payload = {"space": space.name, "shrinker": shrinker.name,
               "members": [g.model_dump(mode="json") for g in shrunk.members],
               "members_str": [space.format(g) for g in shrunk.members],
               "info": shrunk.info, "report": report}
    path = run.out_dir / "shrunk_space.json"
    path.write_text(json.dumps(payload, indent=1, default=str) + "\n")
    run.tb.close()
    _print_report(report)
    click.echo(f"outputs:  {path}")


def _print_report(report: dict[str, Any]) -> None:
    div = report["diversity"]
    click.echo(f"size:     {report['size_before']} -> {report['size_after']}"
               + (f"  (x{report['reduction']} smaller)" if report.get("reduction") else ""))
    click.echo(f"pockets:  {report['pockets']} (largest {report['largest_pocket']})")
    click.echo(f"diversity: mean distance {div['mean_distance']} ({div['normalised_distance']} of max), "
               f"op coverage {div['op_coverage']}")
    b = report.get("benchmark")
    if b:
        line = f"{b['name']} {b['metric']}: mean {b['mean']:.3f}, best {b['best']:.3f}"
        if "full_mean" in b:
            line += f" (whole space: mean {b['full_mean']:.3f}, best {b['full_best']:.3f}; " \
                    f"top-1% recall {b['top1pct_recall']:.3f})"
        click.echo(line)
    if "kendall_tau" in report:
        click.echo(f"kendall-tau (shrinker score vs truth, n={report['kendall_tau_n']}): {report['kendall_tau']:.4f}")
