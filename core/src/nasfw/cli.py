"""The ``nasfw`` command. Bad input ends in one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from nasfw import __version__
from nasfw.config import MAX_BATCH_SIZE, MAX_EPOCHS, MAX_SEED, RunConfig, dump_config, parse_override
from nasfw.errors import NasfwError
from nasfw.eval_cmd import eval_command, reject_empty
from nasfw.outputs import is_environment_error, write_error
from nasfw.registry import KINDS, get_registry
from nasfw.show_cmd import show_command
from nasfw.shrink_cmd import shrink as shrink_command


def _run_options(fn: Callable) -> Callable:
    opts = [
        click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML or JSON run config."),
        click.option("--space", help="Search space (e.g. darts, nb201, s1)."),
        click.option("--optimizer", help="Optimizer (e.g. darts, darts-2nd, zarts-mgs, none)."),
        click.option("--selector", help="Selector (e.g. magnitude, perturb, synflow)."),
        click.option("--shrinker", help="Search-space shrinker (e.g. lissnas); none by default."),
        click.option("--dataset", help="Dataset (digits, cifar10, cifar100, svhn, image-folder, ...)."),
        click.option("--data-dir", type=click.Path(file_okay=False), help="Where the dataset files are."),
        click.option("--epochs", type=click.IntRange(0, MAX_EPOCHS), help="Search epochs."),
        click.option("--batch-size", type=click.IntRange(1, MAX_BATCH_SIZE), help="Search batch size."),
        click.option("--seed", type=click.IntRange(0, MAX_SEED), help="Random seed (0 to 2**63 - 1)."),
        click.option("--device", help="auto, cpu, cuda, cuda:N."),
        click.option("--preset", help="Apply a named preset of the chosen components (paper: the papers' protocols; "
                                      "tiny: the smallest settings that still act), under your flags and --set."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override any setting, e.g. --set optimizer.arch_lr=1e-3 (repeatable)."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _flags(kw: dict[str, Any]) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    reject_empty(kw, ("space", "optimizer", "selector", "shrinker", "dataset", "device", "data_dir", "config_file",
                      "out", "resume_dir"))
    for key in ("space", "optimizer", "selector", "shrinker", "dataset"):
        if kw.get(key):
            flags[key] = kw[key]
    if kw.get("data_dir"):
        flags["dataset.params.data_dir"] = kw["data_dir"]
    if kw.get("epochs") is not None:
        flags["search.epochs"] = kw["epochs"]
    if kw.get("batch_size") is not None:
        flags["search.batch_size"] = kw["batch_size"]
    if kw.get("seed") is not None:
        flags["seed"] = kw["seed"]
    if kw.get("device"):
        flags["device"] = kw["device"]
    return flags


def _config_from(kw: dict[str, Any]) -> RunConfig:
    return _config_and_preset(kw)[0]


def _config_and_preset(kw: dict[str, Any]) -> tuple[RunConfig, list[str]]:
    """The run config from file, flags, ``--set`` and ``--preset``; and, with a preset, the lines that say what
    it set and where each value comes from."""
    from nasfw.presets import describe, merge_with_preset

    flags = _flags(kw)
    if "dataset.params.data_dir" in flags and "dataset" in flags:
        flags["dataset"] = {"name": flags["dataset"], "params": {"data_dir": flags.pop("dataset.params.data_dir")}}
    config, applied = merge_with_preset(kw.get("preset"), kw.get("config_file"), flags, kw.get("overrides", ()))
    if config.preset is None:
        return config, []
    return config, describe(config.preset, applied, config, get_registry())


def _resolved(config: RunConfig) -> RunConfig:
    from nasfw.engine import validate_config

    return validate_config(config, get_registry())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nasfw")
def cli() -> None:
    """nasfw: plugin-based neural architecture search on PyTorch."""


@cli.command()
@_run_options
@click.option("--out", type=click.Path(file_okay=False), help="Run directory (default runs/<time>-<names>).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), help="Continue the run in this directory.")
@click.option("--force", is_flag=True,
              help="With --resume: continue even though RUN_DIR/config.yaml was edited since the checkpoint "
                   "(the edited settings apply from the checkpoint on).")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def run(**kw: Any) -> None:
    """Search an architecture: (shrink) → supernet → optimizer → selector → genotype."""
    from nasfw.engine import resume_search, run_search

    if kw["force"] and not kw["resume_dir"]:
        raise click.UsageError("--force only applies to --resume (it accepts an edited config.yaml)")
    if kw["resume_dir"]:
        given = {k: v for k, v in _flags(kw).items()}
        if given or kw.get("config_file") or kw.get("overrides") or kw.get("out"):
            raise click.UsageError("--resume continues a run with its saved config; drop the other options "
                                   "(edit RUN_DIR/config.yaml and add --force to change a setting)")
        run_obj, summary = resume_search(kw["resume_dir"], quiet=kw["quiet"], force=kw["force"])
    else:
        config, preset_lines = _config_and_preset(kw)
        if preset_lines and not kw["quiet"]:
            click.echo("\n".join(preset_lines), err=True)
        run_obj, summary = run_search(config, out_dir=Path(kw["out"]) if kw["out"] else None, quiet=kw["quiet"])
    if not run_obj.dist.is_main:  # torchrun: rank 0 reports
        return
    click.echo(f"genotype: {summary['genotype_str']}")
    if "benchmark" in summary:
        click.echo("benchmark: " + json.dumps(summary["benchmark"]))
    from nasfw.acting import activity_lines

    for line in activity_lines(summary.get("activity", {})):
        click.echo(f"activity: {line}")
    click.echo(f"outputs:  {run_obj.out_dir}  (genotype.json, summary.json, metrics.jsonl, checkpoint.pt)")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of components.")
def plugins(as_json: bool) -> None:
    """List installed components and plugins that failed to load."""
    reg = get_registry()
    comps = reg.all()
    if as_json:
        out = [c.as_dict() for c in comps]
        out += [{"kind": "failed", "name": f.plugin, "distribution": f.distribution, "version": "",
                 "error": f.error} for f in reg.failures]
        click.echo(json.dumps(out, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="nasfw components")
    for col in ("kind", "name", "distribution", "version", "description"):
        table.add_column(col)
    for c in comps:
        table.add_row(c.kind, c.name, c.distribution, c.version, c.description)
    console = Console(width=max(120, Console().width))
    console.print(table)
    for f in reg.failures:
        console.print(f"[red]failed plugin[/red] {f.plugin} ({f.distribution}): {f.error}")


@cli.group()
def config() -> None:
    """Show, validate or describe run configurations."""


@config.command("show")
@_run_options
def config_show(**kw: Any) -> None:
    """Print the fully resolved config (every component's params filled in) as YAML; with --preset, first (as
    YAML comments) every value the preset set and its source."""
    config, preset_lines = _config_and_preset(kw)
    text = dump_config(_resolved(config))
    if preset_lines:
        text = "".join(f"# {line}\n" for line in preset_lines) + text
    click.echo(text, nl=False)


@config.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
def config_validate(file: str) -> None:
    """Validate a config file, including every component's params."""
    from nasfw.presets import merge_with_preset

    _resolved(merge_with_preset(None, file)[0])
    click.echo(f"{file}: valid")


@config.command("schema")
@click.option("--kind", type=click.Choice(sorted(KINDS)), help="Schema of one component's params instead.")
@click.option("--name", help="Component name (with --kind).")
def config_schema(kind: str | None, name: str | None) -> None:
    """Print the JSON schema of the run config, or of one component's params."""
    if kind or name:
        if not (kind and name):
            raise click.UsageError("--kind and --name go together")
        _, cls, _ = get_registry().resolve(kind, name)
        click.echo(json.dumps(cls.Config.model_json_schema(), indent=2))
        return
    click.echo(json.dumps(RunConfig.model_json_schema(), indent=2))


@cli.command()
@click.argument("sweep_file", metavar="SWEEP")
@click.option("--backend", type=click.Choice(["auto", "ray", "local"]), default="auto", show_default=True,
              help="ray: Ray tasks (local instance or --address); local: subprocesses here; auto: ray if installed.")
@click.option("--address", help="Address of an existing Ray cluster (e.g. auto, ray://head:10001).")
@click.option("--out", type=click.Path(file_okay=False), help="Sweep directory (default runs/sweep-<time>-<name>).")
@click.option("--parallel", type=click.IntRange(min=1), default=1, show_default=True,
              help="local backend: trials at a time.")
@click.option("--cpus-per-trial", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="ray backend: CPUs each trial reserves.")
@click.option("--gpus-per-trial", type=click.FloatRange(min=0), default=None,
              help="ray backend: GPUs per trial (default: 1 when the cluster has GPUs, else 0).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a setting in every trial.")
@click.option("--timeout", type=click.FloatRange(min=1), help="Seconds before a trial is stopped and reported failed.")
@click.option("--dry-run", is_flag=True, help="Print the trials and their commands; run nothing.")
@click.option("--quiet", "-q", is_flag=True, help="No per-trial progress lines.")
def sweep(**kw: Any) -> None:
    """Run a grid of searches (SWEEP: a sweep YAML or a shipped name such as robustdarts) into one table."""
    from datetime import datetime

    from nasfw.sweep import expand, load_sweep, print_table, run_sweep

    spec, path = load_sweep(kw["sweep_file"])
    for text in kw["overrides"]:
        parse_override(text)
    out = Path(kw["out"]) if kw["out"] else Path("runs") / f"sweep-{datetime.now():%Y%m%d-%H%M%S}-{spec.name}"
    if kw["dry_run"]:
        trials = expand(spec, out, kw["overrides"])
        click.echo(f"{spec.name}: {len(trials)} trials ({path})")
        for t in trials:
            click.echo(f"{t.name}: " + " ".join(_quote(a) for a in t.command()))
        return
    rows = run_sweep(spec, out, backend=kw["backend"], address=kw["address"], parallel=kw["parallel"],
                     cpus_per_trial=kw["cpus_per_trial"], gpus_per_trial=kw["gpus_per_trial"],
                     extra_sets=kw["overrides"], timeout=kw["timeout"], quiet=kw["quiet"])
    print_table(rows, f"sweep {spec.name}: {out}", list(spec.grid))
    failed = sum(r["status"] != "ok" for r in rows)
    click.echo(f"{len(rows) - failed}/{len(rows)} trials ok; table: {out / 'results.csv'}")
    if failed:
        raise click.exceptions.Exit(1)


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


cli.add_command(shrink_command)
cli.add_command(eval_command)
cli.add_command(show_command)


def _add_plugin_commands() -> None:
    with contextlib.suppress(NasfwError):
        get_registry().add_commands(cli)


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line and exit 2 for user errors, exit 1 (and a hint) for bugs.

    On every way out the torchrun process group is destroyed (after a barrier when the command finished), so
    a finished distributed run exits 0 instead of aborting in interpreter teardown.
    """
    progress = {"finished": False}
    try:
        _dispatch(argv, progress)
    except SystemExit as exc:
        _teardown(progress["finished"], exc.code)
        raise
    except BaseException:
        _teardown(False, 1)
        raise
    _teardown(progress["finished"], 0)


def _dispatch(argv: list[str] | None, progress: dict[str, bool]) -> None:
    """Run the command; every outcome leaves as a return or ``sys.exit`` (``progress['finished']``: it ran)."""
    try:
        _add_plugin_commands()
        rc = cli.main(args=argv, prog_name="nasfw", standalone_mode=False)
        progress["finished"] = True
        if isinstance(rc, int) and not isinstance(rc, bool) and rc:
            sys.exit(rc)  # a command's ctx.exit(code) (nasfw sweep: some trials failed)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # click turns Ctrl-C inside a command into Abort
            _interrupted(argv)
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(one_line(f"Error: {exc.format_message()}" + _usage_hint(exc)), err=True)
        sys.exit(2)
    except NasfwError as exc:
        click.echo(one_line(f"Error: {exc}"), err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _interrupted(argv)
    except OSError as exc:
        if not is_environment_error(exc):
            _internal_error(exc)
        # a full disk or read-only file system outside the paths that report it themselves
        click.echo(one_line(f"Error: {write_error(exc.filename or '(unknown file)', exc)}"), err=True)
        sys.exit(2)
    except Exception as exc:
        _internal_error(exc)


def _internal_error(exc: BaseException) -> None:
    if os.environ.get("NASFW_DEBUG"):
        traceback.print_exc()
    click.echo(one_line(f"Internal error: {type(exc).__name__}: {exc} (set NASFW_DEBUG=1 for a traceback; "
                        f"please report it)"), err=True)
    sys.exit(1)


def _teardown(finished: bool, code: int | str | None) -> None:
    """Leave the torchrun process group (a no-op in one process); never masks the command's own exit.

    If gloo's threads outlive ``destroy_process_group`` (something still holds the group, e.g. ``torch._dynamo``
    imported by a plugin after the group was made), a normal interpreter exit would destroy their running
    ``std::thread`` objects in C++ static teardown: ``std::terminate`` ("terminate called without an active
    exception", SIGABRT) after the work is done. Then the process flushes its output and leaves with
    ``os._exit(code)``, skipping only that teardown (and atexit handlers; nasfw closes its own writers).
    """
    from nasfw.distributed import lingering_threads, shutdown

    try:
        shutdown(clean=finished)
    except Exception as exc:  # pragma: no cover - a broken group at exit
        click.echo(one_line(f"warning: leaving the process group failed: {type(exc).__name__}: {exc}"), err=True)
    if lingering_threads():
        _hard_exit(code)


def _hard_exit(code: int | str | None) -> None:
    import logging

    if isinstance(code, str):  # sys.exit("message"): print it and exit 1, as the interpreter would
        click.echo(code, err=True)
    status = 0 if code is None else code if isinstance(code, int) else 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


def one_line(message: str) -> str:
    """Escape line breaks and control characters: user text (a --set value with a form feed) must not split
    the one-line error across lines or send terminal codes."""
    return "".join(ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
                   for ch in message)


def _interrupted(argv: list[str] | None) -> None:
    """Ctrl-C: exit 130 with the command that continues from the last checkpoint."""
    args = sys.argv[1:] if argv is None else argv
    again = {"run": "nasfw run --resume RUN_DIR", "eval": "nasfw eval --resume EVAL_DIR"}.get(args[0] if args else "")
    click.echo(f"Interrupted; continue with '{again}'." if again else "Interrupted.", err=True)
    sys.exit(130)


def _usage_hint(exc: click.ClickException) -> str:
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        return f" (see '{ctx.command_path} --help')"
    return ""


if __name__ == "__main__":
    main()
