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
    from nasfw.eval_cmd import reject_empty
    from nasfw.outputs import write_error
    from nasfw.plots import FORMATS, PlotResult, plot_alphas, plot_genotype
    from nasfw.plots import _op_names as op_names
    from nasfw.zoo import resolve

    reject_empty(kw, ("space", "out"))
    formats = tuple(kw["formats"]) or FORMATS
    resolved = resolve(kw["target"], kw["space"])
    run_dir = resolved.run_dir
    out = Path(kw["out"]) if kw["out"] else (run_dir if run_dir is not None else Path("."))
    res = PlotResult()
    try:
        out.mkdir(parents=True, exist_ok=True)
        res.extend(plot_genotype(resolved.genotype, out, formats))
        if run_dir is not None and (run_dir / "alphas.jsonl").exists():
            res.extend(plot_alphas(run_dir / "alphas.jsonl", out, formats, op_names(run_dir)))
    except OSError as exc:  # a read-only run directory, a full disk
        raise write_error(exc.filename or out, exc, "write the images elsewhere with --out DIR") from None
    for note in res.notes:
        click.echo(note, err=True)
    activity = _activity(run_dir)
    if kw["as_json"]:
        click.echo(json.dumps({"paths": [str(p) for p in res.paths], "notes": res.notes,
                               **({"activity": activity} if activity is not None else {})}, default=str))
        return
    for p in res.paths:
        click.echo(str(p))
    if activity:
        from nasfw.acting import activity_lines

        click.echo("what the run did (summary.json activity):")
        for line in activity_lines(activity):
            click.echo(f"  {line}")


def _activity(run_dir: Path | None) -> dict[str, Any] | None:
    """A run directory's ``activity`` block (None for a genotype, a run without one, or an unreadable summary)."""
    if run_dir is None or not (run_dir / "summary.json").is_file():
        return None
    try:
        data = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    block = data.get("activity") if isinstance(data, dict) else None
    return block if isinstance(block, dict) else None
