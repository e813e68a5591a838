"""``nasfw score``: zero-cost proxies of sampled (or given) stand-alone networks of a space, with rank
correlations against the space's benchmark when one is installed and has its table."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import click
import torch

from nasfw.components import Context
from nasfw.data import BatchStream
from nasfw.errors import ConfigError, NasfwError
from nasfw.genotype import Genotype
from nasfw.registry import get_registry
from nasfw.trainer import check_network_overrides
from nasfw_freedarts.scoring import parse_options, rank_correlations, sample_genotypes, score_architectures


def _benchmark(reg: Any, space_name: str, name: str | None, probe: Genotype | None) -> Any:
    """The named benchmark, or the first installed one for the space that answers a probe query."""
    if name is not None:
        return reg.create("benchmark", name)
    for cand in reg.names("benchmark"):
        cls = reg.get("benchmark", cand)
        if space_name not in getattr(cls, "spaces", ()):
            continue
        try:
            bench = reg.create("benchmark", cand)
            if probe is not None:
                bench.query(probe)
            return bench
        except NasfwError:
            continue
    return None


@click.command("score")
@click.option("--space", default="nb201", show_default=True, help="Search space whose networks are scored.")
@click.option("--set", "space_sets", multiple=True, metavar="KEY=VALUE",
              help="Space option, e.g. --set init_channels=8.")
@click.option("--proxy", "proxy_names", multiple=True, help="Proxy (repeatable; default: all installed).")
@click.option("--archs", type=click.IntRange(min=1), default=100, show_default=True, help="Architectures to sample.")
@click.option("--genotype", "genotype_files", multiple=True, type=click.Path(dir_okay=False),
              help="Score these genotype.json files instead of sampling (repeatable).")
@click.option("--dataset", default="digits", show_default=True, help="Dataset of the scoring batch.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where the dataset files are.")
@click.option("--batch-size", type=click.IntRange(min=2), default=64, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--net", "net_sets", multiple=True, metavar="KEY=VALUE", help="build_network option, e.g. --net C=16.")
@click.option("--benchmark", "bench_name", help="Benchmark to correlate with (default: one for the space, if any).")
@click.option("--no-benchmark", is_flag=True, help="Do not look up ground truth.")
@click.option("--metric", help="Benchmark metric to correlate (default: the first *_test_acc).")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the rows to a .csv or .json file.")
@click.option("--device", default="cpu", show_default=True)
def score(space: str, space_sets: tuple[str, ...], proxy_names: tuple[str, ...], archs: int,
          genotype_files: tuple[str, ...], dataset: str, data_dir: str | None, batch_size: int, seed: int,
          net_sets: tuple[str, ...], bench_name: str | None, no_benchmark: bool, metric: str | None,
          out: str | None, device: str) -> None:
    """Score architectures with zero-cost proxies (zero-cost-nas definitions) on one batch."""
    reg = get_registry()
    ctx = Context(registry=reg, device=torch.device(device), seed=seed)
    sp = reg.create("search_space", {"name": space, "params": parse_options(space_sets, "--set")}, ctx)
    net_options = parse_options(net_sets, "--net")
    check_network_overrides(sp, {f"network.{k}": v for k, v in net_options.items()}, "--net ")
    names = list(proxy_names) or reg.names("proxy")
    proxies = {n: reg.get("proxy", n) for n in names}
    if genotype_files:
        genotypes = [Genotype.load(f) for f in genotype_files]
        for g in genotypes:
            sp.validate_genotype(g)
    else:
        genotypes = sample_genotypes(sp, archs, seed)
    params: dict[str, Any] = {"data_dir": data_dir} if data_dir else {}
    splits = reg.create("dataset", {"name": dataset, "params": params}, ctx).splits(seed)
    x, y = BatchStream(splits.train, batch_size, seed=seed).next()
    bench = None if no_benchmark else _benchmark(reg, space, bench_name, genotypes[0] if genotypes else None)

    with click.progressbar(length=len(genotypes), label="scoring", file=sys.stderr) as bar:
        rows = score_architectures(sp, genotypes, proxies, x, y, splits.shape, seed=seed,
                                   network_options=net_options, device=device,
                                   benchmark=bench, progress=lambda i, n: bar.update(1))
    if out:
        path = Path(out)
        if path.suffix == ".json":
            path.write_text(json.dumps(rows, indent=1) + "\n")
        else:
            with path.open("w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["arch"])
                w.writeheader()
                w.writerows(rows)
    click.echo(f"scored {len(rows)} architectures of '{space}' with {', '.join(names)} "
               f"({dataset}, batch {batch_size}, seed {seed})")
    if bench is None or not rows:
        for r in rows[:20]:
            click.echo(r["arch"] + "  " + "  ".join(f"{n}={r[n]:.4g}" for n in names))
        return
    keys = [k for k in rows[0] if k.startswith("bench_")]
    target = f"bench_{metric}" if metric else next((k for k in keys if k.endswith("_test_acc")), None)
    if target is None or target not in rows[0]:
        raise ConfigError(f"benchmark has no metric '{metric}'; choose one of "
                          f"{', '.join(k[len('bench_'):] for k in keys)}")
    corr = rank_correlations(rows, target, names)
    click.echo(f"rank correlation with {target[len('bench_'):]} over {len(rows)} architectures:")
    click.echo(f"{'proxy':<12} {'spearman':>9} {'kendall':>9} {'n':>6}")
    for n, c in corr.items():
        click.echo(f"{n:<12} {c['spearman']:>9.3f} {c['kendall']:>9.3f} {c['n']:>6}")
