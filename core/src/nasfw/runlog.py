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
    """A rich progress bar on a terminal, plain lines otherwise, nothing when quiet."""

    def __init__(self, mode: str = "auto", quiet: bool = False):
        if quiet or mode == "none":
            self.mode = "none"
        elif mode == "auto":
            self.mode = "rich" if sys.stderr.isatty() else "plain"
        else:
            self.mode = mode
        self._progress: Any = None
        self._task: Any = None
        self._t0 = time.time()

    @contextmanager
    def phase(self, description: str, total: int | None) -> Iterator[None]:
        if self.mode == "rich":
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("{task.fields[info]}"), transient=False,
                                      console=None)
            self._progress.start()
            self._task = self._progress.add_task(description, total=total, info="")
        try:
            yield
        finally:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None

    def advance(self, info: str = "") -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, info=info)

    def describe(self, description: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=description)

    def line(self, text: str) -> None:
        if self.mode == "none":
            return
        if self._progress is not None:
            self._progress.console.print(text)
        else:
            print(f"[{time.time() - self._t0:7.1f}s] {text}", file=sys.stderr, flush=True)
