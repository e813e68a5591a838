"""Scoring stand-alone networks of a space with zero-cost proxies, and rank statistics against a benchmark.

Rank studies and shrinkers (LISSNAS) call :func:`score_architectures`; ``nasfw score`` wraps it.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from scipy import stats

from nasfw.components import Benchmark, SearchSpace
from nasfw.data import DataShape
from nasfw.errors import ConfigError
from nasfw.genotype import Genotype
from nasfw_freedarts.proxies import Proxy


def sample_genotypes(space: SearchSpace, n: int, seed: int) -> list[Genotype]:
    """``n`` distinct genotypes, uniformly sampled (all of them, in order, when the space has at most ``n``)."""
    size = space.size()
    if size is not None and size <= n:
        return list(space.enumerate())
    rng = random.Random(seed)
    seen: dict[Genotype, None] = {}
    tries = 0
    while len(seen) < n and tries < 50 * n:
        seen.setdefault(space.sample(rng), None)
        tries += 1
    return list(seen)


def score_architectures(space: SearchSpace, genotypes: Sequence[Genotype], proxies: dict[str, Proxy],
                        inputs: torch.Tensor, targets: torch.Tensor, shape: DataShape, seed: int = 0,
                        network_options: dict[str, Any] | None = None, device: torch.device | str = "cpu",
                        benchmark: Benchmark | None = None,
                        progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """One row per genotype: its string form, each proxy (and its seconds), and the benchmark's metrics.

    Every network is initialised from the same ``seed``, so a row does not depend on the order of the list.
    """
    rows = []
    x, y = inputs.to(device), targets.to(device)
    for i, g in enumerate(genotypes):
        torch.manual_seed(seed)
        net = space.build_network(g, shape, **(network_options or {})).to(device)
        row: dict[str, Any] = {"arch": space.format(g)}
        for name, fn in proxies.items():
            torch.manual_seed(seed)
            t0 = time.perf_counter()
            row[name] = float(fn(net, x, y))
            row[f"{name}_seconds"] = round(time.perf_counter() - t0, 4)
        if benchmark is not None:
            row.update({f"bench_{k}": v for k, v in benchmark.query(g).items()})
        rows.append(row)
        if progress is not None:
            progress(i + 1, len(genotypes))
    return rows


def rank_correlations(rows: Sequence[dict[str, Any]], target: str, names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Spearman ρ and Kendall τ of each proxy against ``target`` over rows where both are finite."""
    out = {}
    for name in names:
        pairs = [(r[name], r[target]) for r in rows
                 if r.get(name) is not None and r.get(target) is not None
                 and math.isfinite(r[name]) and math.isfinite(r[target])]
        if len(pairs) < 3:
            out[name] = {"spearman": float("nan"), "kendall": float("nan"), "n": len(pairs)}
            continue
        a, b = zip(*pairs)
        out[name] = {"spearman": float(stats.spearmanr(a, b).statistic),
                     "kendall": float(stats.kendalltau(a, b).statistic), "n": len(pairs)}
    return out


def parse_options(items: Sequence[str], what: str) -> dict[str, Any]:
    """``KEY=VALUE`` pairs with YAML values (``C=16``, ``auxiliary=false``)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what} '{item}' is not KEY=VALUE (e.g. {what} C=16)")
        out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
    return out
