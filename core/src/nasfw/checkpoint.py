"""Atomic, validated checkpoints and RNG capture (resume must reproduce an uninterrupted run)."""

from __future__ import annotations

import os
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasfw.errors import CheckpointError

FORMAT = "nasfw-checkpoint"
VERSION = 1


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_tuplify(state["python"]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy(), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuplify(x: Any) -> Any:
    return tuple(_tuplify(v) for v in x) if isinstance(x, (list, tuple)) else x


def save_atomic(obj: dict[str, Any], path: str | Path, keep_previous: bool = True) -> None:
    """Write to a temporary file, fsync, then rename over ``path``; the old file becomes ``*.prev.pt``.

    ``path`` exists at every instant once first written (a kill between two renames must not leave only
    ``*.prev.pt`` and ``*.tmp``, which ``--resume`` would not find): the previous file is linked (or copied) to
    ``*.prev.pt`` first, then the new one renamed over ``path`` atomically.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    payload = {"format": FORMAT, "version": VERSION, **obj}
    with open(tmp, "wb") as fh:
        torch.save(payload, fh)
        fh.flush()
        os.fsync(fh.fileno())
    if keep_previous and path.exists():
        prev = previous_path(path)
        prev.unlink(missing_ok=True)
        try:
            os.link(path, prev)
        except OSError:  # a file system without hard links
            shutil.copyfile(path, prev)
    os.replace(tmp, path)


def previous_path(path: Path) -> Path:
    return path.with_name(path.stem + ".prev" + path.suffix)


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Load and validate; a corrupt latest file falls back to the previous good one, with a warning."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}; start a new run without --resume")
    try:
        return _load(path, map_location)
    except CheckpointError as first:
        prev = previous_path(path)
        if prev.exists():
            try:
                state = _load(prev, map_location)
            except CheckpointError:
                raise first from None
            # keep the bad file for inspection, out of the way of the next atomic save (which would
            # otherwise rotate it over the good previous checkpoint)
            os.replace(path, path.with_name(path.stem + ".corrupt" + path.suffix))
            print(f"warning: {first}; resuming from the previous good checkpoint {prev}", file=sys.stderr)
            return state
        raise


def _load(path: Path, map_location: Any) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}); delete it to start over") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a nasfw checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {state.get('version')}, expected {VERSION}")
    return state
