"""``nasfw sweep SWEEP``: a grid of ``nasfw run`` trials on Ray (or local subprocesses), one results table.

A sweep file is YAML::

    name: my-sweep
    base:                       # a run config, as in a --config file (or `config: run.yaml`, relative path)
      optimizer: darts
      search: {epochs: 50}
    set: [search.batch_size=64] # --set overrides for every trial
    grid:                       # --set-style keys, a list of values each; the trials are the product
      space: [s1, s2, s3, s4]
      seed: [0, 1, 2]

Each trial is one ``python -m nasfw run`` process writing its own run directory ``OUT/<index>-<values>``.
Its precedence is base < grid values < the file's ``set`` < ``nasfw sweep --set``. A trial that fails (a bad
option in one grid cell, a crash, a timeout) is a ``failed`` row with its one-line error; the others go on.
The table (one row per trial: its grid values, status, genotype, timings, final accuracies and benchmark
numbers) is written to ``OUT/results.csv`` and ``OUT/results.json`` and printed.

Backends: ``ray`` (a local Ray instance, or the cluster at ``--address``; one GPU per trial when the cluster
has GPUs, else ``--cpus-per-trial`` CPUs; install with ``pip install 'nasfw[ray]'``) and ``local``
(``--parallel`` subprocesses on this machine). ``auto`` picks Ray when it is installed. On a cluster the
trial receives its config in the task, and returns its summary, so only the run directories need a shared
filesystem to be kept. Shipped sweeps (``nasfw/sweeps/*.yaml``) are found by name: ``nasfw sweep robustdarts``.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from nasfw.config import parse_override, read_config_file
from nasfw.errors import ConfigError

SWEEP_DIR = Path(__file__).parent / "sweeps"
Backend = Literal["auto", "ray", "local"]


class SweepError(ConfigError):
    """A sweep file that cannot be read or expanded (one line, exit code 2)."""


class SweepSpec(BaseModel):
    """The contents of a sweep file."""

    model_config = ConfigDict(extra="forbid")

    name: str = "sweep"
    description: str = ""
    base: dict[str, Any] = Field(default_factory=dict, description="run config mapping (as a --config file)")
    config: str | None = Field(default=None, description="run config file under base (relative to the sweep file)")
    set: list[str] = Field(default_factory=list, description="--set overrides for every trial")
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="--set-style key -> values")

    @field_validator("grid")
    @classmethod
    def _grid(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            if not values:
                raise ValueError(f"grid key '{key}' has no values")
            parse_override(f"{key}=0")  # the key must be a valid dotted --set key
        return grid


@dataclass
class Trial:
    """One grid cell: its name, grid values and the overrides that make its run config."""

    index: int
    name: str
    params: dict[str, Any]
    overrides: list[str]
    out: str
    base: dict[str, Any] = field(default_factory=dict)

    def command(self, base_file: str = "BASE.yaml") -> list[str]:
        cmd = ["nasfw", "run", "--config", base_file]
        for o in self.overrides:
            cmd += ["--set", o]
        return [*cmd, "--out", self.out, "--quiet"]


def resolve_sweep_path(text: str) -> Path:
    """A sweep file path, or the name of a shipped sweep."""
    path = Path(text)
    if path.is_file():
        return path
    shipped = SWEEP_DIR / f"{text}.yaml"
    if not path.suffix and shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in SWEEP_DIR.glob("*.yaml"))) or "none"
    raise SweepError(f"sweep file not found: {text} (shipped sweeps: {names})")


def load_sweep(text: str) -> tuple[SweepSpec, Path]:
    path = resolve_sweep_path(text)
    data = read_config_file(path)
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        allowed = ", ".join(SweepSpec.model_fields)
        raise SweepError(f"invalid sweep file {path}: '{loc}': {msg} (sweep keys: {allowed})") from None
    if spec.config is not None:
        spec.base = {**read_config_file(path.parent / spec.config), **spec.base}
    if not spec.grid:
        raise SweepError(f"sweep file {path} has an empty grid; give 'grid: {{key: [values]}}'")
    return spec, path


def _value_text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _slug(params: dict[str, Any]) -> str:
    parts = [f"{k.split('.')[-1] if k.split('.')[-1] not in ('name', 'params') else k.split('.')[0]}="
             f"{_value_text(v)}" for k, v in params.items()]
    text = "-".join(parts)
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in text)[:80]


def expand(spec: SweepSpec, out_dir: Path, extra_sets: tuple[str, ...] | list[str] = ()) -> list[Trial]:
    """The trials of the grid, in row-major order of the grid's keys (the last key varies fastest)."""
    keys = list(spec.grid)
    trials = []
    for i, values in enumerate(itertools.product(*(spec.grid[k] for k in keys))):
        params = dict(zip(keys, values))
        overrides = [f"{k}={_value_text(v)}" for k, v in params.items()] + list(spec.set) + list(extra_sets)
        name = f"{i:03d}-{_slug(params)}"
        trials.append(Trial(i, name, params, overrides, str(out_dir / name), dict(spec.base)))
    return trials


# --------------------------------------------------------------------------- running one trial


def run_trial(trial: dict[str, Any]) -> dict[str, Any]:
    """Run one trial in its own process; returns status, error line, seconds and the run's summary.

    A plain function of plain data, so Ray can ship it to any node: the base config travels in the task.
    """
    t0 = time.time()
    out = Path(trial["out"])
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        yaml.safe_dump(trial["base"], fh, sort_keys=False)
        base_file = fh.name
    cmd = [sys.executable, "-m", "nasfw", "run", "--config", base_file]
    for o in trial["overrides"]:
        cmd += ["--set", o]
    cmd += ["--out", str(out), "--quiet"]
    result: dict[str, Any] = {"status": "failed", "error": "", "summary": None, "host": os.uname().nodename}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=trial.get("timeout"),
                              env={**os.environ, **trial.get("env", {})})
        if proc.returncode == 0 and (out / "summary.json").exists():
            result["status"] = "ok"
            result["summary"] = json.loads((out / "summary.json").read_text())
        else:
            result["error"] = _error_line(proc.stderr, proc.returncode)
    except subprocess.TimeoutExpired:
        result["error"] = f"timed out after {trial.get('timeout')} s"
    except OSError as exc:
        result["error"] = f"could not start the trial: {exc}"
    finally:
        Path(base_file).unlink(missing_ok=True)
    result["seconds"] = round(time.time() - t0, 3)
    return result


def _error_line(stderr: str, code: int) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(("Error:", "Internal error:")):
            return line
    return (lines[-1] if lines else "no output") + f" (exit code {code})"


# --------------------------------------------------------------------------- backends


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def run_local(payloads: list[dict[str, Any]], parallel: int, on_done: Any = None) -> list[dict[str, Any]]:
    """Trials as subprocesses of this machine, ``parallel`` at a time."""
    results: list[dict[str, Any] | None] = [None] * len(payloads)

    def one(i: int) -> None:
        results[i] = run_trial(payloads[i])
        if on_done is not None:
            on_done(i, results[i])

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        list(pool.map(one, range(len(payloads))))
    return [r for r in results if r is not None]


def run_ray(payloads: list[dict[str, Any]], address: str | None, cpus_per_trial: float,
            gpus_per_trial: float | None, on_done: Any = None, num_cpus: int | None = None) -> list[dict[str, Any]]:
    """Trials as Ray tasks: one GPU each when the cluster has GPUs (or ``gpus_per_trial``), else CPUs."""
    try:
        import ray
    except ImportError:
        raise SweepError("the ray backend needs Ray: pip install 'nasfw[ray]' (or use --backend local)") from None
    started = not ray.is_initialized()
    if started:
        kw: dict[str, Any] = {"address": address, "ignore_reinit_error": True, "log_to_driver": False,
                              "include_dashboard": False, "logging_level": "ERROR"}
        if address is None and num_cpus is not None:
            kw["num_cpus"] = num_cpus
        try:
            ray.init(**kw)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise SweepError(f"cannot start {where}: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    try:
        gpus = gpus_per_trial if gpus_per_trial is not None else (1.0 if ray.cluster_resources().get("GPU", 0) else 0)
        task = ray.remote(run_trial).options(num_cpus=cpus_per_trial, num_gpus=gpus, max_retries=0)
        refs = [task.remote(p) for p in payloads]
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[dict[str, Any] | None] = [None] * len(refs)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                i = index[ref]
                try:
                    results[i] = ray.get(ref)
                except Exception as exc:  # the worker died: report the trial, keep the others
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    results[i] = {"status": "failed", "error": f"Ray task failed: {first}", "summary": None,
                                  "seconds": None}
                if on_done is not None:
                    on_done(i, results[i])
        return [r for r in results if r is not None]
    finally:
        if started:
            ray.shutdown()


# --------------------------------------------------------------------------- the table


def row_of(trial: Trial, result: dict[str, Any]) -> dict[str, Any]:
    """One table row: grid values, status, one-line error and the summary's key numbers."""
    row: dict[str, Any] = {"trial": trial.name, **{k: _value_text(v) for k, v in trial.params.items()},
                           "status": result["status"], "error": result.get("error", ""),
                           "seconds": result.get("seconds")}
    s = result.get("summary") or {}
    final = s.get("final", {})
    row.update({"genotype": s.get("genotype_str", ""), "search_seconds": s.get("search_seconds"),
                "selection_seconds": s.get("selection_seconds"), "train_acc": final.get("train_acc"),
                "val_acc": final.get("val_acc")})
    ev = s.get("evaluation") or {}
    if ev:
        row.update({"eval_test_acc": ev.get("final_test_acc"), "eval_best_test_acc": ev.get("best_test_acc"),
                    "eval_params": ev.get("params")})
    for k, v in (s.get("benchmark") or {}).items():
        if isinstance(v, (int, float, str)) and not isinstance(v, bool):
            row[f"benchmark.{k}"] = v
    row["out"] = trial.out
    return row


def write_table(rows: list[dict[str, Any]], out_dir: Path) -> Path:
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    path = out_dir / "results.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})
    return path


def print_table(rows: list[dict[str, Any]], title: str, params: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    cols = ["trial", *params, "status", "val_acc", "search_seconds"]
    bench = sorted({k for r in rows for k in r if k.startswith("benchmark.") and isinstance(r[k], (int, float))})
    cols += [*bench[:3], "genotype / error"]
    for c in cols:
        table.add_column(c, overflow="fold")

    def fmt(v: Any) -> str:
        if v is None or v == "":
            return ""
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    for r in rows:
        last = r["error"] if r["status"] != "ok" else r.get("genotype", "")
        table.add_row(*[fmt(r.get(c)) for c in cols[:-1]], (last[:200] + "…") if len(last) > 200 else last,
                      style=None if r["status"] == "ok" else "red")
    Console(width=max(160, Console().width)).print(table)


def run_sweep(spec: SweepSpec, out_dir: Path, *, backend: Backend = "auto", address: str | None = None,
              parallel: int = 1, cpus_per_trial: float = 1.0, gpus_per_trial: float | None = None,
              extra_sets: tuple[str, ...] | list[str] = (), timeout: float | None = None, quiet: bool = False,
              num_cpus: int | None = None) -> list[dict[str, Any]]:
    """Run every trial and write the table; returns its rows (failed trials included)."""
    trials = expand(spec, out_dir, extra_sets)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "sweep.yaml").write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    if backend == "auto":
        backend = "ray" if (ray_available() or address) else "local"
    payloads = [{"out": t.out, "base": t.base, "overrides": t.overrides, "timeout": timeout} for t in trials]

    def on_done(i: int, result: dict[str, Any]) -> None:
        if not quiet:
            status = "ok" if result["status"] == "ok" else f"FAILED: {result.get('error', '')}"
            print(f"[sweep] {trials[i].name}: {status}", file=sys.stderr, flush=True)

    if not quiet:
        where = f"Ray ({address or 'local instance'})" if backend == "ray" else f"local, {parallel} at a time"
        print(f"[sweep] {spec.name}: {len(trials)} trials on {where}, outputs in {out_dir}", file=sys.stderr)
    if backend == "ray":
        results = run_ray(payloads, address, cpus_per_trial, gpus_per_trial, on_done, num_cpus)
    else:
        results = run_local(payloads, parallel, on_done)
    rows = [row_of(t, r) for t, r in zip(trials, results)]
    write_table(rows, out_dir)
    (out_dir / "results.json").write_text(json.dumps(
        [{**row, "summary": r.get("summary")} for row, r in zip(rows, results)], indent=2, default=str) + "\n")
    return rows


__all__ = ["SweepError", "SweepSpec", "Trial", "expand", "load_sweep", "run_sweep", "run_trial"]
