"""Time every command of the README's "Common commands" block on its defaults, and check that each method in
them acted.

    python benchmarks/commands.py                      # every command; a markdown table on stdout
    python benchmarks/commands.py --only "nasfw run"   # the commands containing this text
    python benchmarks/commands.py --threads 1          # OMP_NUM_THREADS for the commands (default: unchanged)

The commands are read from README.md (so the table always matches what users are told to type). Placeholders
are filled in: ``RUN_DIR`` is the run directory of the first ``nasfw run`` that finished; a command with
``DATA`` runs only when ``--data DIR`` is given. Every ``nasfw run`` gets ``--out`` (a temporary directory),
nothing else. For each run the table gives the wall and CPU seconds (user + system of the command), its exit
code and whether each component acted, as the component itself defines it (``acted(activity)`` on the
``activity`` block of ``summary.json``). The machine load (``os.getloadavg``) is printed before and after
each command: on the shared 2-core machine wall times depend on it, CPU times much less.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def readme_commands(readme: Path = ROOT / "README.md") -> list[tuple[str, str]]:
    """``(command, comment)`` for the README's headline command and install-and-run command (the indented
    ``nasfw ...`` lines before '## Common commands'), then each line of the code block under that heading."""
    text = readme.read_text()
    intro = text.split("## Common commands", 1)[0]
    head = []
    for line in intro.splitlines():
        cmd = line.strip().rpartition("&& ")[2] if line.startswith("    ") else ""
        if cmd.startswith("nasfw ") and (cmd, "README intro") not in head:
            head.append((cmd, "README intro"))
    section = text.split("## Common commands", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.S)
    if block is None:
        raise SystemExit("README.md: no code block under '## Common commands'")
    out = list(head)
    for line in block.group(1).splitlines():
        cmd, _, comment = line.partition("#")
        if cmd.strip():
            out.append((cmd.strip(), comment.strip()))
    return out


def acted(run_dir: Path) -> str:
    """'ok' when every component of the run acted, else what did not (from the components' own checks)."""
    from nasfw.config import build_config, read_config_file
    from nasfw.registry import get_registry

    summary = json.loads((run_dir / "summary.json").read_text())
    config = build_config(read_config_file(run_dir / "config.yaml"))
    reg = get_registry()
    problems = []
    for key, kind in (("optimizer", "optimizer"), ("selector", "selector"), ("shrinker", "shrinker")):
        ref = getattr(config, key)
        if ref is None:
            continue
        why = reg.create(kind, ref).acted(summary.get("activity", {}))
        if why:
            problems.append(f"{key} {ref.name}: {why}")
    return "ok" if not problems else "; ".join(problems)


def run_one(cmd: str, out_root: Path, index: int, run_dir: Path | None, data: str | None, env: dict[str, str],
            timeout: float) -> dict[str, Any]:
    args = shlex.split(cmd)
    row: dict[str, Any] = {"command": cmd}
    if "DATA" in args and data is None:
        return {**row, "status": "skipped (needs --data DIR)"}
    if any("RUN_DIR" in a for a in args) and run_dir is None:
        return {**row, "status": "skipped (no finished run yet)"}
    args = [data if a == "DATA" else a.replace("RUN_DIR", str(run_dir)) if "RUN_DIR" in a else a for a in args]
    out = None
    if args[:2] == ["nasfw", "run"]:
        out = out_root / f"run{index}"
        args += ["--out", str(out)]
    if args[:2] == ["nasfw", "eval"] and "--dry-run" not in args:
        args += ["--out", str(out_root / f"eval{index}")]
    load0 = os.getloadavg()[0]
    before = os.times()
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "nasfw", *args[1:]], cwd=out_root, env=env, timeout=timeout,
                              capture_output=True, text=True)
        code, err = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, err = None, (exc.stderr or b"").decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
    wall = time.perf_counter() - t0
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    row.update({"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "load": f"{load0:.1f}-{os.getloadavg()[0]:.1f}",
                "exit": code if code is not None else "timeout"})
    if code != 0:
        last = err.strip().splitlines()[-1] if err.strip() else ""
        row["status"] = f"failed: {last[:160]}"
        return row
    row["status"] = "ok"
    if out is not None and (out / "summary.json").exists():
        row["run_dir"] = out
        row["acted"] = acted(out)
        summary = json.loads((out / "summary.json").read_text())
        row["phases"] = (f"search {summary.get('search_seconds', 0):.0f}s, selection "
                         f"{summary.get('selection_seconds', 0):.0f}s"
                         + (f", shrink {summary['shrink_seconds']:.0f}s" if summary.get("shrink_seconds") else ""))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help="run only commands containing this text")
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS for the commands (default: unchanged)")
    parser.add_argument("--data", help="directory for the DATA placeholder")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before a command is stopped")
    parser.add_argument("--json", dest="json_out", help="also write the rows to this JSON file")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.threads is not None:
        env["OMP_NUM_THREADS"] = str(args.threads)
    commands = readme_commands()
    rows = []
    run_dir: Path | None = None
    with tempfile.TemporaryDirectory(prefix="nasfw-commands-") as tmp:
        for i, (cmd, _comment) in enumerate(commands):
            if args.only and not any(o in cmd for o in args.only) and "RUN_DIR" not in cmd:
                continue
            row = run_one(cmd, Path(tmp), i, run_dir, args.data, env, args.timeout)
            if run_dir is None and row.get("run_dir") is not None:
                run_dir = row["run_dir"]
            row.pop("run_dir", None)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    threads = env.get("OMP_NUM_THREADS", "unset")
    print(f"OMP_NUM_THREADS={threads}, {os.cpu_count()} CPUs, python {sys.version.split()[0]}\n")
    print("| command | wall s | CPU s | load | status | acted | phases |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| `{r['command']}` | {r.get('wall_s', '')} | {r.get('cpu_s', '')} | {r.get('load', '')} | "
              f"{r['status']} | {r.get('acted', '')} | {r.get('phases', '')} |")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
