"""Cell diagrams and architecture-weight plots of runs and genotypes (PNG and SVG).

Cells are drawn in the DARTS convention (``cnn/visualize.py`` of the reference code): left to right, input
nodes ``c_{k-2}``, ``c_{k-1}`` in green, intermediate nodes numbered from 0 in blue, the cell output
``c_{k}`` in yellow, each edge labelled with its operation. Graphviz's ``dot`` program draws them when it is
installed; otherwise a matplotlib drawing of the same graph is made and a one-line notice says so.
The α plots show, for every edge of every cell type, the mixing weight of each candidate op per epoch
(from ``alphas.jsonl``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasfw.errors import ConfigError, GenotypeError
from nasfw.genotype import Genotype

FORMATS = ("png", "svg")
NO_DOT = ("graphviz 'dot' program not found: cell diagrams drawn with matplotlib instead "
          "(install graphviz, e.g. 'apt install graphviz', for the DARTS-style rendering)")
COLORS = {"input": "darkseagreen2", "node": "lightblue", "output": "palegoldenrod"}
MPL_COLORS = {"input": "#b4eeb4", "node": "#add8e6", "output": "#eee8aa"}


@dataclass
class PlotResult:
    """Files written, and notices for the user (e.g. that ``dot`` is missing)."""

    paths: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def extend(self, other: PlotResult) -> None:
        self.paths += other.paths
        self.notes += [n for n in other.notes if n not in self.notes]


def dot_available() -> bool:
    return shutil.which("dot") is not None


@dataclass
class CellGraph:
    """A cell as a graph: named nodes with a role, and labelled edges (op) between them."""

    nodes: list[tuple[str, str]]  # (label, role)
    edges: list[tuple[str, str, str]]  # (src label, dst label, op)


def cell_graph(genotype: Genotype, cell: str, concat: Sequence[int] | None = None) -> CellGraph:
    """The drawable graph of one cell type. Nodes that are never a target are inputs; the output gathers
    ``concat`` (default: ``extra['<cell>_concat']``, else every intermediate node when the cell has two inputs
    — the DARTS concatenation — else the last node)."""
    if cell not in genotype.cells:
        raise GenotypeError(f"genotype has no cell '{cell}' (cells: {', '.join(sorted(genotype.cells))})")
    edges = [e for e in genotype.cells[cell] if e.op != "none"]
    targets = sorted({e.node for e in genotype.cells[cell]})
    inputs = sorted({e.input for e in genotype.cells[cell]} - set(targets))
    if not inputs:
        inputs = [0]
    names = {i: f"c_{{k-{len(inputs) - j}}}" for j, i in enumerate(inputs)}
    for j, t in enumerate(targets):
        names[t] = str(j)
    nodes = [(names[i], "input") for i in inputs] + [(names[t], "node") for t in targets]
    if concat is None:
        extra = genotype.extra.get(f"{cell}_concat")
        concat = list(extra) if isinstance(extra, list) else (targets if len(inputs) >= 2 else targets[-1:])
    out: list[tuple[str, str, str]] = [(names[e.input], names[e.node], e.op) for e in edges]
    nodes.append(("c_{k}", "output"))
    out += [(names[n], "c_{k}", "") for n in concat if n in names]
    return CellGraph(nodes, out)


def _render_dot(graph: CellGraph, stem: Path, formats: Sequence[str]) -> list[Path]:
    import graphviz

    g = graphviz.Digraph(format=formats[0], engine="dot",
                         edge_attr={"fontsize": "20", "fontname": "times"},
                         node_attr={"style": "filled", "shape": "rect", "align": "center", "fontsize": "20",
                                    "height": "0.5", "width": "0.5", "penwidth": "2", "fontname": "times"})
    g.attr(rankdir="LR")
    for label, role in graph.nodes:
        g.node(label, fillcolor=COLORS[role])
    for src, dst, op in graph.edges:
        g.edge(src, dst, label=op, fillcolor="gray")
    paths = []
    for fmt in formats:
        g.format = fmt
        paths.append(Path(g.render(filename=stem.name, directory=str(stem.parent), cleanup=True)))
    return paths


def _render_mpl(graph: CellGraph, stem: Path, formats: Sequence[str], title: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    inputs = [n for n, r in graph.nodes if r == "input"]
    inner = [n for n, r in graph.nodes if r == "node"]
    pos: dict[str, tuple[float, float]] = {}
    for j, n in enumerate(inputs):
        pos[n] = (0.0, (len(inputs) - 1) / 2 - j)
    for j, n in enumerate(inner):
        pos[n] = (1.0 + j, 0.9 * (1 if j % 2 else -1) if len(inner) > 1 else 0.0)
    pos["c_{k}"] = (len(inner) + 1.0, 0.0)
    fig, ax = plt.subplots(figsize=(2.2 * (len(inner) + 2), 4.5))
    ax.set_xlim(-0.6, len(inner) + 1.6)
    ax.set_ylim(-1.8, 1.8)
    to_disp, to_data = ax.transData.transform, ax.transData.inverted().transform
    for k, (src, dst, op) in enumerate(graph.edges):
        rad = (0.25 if (k % 2) else -0.25) if op else 0.0
        ax.annotate("", xy=pos[dst], xytext=pos[src],
                    arrowprops=dict(arrowstyle="-|>", color="gray", lw=1.5, shrinkA=18, shrinkB=18,
                                    connectionstyle=f"arc3,rad={rad}"))
        if op:
            # matplotlib bends arc3 in display space: the curve's midpoint is the chord's midpoint moved
            # by rad/2 times the chord, perpendicular to it
            (x0, y0), (x1, y1) = to_disp(pos[src]), to_disp(pos[dst])
            mx, my = (x0 + x1) / 2 + rad * (y1 - y0) / 2, (y0 + y1) / 2 - rad * (x1 - x0) / 2
            tx, ty = to_data((mx, my))
            ax.text(tx, ty, op, fontsize=8, ha="center", va="center", family="serif",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
    for label, role in graph.nodes:
        x, y = pos[label]
        text = f"${label}$" if label.startswith("c_") else label
        ax.text(x, y, text, ha="center", va="center", fontsize=12, family="serif",
                bbox=dict(boxstyle="square,pad=0.4", fc=MPL_COLORS[role], ec="black", lw=2))
    ax.set_title(title, family="serif")
    ax.axis("off")
    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        _savefig(fig, path, format=fmt, bbox_inches="tight", dpi=120)
        paths.append(path)
    plt.close(fig)
    return paths


def _savefig(fig: Any, path: Path, **kw: Any) -> None:
    """Save through a temporary file and a rename: a full disk leaves the old image, not half a new one."""
    import os

    from nasfw.outputs import remove_quietly

    tmp = path.with_name(path.name + ".tmp")
    try:
        fig.savefig(tmp, **kw)
        os.replace(tmp, path)
    except OSError as exc:
        remove_quietly(tmp)
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def plot_cell(genotype: Genotype, cell: str, stem: str | Path, formats: Sequence[str] = FORMATS,
              force_matplotlib: bool = False) -> PlotResult:
    """Draw one cell type to ``stem.<fmt>`` for each format."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    graph = cell_graph(genotype, cell)
    res = PlotResult()
    if dot_available() and not force_matplotlib:
        try:
            res.paths += _render_dot(graph, stem, formats)
            return res
        except ImportError:
            res.notes.append("the graphviz Python package is missing (pip install 'nasfw[viz]'): cell diagrams "
                             "drawn with matplotlib instead")
    elif not force_matplotlib:
        res.notes.append(NO_DOT)
    res.paths += _render_mpl(graph, stem, formats, f"{cell} cell")
    return res


def plot_genotype(genotype: Genotype, out_dir: str | Path, formats: Sequence[str] = FORMATS,
                  prefix: str = "cell_") -> PlotResult:
    """``cell_<type>.png/.svg`` for every cell type of the genotype."""
    res = PlotResult()
    for cell in genotype.cells:
        res.extend(plot_cell(genotype, cell, Path(out_dir) / f"{prefix}{cell}", formats))
    return res


def read_alphas(path: str | Path) -> tuple[list[int], dict[str, list[list[list[float]]]]]:
    """Epochs and, per architecture tensor, the (epochs, rows, ops) mixing weights of ``alphas.jsonl``."""
    path = Path(path)
    epochs: list[int] = []
    series: dict[str, list[list[list[float]]]] = {}
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise ConfigError(f"{path} not found (no architecture weights were logged in this run)") from None
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            weights = rec.get("weights") or rec["alphas"]
            epochs.append(int(rec["epoch"]))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise ConfigError(f"{path}: line {i + 1} is not an architecture-weight record") from None
        for name, table in weights.items():
            series.setdefault(name, []).append(table)
    return epochs, series


def _op_names(run_dir: Path) -> dict[str, list[list[str]]]:
    """Column names per tensor and row, from the run's space (empty when it cannot be rebuilt)."""
    try:
        import yaml

        from nasfw.registry import get_registry

        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
        space = get_registry().create("search_space", cfg["space"])
        return {k: [list(e.ops) for e in v] for k, v in space.decisions().items()}
    except Exception:
        return {}


def plot_alphas(alphas_path: str | Path, out_dir: str | Path, formats: Sequence[str] = FORMATS,
                op_names: dict[str, list[list[str]]] | None = None) -> PlotResult:
    """``alphas_<tensor>.png/.svg``: one panel per edge, one line per op, weight against epoch."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    epochs, series = read_alphas(alphas_path)
    res = PlotResult()
    if not epochs:
        res.notes.append(f"{alphas_path} is empty: no architecture-weight plot")
        return res
    for name, per_epoch in series.items():
        rows = len(per_epoch[0])
        cols = min(rows, 5)
        nrow = -(-rows // cols)
        fig, axes = plt.subplots(nrow, cols, figsize=(3.2 * cols, 2.4 * nrow), squeeze=False, sharex=True)
        names = (op_names or {}).get(name, [])
        for r in range(rows):
            ax = axes[r // cols][r % cols]
            k = len(per_epoch[0][r])
            labels = names[r] if r < len(names) else [f"op{c}" for c in range(k)]
            for c in range(k):
                ax.plot(epochs, [float(t[r][c]) for t in per_epoch], label=labels[c] if c < len(labels) else f"op{c}")
            ax.set_title(f"edge {r}", fontsize=9)
            ax.tick_params(labelsize=7)
        for r in range(rows, nrow * cols):
            axes[r // cols][r % cols].axis("off")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 8), fontsize=8)
        fig.suptitle(f"architecture weights: {name} (x: epoch)")
        fig.tight_layout(rect=(0, 0.06, 1, 0.97))
        for fmt in formats:
            path = Path(out_dir) / f"alphas_{name}.{fmt}"
            _savefig(fig, path, format=fmt, dpi=100)
            res.paths.append(path)
        plt.close(fig)
    return res


def plot_run(run_dir: str | Path, formats: Sequence[str] = FORMATS) -> PlotResult:
    """Cell diagrams of the run's genotype and the α evolution, written into the run directory."""
    run_dir = Path(run_dir)
    res = PlotResult()
    if (run_dir / "genotype.json").exists():
        res.extend(plot_genotype(Genotype.load(run_dir / "genotype.json"), run_dir, formats))
    if (run_dir / "alphas.jsonl").exists():
        res.extend(plot_alphas(run_dir / "alphas.jsonl", run_dir, formats, _op_names(run_dir)))
    if not res.paths:
        raise ConfigError(f"{run_dir} has neither genotype.json nor alphas.jsonl to plot")
    return res


def _jsonable(res: PlotResult) -> dict[str, Any]:
    return {"paths": [str(p) for p in res.paths], "notes": res.notes}


__all__ = ["NO_DOT", "PlotResult", "cell_graph", "dot_available", "plot_alphas", "plot_cell", "plot_genotype",
           "plot_run", "read_alphas"]
