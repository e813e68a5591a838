"""``nasfw show RUN_DIR|GENOTYPE``: cell diagrams (and, for a run, the α evolution) as PNG and SVG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


@click.command("show")
@click.argument("target")
@click.option("--space", help="Space that parses the genotype string (e.g. nb201).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Where to write the images (default: the run directory, or the current directory).")
@click.option("--format", "formats", multiple=True, type=click.Choice(["png", "svg", "pdf"]),
              help="Image formats (default: png and svg; repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the written paths as JSON.")
def show_command(**kw: Any) -> None:
    """Draw the cells of TARGET (a run directory, zoo name, genotype.json or, with --space, a string)."""
    from nasfw.plots import FORMATS, PlotResult, plot_alphas, plot_genotype
    from nasfw.plots import _op_names as op_names
    from nasfw.zoo import resolve

    formats = tuple(kw["formats"]) or FORMATS
    resolved = resolve(kw["target"], kw["space"])
    run_dir = resolved.run_dir
    out = Path(kw["out"]) if kw["out"] else (run_dir if run_dir is not None else Path("."))
    out.mkdir(parents=True, exist_ok=True)
    res = PlotResult()
    res.extend(plot_genotype(resolved.genotype, out, formats))
    if run_dir is not None and (run_dir / "alphas.jsonl").exists():
        res.extend(plot_alphas(run_dir / "alphas.jsonl", out, formats, op_names(run_dir)))
    for note in res.notes:
        click.echo(note, err=True)
    if kw["as_json"]:
        click.echo(json.dumps({"paths": [str(p) for p in res.paths], "notes": res.notes}))
        return
    for p in res.paths:
        click.echo(str(p))
