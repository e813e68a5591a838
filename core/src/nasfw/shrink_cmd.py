"""``nasfw shrink``: run a shrinker on a space on its own and report what the shrunk space looks like.

The report (:func:`nasfw.shrinkage.shrink_report`): size before and after, the number of pockets (connected
components under the space's one-step neighbourhood), diversity (mean pairwise distance, op coverage), and,
when a benchmark answers for the space — read after shrinking, never by the shrinker — the true mean and best
inside the shrunk space, the top-1 % recall, whether the optimum survived, and Kendall-τ between the
shrinker's own scores (``info["member_scores"]``) and the truth (not for an oracle run).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from nasfw.components import SearchSpace
from nasfw.errors import ConfigError, NasfwError
from nasfw.shrinkage import (  # noqa: F401  (re-exported: the metrics lived here first)
    distance_matrix,
    diversity,
    find_benchmark,
    kendall_tau,
    max_distance,
    pockets,
    shrink_report,
)

# --------------------------------------------------------------------------- the command


@click.command("shrink")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML or JSON run config.")
@click.option("--space", help="Search space (e.g. nb201, darts).")
@click.option("--shrinker", help="Shrinker (e.g. lissnas).")
@click.option("--dataset", help="Dataset, for evaluators that need data (default: digits).")
@click.option("--seed", type=click.IntRange(min=0), help="Random seed.")
@click.option("--preset", help="Apply a named preset of the space and shrinker (paper, tiny), under --set.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override any setting, e.g. --set shrinker.seeds=20 (repeatable).")
@click.option("--benchmark", "bench", help="Benchmark for the true-quality report (default: the space's; 'none').")
@click.option("--metric", help="Benchmark metric (default: its first '*acc' key).")
@click.option("--out", type=click.Path(file_okay=False), help="Output directory (default runs/<time>-shrink-<names>).")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def shrink(**kw: Any) -> None:
    """Shrink a search space and report it; writes shrunk_space.json (members, info, report)."""
    from datetime import datetime

    from nasfw.engine import _make_data, prepare, seed_everything
    from nasfw.presets import describe, merge_with_preset

    flags = {k: kw[k] for k in ("space", "shrinker", "dataset") if kw.get(k)}
    if kw.get("seed") is not None:
        flags["seed"] = kw["seed"]
    config, applied = merge_with_preset(kw.get("preset"), kw.get("config_file"), flags, kw.get("overrides", ()))
    if config.preset and not kw["quiet"]:
        from nasfw.registry import get_registry

        click.echo("\n".join(describe(config.preset, applied, config, get_registry())), err=True)
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
    plan = shrinker.plan(space)  # a shrinker that cannot act refuses here (exit 2), before any work
    run.plan["shrinker"] = plan
    if plan:
        run.progress.line(f"plan: shrinker {shrinker.name}: " + ", ".join(f"{k}={v}" for k, v in plan.items()))
    run.progress.line(f"shrinking space '{space.name}' with '{shrinker.name}'")
    t0 = time.time()
    shrunk = shrinker.shrink(space, run)
    seconds = time.time() - t0
    if not shrunk.members:
        raise NasfwError(f"shrinker '{shrinker.name}' returned an empty space; loosen its options")
    bench_name = find_benchmark(reg, space, kw.get("bench") or (config.benchmark.name if config.benchmark else None))
    bench = None
    if bench_name is not None:
        ref = config.benchmark if config.benchmark is not None and config.benchmark.name == bench_name else bench_name
        bench = reg.create("benchmark", ref, run.ctx)
    report = shrink_report(space, shrunk, bench, bench_name or "", kw.get("metric"))
    report["seconds"] = round(seconds, 3)
    payload = {"space": space.name, "shrinker": shrinker.name, "plan": plan,
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
        if "optimum_survived" in b:
            click.echo(f"optimum {'kept' if b['optimum_survived'] else 'lost'} (whole-space best "
                       f"{b['full_best']:.3f}; best kept {b['best_genotype']})")
    if report.get("kendall_tau") is not None:
        click.echo(f"kendall-tau (shrinker score vs truth, n={report['kendall_tau_n']}): {report['kendall_tau']:.4f}")
    elif "kendall_tau_note" in report:
        click.echo(f"kendall-tau: {report['kendall_tau_note']}")
