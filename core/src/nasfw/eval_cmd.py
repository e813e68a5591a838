"""``nasfw eval GENOTYPE``: train a genotype's stand-alone network from scratch under a named protocol.

GENOTYPE is a zoo name (``darts-v2``), a ``genotype.json``, a run directory, or — with ``--space`` — the
space's string form (an NB201 cell string). ``--dry-run --json`` prints the evaluation network's parameters
(auxiliary head excluded) and multiply-adds at the protocol's input size without loading data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


def reject_empty(kw: dict[str, Any], keys: tuple[str, ...]) -> None:
    """``--optimizer ''`` is a mistake, not "the default": an empty name or path is a usage error."""
    for key in keys:
        if kw.get(key) is not None and not str(kw[key]).strip():
            what = "an empty path" if "dir" in key or key == "out" else "an empty name (see 'nasfw plugins')"
            raise click.BadParameter(what, param_hint=f"'--{key.replace('_', '-')}'")


@click.command("eval")
@click.argument("genotype", required=False)
@click.option("--protocol", "protocol_name",
              help="Training protocol: darts-cifar, darts-imagenet, nb201, quick (CPU check), or a plugin's "
                   "(default: the genotype's space's own, e.g. nb201 for NB201 cells, darts-cifar for DARTS cells).")
@click.option("--space", help="Space that parses/builds the genotype (needed for string forms, e.g. nb201).")
@click.option("--dataset", help="Dataset instead of the protocol's (e.g. cifar100, svhn).")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where the dataset files are.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a protocol field, e.g. --set epochs=50 --set network.C=16 (repeatable).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--out", type=click.Path(file_okay=False), help="Evaluation directory (default runs/eval-<time>-<name>).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False),
              help="Continue the evaluation in this directory.")
@click.option("--dry-run", is_flag=True, help="Only build the network and count params and multiply-adds.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def eval_command(**kw: Any) -> None:
    """Train GENOTYPE from scratch (a zoo name, genotype.json, run directory or, with --space, a string)."""
    from nasfw.distributed import init_from_env
    from nasfw.protocols import apply_overrides, get_protocol
    from nasfw.registry import get_registry
    from nasfw.trainer import (
        check_network_overrides,
        default_protocol,
        dry_run,
        evaluate_genotype,
        make_space,
        resume_evaluation,
    )
    from nasfw.zoo import resolve

    reject_empty(kw, ("protocol_name", "space", "dataset", "data_dir", "device", "out", "resume_dir"))
    if kw["resume_dir"]:
        if kw["genotype"] or kw["overrides"] or kw["dataset"] or kw["data_dir"] or kw["dry_run"]:
            raise click.UsageError("--resume continues an evaluation with its saved settings; drop the other options")
        summary = resume_evaluation(kw["resume_dir"], device=kw["device"], quiet=kw["quiet"] or kw["as_json"])
        if init_from_env(kw["device"]).is_main:
            _report(summary, kw["as_json"], Path(kw["resume_dir"]))
        return
    if not kw["genotype"]:
        raise click.UsageError("missing GENOTYPE (a zoo name such as darts-v2, a genotype.json, or a run directory)")
    reg = get_registry()
    resolved = resolve(kw["genotype"], kw["space"], reg)
    space = make_space(resolved.genotype, reg, resolved.space)
    chosen = "" if kw["protocol_name"] else f" (space {space.name}'s default protocol; choose another with --protocol)"
    kw["protocol_name"] = kw["protocol_name"] or default_protocol(space)
    protocol = get_protocol(kw["protocol_name"], reg)
    if kw["dataset"] or kw["data_dir"]:
        name = kw["dataset"] or protocol.dataset.name
        params = dict(protocol.dataset.params) if name == protocol.dataset.name else {}
        if kw["data_dir"]:
            params["data_dir"] = kw["data_dir"]
        protocol = apply_overrides(protocol, {"dataset": {"name": name, "params": params}})
    protocol = apply_overrides(protocol, list(kw["overrides"]), f"protocol '{kw['protocol_name']}'")
    check_network_overrides(space, list(kw["overrides"]))
    if kw["dry_run"]:
        result = dry_run(resolved.genotype, protocol, reg, resolved.space)
        if kw["as_json"]:
            click.echo(json.dumps(result))
        else:
            click.echo(f"{kw['genotype']} under '{kw['protocol_name']}': {result['params'] / 1e6:.3f}M params "
                       f"(auxiliary head excluded), {result['flops'] / 1e6:.1f}M multiply-adds at input "
                       f"{'x'.join(map(str, protocol.input_shape))}{chosen}")
        return
    dist = init_from_env(kw["device"])  # torchrun: every rank trains into rank 0's directory
    out = Path(dist.broadcast_object(str(kw["out"] or _default_out(kw["genotype"], kw["protocol_name"]))))
    if not kw["quiet"] and not kw["as_json"] and dist.is_main:
        click.echo(f"training {resolved.origin} under '{kw['protocol_name']}'{chosen} in {out}", err=True)
    summary = evaluate_genotype(resolved.genotype, protocol, out, registry=reg, device=kw["device"], seed=kw["seed"],
                                space=resolved.space, quiet=kw["quiet"] or kw["as_json"],
                                protocol_name=kw["protocol_name"])
    if dist.is_main:
        _report(summary, kw["as_json"], out)


def _default_out(text: str, protocol: str) -> Path:
    from datetime import datetime

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    name = Path(text).name if Path(text).exists() else text
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:40] or "genotype"
    return Path("runs") / f"eval-{stamp}-{safe}-{protocol}"


def _report(summary: dict[str, Any], as_json: bool, out: Path) -> None:
    if as_json:
        click.echo(json.dumps(summary, default=str))
        return
    if not summary.get("finished"):
        click.echo(f"stopped after {summary['epochs_done']}/{summary['epochs']} epochs; continue with "
                   f"nasfw eval --resume {out}")

    def acc(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    click.echo(f"params: {summary['params'] / 1e6:.3f}M  mult-adds: {summary['flops'] / 1e6:.1f}M  "
               f"best test acc: {acc(summary.get('best_test_acc'))}  "
               f"final test acc: {acc(summary.get('final_test_acc'))}")
    click.echo(f"outputs: {out}  (summary.json, metrics.jsonl, checkpoint.pt)")
