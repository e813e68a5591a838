"""What a shrunk space looks like: size, pockets, diversity and — scored after shrinking, when a benchmark
answers for the space — its true quality (mean, best, top-1 % recall, whether the optimum survived) and
Kendall-τ between the shrinker's own scores and the truth (only when those scores are not the truth).

Works for any space through the generic interfaces (``size``, ``enumerate``, ``distance``, ``encode``);
used by ``nasfw shrink`` and by the engine, which records it in ``summary.json`` → ``activity.shrinker``.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Sequence
from typing import Any

import torch

from nasfw.components import SearchSpace, ShrunkSpace
from nasfw.errors import ConfigError
from nasfw.genotype import Genotype

# --------------------------------------------------------------------------- generic metrics


def uses_edit_distance(space: SearchSpace) -> bool:
    """Whether the space keeps the default edit distance (then :func:`row_codes` compare in bulk)."""
    return type(space).distance is SearchSpace.distance


def row_codes(space: SearchSpace, genotype: Genotype) -> torch.Tensor:
    """The op column each decision row carries (-1: edge absent), flattened over cells in name order: the
    default edit distance between two genotypes is the number of positions where their codes differ."""
    enc = space.encode(genotype)
    parts = []
    for k in sorted(enc):
        t = enc[k]
        parts.append(torch.where(t.any(dim=1), t.argmax(dim=1), torch.full((t.shape[0],), -1)))
    return torch.cat(parts)


def distance_matrix(space: SearchSpace, members: Sequence[Genotype]) -> torch.Tensor:
    """Pairwise ``space.distance`` (n, n); vectorised over one-hot encodings when the space keeps the default
    edit distance, so thousands of members take a fraction of a second."""
    n = len(members)
    if not uses_edit_distance(space):
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


#: ``ShrunkSpace.info`` key a shrinker sets to True when its scores *are* the benchmark's (an oracle run)
SCORES_ARE_TRUTH = "scores_are_truth"


def shrink_report(space: SearchSpace, shrunk: ShrunkSpace, benchmark: Any = None, bench_name: str = "",
                  metric: str | None = None, full_limit: int = 20000) -> dict[str, Any]:
    """Sizes, pockets, diversity and (with a benchmark) the true quality of a shrunk space and τ.

    The truth is read here, after shrinking, and never by the shrinker (unless it is an oracle run, which
    sets ``info["scores_are_truth"]``; then τ is not computed, since it would be 1 by construction).
    """
    members = shrunk.members
    before = space.size()
    comps = pockets(space, members)
    report: dict[str, Any] = {
        "size_before": before,
        "size_after": len(members),
        "reduction": round(before / len(members), 3) if before else None,
        "pockets": len(comps),
        "largest_pocket": len(comps[0]) if comps else 0,
        "pocket_sizes": [len(c) for c in comps][:50],
        "diversity": diversity(space, members),
    }
    if benchmark is None:
        return report
    rows = [benchmark.query(g) for g in members]
    metric = _metric_of(rows[0], metric, bench_name)
    truth = [float(r[metric]) for r in rows]
    best = max(range(len(members)), key=lambda i: truth[i])
    b: dict[str, Any] = {"name": bench_name, "metric": metric, "mean": round(sum(truth) / len(truth), 4),
                         "best": truth[best], "best_genotype": space.format(members[best])}
    report["benchmark"] = b
    if before is not None and before <= full_limit:
        full = [float(benchmark.query(g)[metric]) for g in space.enumerate()]
        ranked = sorted(full, reverse=True)
        top = ranked[max(0, len(ranked) // 100 - 1)]
        b.update({"full_mean": round(sum(full) / len(full), 4), "full_best": ranked[0],
                  "top1pct_recall": round(sum(t >= top for t in truth) / sum(t >= top for t in full), 4),
                  "optimum_survived": truth[best] >= ranked[0]})
    scores = shrunk.info.get("member_scores")
    if isinstance(scores, list) and len(scores) == len(members):
        pairs = [(float(s), t) for s, t in zip(scores, truth) if s is not None]
        if shrunk.info.get(SCORES_ARE_TRUTH) or (pairs and all(s == t for s, t in pairs)):
            report["kendall_tau"] = None
            report["kendall_tau_note"] = ("not computed: the shrinker's scores are the benchmark's own numbers "
                                          "(an oracle run), so tau would be 1 by construction")
        elif len(pairs) >= 2:
            report["kendall_tau"] = round(kendall_tau([p[0] for p in pairs], [p[1] for p in pairs]), 4)
            report["kendall_tau_n"] = len(pairs)
    return report


def find_benchmark(registry: Any, space: SearchSpace, name: str | None = None) -> str | None:
    """The benchmark to score a shrunk space with: ``name`` (``"none"`` = no benchmark), else the first
    registered one that declares the space."""
    if name is not None:
        return None if name == "none" else name
    for bench in registry.names("benchmark"):
        if space.name in getattr(registry.get("benchmark", bench), "spaces", ()):
            return bench
    return None


__all__ = ["SCORES_ARE_TRUTH", "distance_matrix", "diversity", "find_benchmark", "kendall_tau", "max_distance",
           "pockets", "row_codes", "shrink_report", "uses_edit_distance"]
