"""One ``search_step.py`` case in this checkout against the same case in an older revision, alternated.

Issue 23 sets some targets against "today's" code (the revision it was filed at, d984441): a ZARTS α update
≥ 2× today's, a DARTS-PT selection ≥ 3× today's. The two revisions cannot share a process, so this script runs
each revision's own ``benchmarks/search_step.py`` in turn (old, new, old, new, ...) with the same arguments, each
in its own environment, and prints the best nasfw time of each and their ratio. Both runs also time the same
per-edge reference formulation (``baseline_ms``, from each revision's ``benchmarks/baseline.py``): the script
prints both so that a drift of the machine between the runs shows.

Set up the old revision once (a worktree and a virtual environment with its packages; torch from local disk):

    git worktree add /tmp/old d984441
    python -m venv /tmp/oldvenv && /tmp/oldvenv/bin/pip install torch==2.14.1 torchvision==0.29.1
    (cd /tmp/old && /tmp/oldvenv/bin/pip install -r requirements.txt)

then, e.g.:

    OMP_NUM_THREADS=2 python benchmarks/against_revision.py --old /tmp/old --old-python /tmp/oldvenv/bin/python \\
        --case zarts-mgs --rounds 2 -- --batch-size 32 --layers 5 --channels 8 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_case(python: str, checkout: Path, case: str, extra: list[str]) -> dict:
    cmd = [python, str(checkout / "benchmarks" / "search_step.py"), "--cases", case, "--json", *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=checkout)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr.strip().splitlines()[-1:]}")
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    row = next((r for r in rows if r.get("case") == case), None)
    if row is None:
        sys.exit(f"{' '.join(cmd)} printed no row for case {case!r}")
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--old", type=Path, required=True, help="checkout of the older revision")
    p.add_argument("--old-python", required=True, help="python of an environment with that checkout installed")
    p.add_argument("--new-python", default=sys.executable)
    p.add_argument("--case", required=True)
    p.add_argument("--rounds", type=int, default=2, help="old/new pairs, alternated")
    p.add_argument("extra", nargs="*", help="arguments for search_step.py (after --)")
    a = p.parse_args()
    best: dict[str, dict] = {}
    for r in range(a.rounds):
        for name, python, checkout in (("old", a.old_python, a.old), ("new", a.new_python, HERE.parent)):
            row = run_case(python, checkout, a.case, a.extra)
            print(f"round {r + 1} {name}: nasfw_ms={row['nasfw_ms']} baseline_ms={row['baseline_ms']}", flush=True)
            if name not in best or row["nasfw_ms"] < best[name]["nasfw_ms"]:
                best[name] = row
    old, new = best["old"], best["new"]
    print(f"case={a.case}  old_ms={old['nasfw_ms']}  new_ms={new['nasfw_ms']}  "
          f"speedup={old['nasfw_ms'] / new['nasfw_ms']:.2f}  "
          f"reference_ms old/new run={old['baseline_ms']}/{new['baseline_ms']}")


if __name__ == "__main__":
    main()
