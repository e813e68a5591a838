"""Run outputs: JSON-lines logs that resume cleanly, progress display, optional TensorBoard."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch


def _jsonable(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().tolist() if v.dim() else float(v.detach().cpu())
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


class JsonLines:
    """An append-only JSON-lines file whose length is checkpointed, so resume truncates to it."""

    def __init__(self, path: Path, enabled: bool = True):
        self.path = path
        self.enabled = enabled  # False on the non-writing ranks of a multi-process run

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as fh:
            fh.write(json.dumps(_jsonable(record)) + "\n")

    def position(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def truncate(self, size: int) -> None:
        if self.enabled and self.path.exists():
            with open(self.path, "r+b") as fh:
                fh.truncate(size)


class TensorBoard:
    """Scalars and architecture weights to TensorBoard when it is installed; silent otherwise."""

    def __init__(self, out_dir: Path, enabled: bool):
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception:
            return
        self.writer = SummaryWriter(log_dir=str(out_dir / "tensorboard"))

    def scalars(self, prefix: str, metrics: dict[str, Any], step: int) -> None:
        if self.writer is None:
            return
        for k, v in metrics.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v)):
                self.writer.add_scalar(f"{prefix}/{k}", v, step)

    def weights(self, weights: dict[str, torch.Tensor], step: int) -> None:
        if self.writer is None:
            return
        for name, w in weights.items():
            w = w.detach().float().cpu()
            for row in range(w.shape[0]):
                for col in range(w.shape[1]):
                    self.writer.add_scalar(f"alpha/{name}/edge{row}/op{col}", float(w[row, col]), step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class Progress:
    """Progress of a run's phases: a rich bar per phase on a terminal, plain lines otherwise, nothing when quiet.

    Components reach it as ``run.progress`` and wrap their own long phases (selection decisions, shrink
    rounds, tuning) the way the engine wraps the search::

        with run.progress.phase("perturb decisions", total=plan["decisions"]):
            for edge in edges:
                ...
                run.progress.advance(f"edge {i}")   # one unit of the innermost open phase

    Phases nest (a tuning phase inside a selection phase is a second bar). Each shows elapsed time and, once
    it has advanced, the remaining time at the measured rate; in plain mode a line is printed when a phase
    starts, after its first measured units (with the ETA), at most every ``interval`` seconds, and when it
    ends.
    """

    def __init__(self, mode: str = "auto", quiet: bool = False, interval: float = 15.0):
        if quiet or mode == "none":
            self.mode = "none"
        elif mode == "auto":
            self.mode = "rich" if sys.stderr.isatty() else "plain"
        else:
            self.mode = mode
        self.interval = interval
        self._progress: Any = None
        self._stack: list[_Phase] = []
        self._t0 = time.time()

    @contextmanager
    def phase(self, description: str, total: int | None = None) -> Iterator[_Phase]:
        """An open phase of ``total`` units (None: unknown); :meth:`advance` moves the innermost one."""
        ph = _Phase(description, total)
        if self.mode == "rich":
            if self._progress is None:
                from rich import progress as rp

                self._progress = rp.Progress(rp.TextColumn("{task.description}"), rp.BarColumn(),
                                             rp.MofNCompleteColumn(), rp.TimeElapsedColumn(), rp.TextColumn("eta"),
                                             rp.TimeRemainingColumn(), rp.TextColumn("{task.fields[info]}"),
                                             transient=False, console=None)
                self._progress.start()
            ph.task = self._progress.add_task(description, total=total, info="")
        elif self.mode == "plain":
            self.line(f"{description}: started" + (f", {total} to do" if total else ""))
        self._stack.append(ph)
        try:
            yield ph
        finally:
            self._stack.remove(ph)
            if self._progress is not None:
                if not self._stack:
                    self._progress.stop()
                    self._progress = None
            elif self.mode == "plain" and ph.done:
                self.line(f"{description}: {ph.done}{'/' + str(total) if total else ''} done in "
                          f"{duration(time.time() - ph.start)}")

    def advance(self, info: str = "", n: int = 1) -> None:
        """``n`` units of the innermost open phase done (``info``: a short status such as the loss)."""
        if not self._stack:
            return
        ph = self._stack[-1]
        ph.done += n
        if self._progress is not None and ph.task is not None:
            self._progress.update(ph.task, advance=n, info=info)
        elif self.mode == "plain":
            now = time.time()
            first = not ph.reported and ph.done >= min(3, ph.total or 3)
            if first or now - ph.last_line >= self.interval:
                ph.reported, ph.last_line = True, now
                eta = ph.eta()
                self.line(f"{ph.description}: {ph.done}{'/' + str(ph.total) if ph.total else ''}"
                          + (f", eta {duration(eta)}" if eta is not None else "") + (f"  {info}" if info else ""))

    def describe(self, description: str) -> None:
        """Rename the innermost open phase (e.g. the epoch it is in)."""
        if not self._stack:
            return
        ph = self._stack[-1]
        ph.description = description
        if self._progress is not None and ph.task is not None:
            self._progress.update(ph.task, description=description)

    def line(self, text: str) -> None:
        if self.mode == "none":
            return
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            print(f"[{time.time() - self._t0:7.1f}s] {text}", file=sys.stderr, flush=True)


class _Phase:
    """One open progress phase: its units done and when it started."""

    def __init__(self, description: str, total: int | None):
        self.description, self.total = description, total
        self.done, self.task = 0, None
        self.start = self.last_line = time.time()
        self.reported = False

    def eta(self) -> float | None:
        """Seconds left at the rate measured so far (None without a total or a measurement)."""
        if not self.total or not self.done:
            return None
        return (time.time() - self.start) / self.done * max(self.total - self.done, 0)


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h10m``."""
    s = round(seconds)
    return f"{s}s" if s < 90 else (f"{s // 60}m{s % 60:02d}s" if s < 5400 else f"{s // 3600}h{s % 3600 // 60:02d}m")


def progress_of(run: Any) -> Progress:
    """``run.progress``, or a silent one for callers that pass something else as the run (tests, scripts)."""
    progress = getattr(run, "progress", None)
    return progress if isinstance(progress, Progress) else Progress(quiet=True)
