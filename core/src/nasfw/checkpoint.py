"""Atomic, checksummed checkpoints and RNG capture (resume must reproduce an uninterrupted run).

A checkpoint is one ``torch.save`` file: a dict with ``format``, ``version``, the caller's state and
``sha256``, a SHA-256 digest of the state's content (every tensor's dtype, shape and bytes, every key and
plain value, in a canonical order). ``torch.load`` checks neither tensor bytes nor the zip entries' CRCs,
so without the digest a flipped bit in α or in a weight resumes silently with other numbers; with it,
:func:`load_checkpoint` refuses the file and falls back to ``checkpoint.prev.pt`` (with a warning) or
stops with a one-line error. Writes can require finite tensors (``finite=``): a NaN/inf state is never
written, so the checkpoint on disk is always the last *finite* state and rotation never pushes a finite
checkpoint out for a non-finite one.

Since version 3 the state's tensors are packed: each top-level entry's tensors of one dtype and device are
concatenated into one flat buffer, and the state keeps a small placeholder per tensor (its buffer, offset and
shape). ``torch.save`` and the digest pay a per-tensor cost (about 0.1 ms: pickling a storage record, hashing,
a finiteness check), and a DARTS supernet's state holds thousands of small tensors, so a checkpoint took
0.46 s at 5 cells and C = 8 — a quarter of a DARTS-PT selection that checkpoints after every decision. Read
checkpoints with :func:`load_checkpoint` (verified) or :func:`read_unverified`; ``torch.load`` alone returns the
packed form. Files of format version 1 (written before checksums) still load, with a warning that they cannot
be verified; version 2 (unpacked) files load as before; everything written now is version 3.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import random
import shutil
import struct
import sys
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasfw.errors import CheckpointError, DivergenceError
from nasfw.outputs import SPACE_ERRNOS, remove_quietly, write_error

FORMAT = "nasfw-checkpoint"
VERSION = 3
#: versions :func:`load_checkpoint` accepts (1: no checksum, loaded with a warning; 2: tensors not packed)
READABLE_VERSIONS = (1, 2, 3)
DIGEST_KEY = "sha256"
#: the key of a packed tensor's placeholder: ``{PACKED: [buffer key, offset, shape]}``
PACKED = "__nasfw_packed__"


class NonFiniteStateError(DivergenceError):
    """The state to checkpoint holds NaN or infinite tensors; nothing was written."""

    def __init__(self, path: Path, bad: list[str]):
        self.path, self.bad = path, bad
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        super().__init__(f"refusing to write {path}: {len(bad)} tensor(s) hold NaN or inf ({shown})")


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


# --------------------------------------------------------------------------- content digest


class _Digest:
    """One walk over a state: the SHA-256 of its content, and the paths of non-finite tensors under the
    top-level keys in ``finite`` (the same pass reads every tensor once)."""

    def __init__(self, finite: Iterable[str] = ()):
        self.h = hashlib.sha256()
        self.finite = set(finite)
        self.bad: list[str] = []

    def feed(self, v: Any, path: str = "", check: bool = False) -> None:
        h = self.h
        if isinstance(v, torch.Tensor):
            t = v.detach()
            if t.layout != torch.strided:
                t = t.to_dense()
            t = t.cpu().contiguous()
            h.update(b"T" + str(t.dtype).encode() + repr(tuple(t.shape)).encode())
            if t.numel():
                h.update(t.reshape(-1).view(torch.uint8).numpy())
                if check and (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
                    self.bad.append(path)
        elif type(v) is dict and len(v) == 1 and PACKED in v:  # a packed tensor's placeholder: one update
            h.update(b"R" + repr(v[PACKED]).encode())
        elif isinstance(v, dict):
            h.update(b"D" + str(len(v)).encode())
            items = sorted(((self._key(k), k) for k in v), key=lambda kv: kv[0])
            for kb, k in items:
                h.update(kb)
                self.feed(v[k], f"{path}.{k}" if path else str(k), check or (not path and k in self.finite))
        elif isinstance(v, (list, tuple)):
            h.update(b"L" + str(len(v)).encode())
            for i, x in enumerate(v):
                self.feed(x, f"{path}[{i}]", check)
        else:
            h.update(self._leaf(v))

    def _key(self, k: Any) -> bytes:
        b = self._leaf(k)
        return struct.pack("<Q", len(b)) + b

    @staticmethod
    def _leaf(v: Any) -> bytes:
        if v is None or isinstance(v, bool):
            return b"B" + repr(v).encode()
        if isinstance(v, int):
            n = (v.bit_length() + 8) // 8
            return b"I" + v.to_bytes(n, "little", signed=True)  # no str(): a huge int stays cheap and legal
        if isinstance(v, float):
            return b"F" + struct.pack("<d", v)
        if isinstance(v, str):
            return b"S" + v.encode("utf-8", "surrogatepass")
        if isinstance(v, bytes):
            return b"Y" + v
        if isinstance(v, (torch.dtype, torch.device, torch.Size)):
            return b"O" + repr(v).encode()
        return b"P" + pickle.dumps(v, protocol=4)

    def hexdigest(self) -> str:
        return self.h.hexdigest()


def content_digest(state: dict[str, Any]) -> str:
    """The SHA-256 of a state's content (the ``sha256`` entry itself excluded)."""
    d = _Digest()
    d.feed({k: v for k, v in state.items() if k != DIGEST_KEY})
    return d.hexdigest()


def non_finite(state: dict[str, Any], keys: Iterable[str]) -> list[str]:
    """Paths of floating tensors holding NaN/inf under the top-level ``keys`` of ``state``."""
    d = _Digest(keys)
    d.feed({k: state[k] for k in keys if k in state})
    return d.bad


# --------------------------------------------------------------------------- packing (version 3)


def _packable(v: Any) -> bool:
    """Plain dense tensors without autograd state (state dicts, optimizer state, RNG states); the rest (a
    Parameter, a sparse or quantized tensor) is saved as it is."""
    return (type(v) is torch.Tensor and v.layout == torch.strided and not v.is_quantized and not v.requires_grad
            and v.device.type != "meta" and v.numel() > 0)


def pack(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(skeleton, buffers)``: ``state`` with each packable tensor replaced by a placeholder, and one flat buffer
    per top-level entry, dtype and device (key ``entry/dtype/device``) holding those tensors' values in order."""
    parts: dict[str, list[torch.Tensor]] = {}
    sizes: dict[str, int] = {}

    def walk(v: Any, top: str) -> Any:
        if _packable(v):
            key = f"{top}/{str(v.dtype).removeprefix('torch.')}/{v.device}"
            offset = sizes.get(key, 0)
            parts.setdefault(key, []).append(v.detach().reshape(-1))
            sizes[key] = offset + v.numel()
            return {PACKED: [key, offset, list(v.shape)]}
        if type(v) in (dict, OrderedDict):
            return type(v)((k, walk(x, top)) for k, x in v.items())
        if type(v) in (list, tuple):
            return type(v)(walk(x, top) for x in v)
        return v

    skeleton = {k: walk(v, str(k)) for k, v in state.items()}
    buffers = {k: torch.cat(p) if len(p) > 1 else p[0].clone() for k, p in parts.items()}
    return skeleton, buffers


def unpack(skeleton: Any, buffers: dict[str, torch.Tensor]) -> Any:
    """The state :func:`pack` was given: placeholders become tensors again (each its own storage)."""
    if type(skeleton) in (dict, OrderedDict):
        ref = skeleton.get(PACKED) if len(skeleton) == 1 else None
        if isinstance(ref, list) and len(ref) == 3:
            key, offset, shape = ref
            return buffers[key][offset:offset + math.prod(shape)].view(shape).clone()
        return type(skeleton)((k, unpack(x, buffers)) for k, x in skeleton.items())
    if type(skeleton) in (list, tuple):
        return type(skeleton)(unpack(x, buffers) for x in skeleton)
    return skeleton


def _packed_non_finite(skeleton: dict[str, Any], buffers: dict[str, torch.Tensor], finite: Iterable[str]) -> list[str]:
    """Paths of the floating tensors holding NaN/inf under the top-level entries ``finite`` of a packed state
    (one check per buffer; only a failing buffer is looked into tensor by tensor)."""
    keys = set(finite)
    bad_buffers = {k for k, b in buffers.items() if k.rsplit("/", 2)[0] in keys
                   and (b.is_floating_point() or b.is_complex()) and not bool(torch.isfinite(b).all())}
    if not bad_buffers:
        return []
    bad: list[str] = []

    def walk(v: Any, path: str) -> None:
        if type(v) in (dict, OrderedDict):
            ref = v.get(PACKED) if len(v) == 1 else None
            if isinstance(ref, list) and len(ref) == 3:
                key, offset, shape = ref
                values = buffers[key][offset:offset + math.prod(shape)] if key in bad_buffers else None
                if values is not None and not bool(torch.isfinite(values).all()):
                    bad.append(path)
                return
            for k, x in v.items():
                walk(x, f"{path}.{k}")
        elif type(v) in (list, tuple):
            for i, x in enumerate(v):
                walk(x, f"{path}[{i}]")

    for top in skeleton:  # in the state's order: the message does not depend on set order
        if top in keys:
            walk(skeleton[top], str(top))
    return bad


# --------------------------------------------------------------------------- save


def save_atomic(obj: dict[str, Any], path: str | Path, keep_previous: bool = True,
                finite: Iterable[str] = (), fix: str | None = None) -> None:
    """Write to a temporary file, fsync, then rename over ``path``; the old file becomes ``*.prev.pt``.

    ``path`` exists at every instant once first written (a kill between two renames must not leave only
    ``*.prev.pt`` and ``*.tmp``, which ``--resume`` would not find): the previous file is linked (or copied) to
    ``*.prev.pt`` first, then the new one renamed over ``path`` atomically.

    ``finite`` names top-level entries whose floating tensors must be finite: otherwise
    :class:`NonFiniteStateError` is raised before any file is touched. An OSError (disk full, read-only)
    becomes a one-line :class:`~nasfw.outputs.OutputError` naming ``path`` and ``fix``, with the partial
    ``.tmp`` removed; ``path`` and ``*.prev.pt`` keep the last complete checkpoint.
    """
    path = Path(path)
    state = {k: v for k, v in obj.items() if k != DIGEST_KEY}
    skeleton, buffers = pack(state)
    bad = _packed_non_finite(skeleton, buffers, finite)
    unpacked = {k: v for k, v in state.items() if not _all_packed(v)}  # tensors pack() left as they are
    if unpacked:
        bad += non_finite(unpacked, [k for k in finite if k in unpacked])
    if bad:
        raise NonFiniteStateError(path, sorted(set(bad)))
    payload: dict[str, Any] = {"format": FORMAT, "version": VERSION, "state": skeleton, "tensors": buffers}
    payload[DIGEST_KEY] = content_digest(payload)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        if keep_previous and path.exists():
            prev = previous_path(path)
            prev.unlink(missing_ok=True)
            try:
                os.link(path, prev)
            except OSError:  # a file system without hard links (a full disk fails the copy too)
                shutil.copyfile(path, prev)
        os.replace(tmp, path)
    except OSError as exc:
        remove_quietly(tmp)
        raise write_error(path, exc, fix or _default_fix(path, exc)) from None


def _all_packed(v: Any) -> bool:
    """Whether ``v`` holds no tensor that :func:`pack` leaves unpacked (then its finiteness is the buffers')."""
    if isinstance(v, torch.Tensor):
        return _packable(v)
    if isinstance(v, dict):
        return all(_all_packed(x) for x in v.values())
    if isinstance(v, (list, tuple)):
        return all(_all_packed(x) for x in v)
    return True


def _default_fix(path: Path, exc: OSError) -> str:
    kept = "the last complete checkpoint is kept"
    if exc.errno in SPACE_ERRNOS:
        return f"free disk space, then continue from it ({kept})"
    return f"make {path.parent} writable, then continue from it ({kept})"


def previous_path(path: Path) -> Path:
    return path.with_name(path.stem + ".prev" + path.suffix)


def corrupt_path(path: Path) -> Path:
    return path.with_name(path.stem + ".corrupt" + path.suffix)


# --------------------------------------------------------------------------- load


def load_checkpoint(path: str | Path, map_location: Any = "cpu", finite: Iterable[str] = (),
                    repair: bool = True) -> dict[str, Any]:
    """Load and verify ``path``; a bad or missing latest file falls back to ``*.prev.pt``, with a warning.

    "Bad" is unreadable, not a nasfw checkpoint, failing its SHA-256 check, or (``finite``) holding NaN/inf
    in those entries. On a fallback with ``repair`` the bad file is kept as ``*.corrupt.pt`` and the previous
    checkpoint is copied back to ``path``, so the directory is consistent again (the next save rotates that
    copy to ``*.prev.pt``). Both bad or missing: :class:`CheckpointError` — never a silent restart.
    """
    path = Path(path)
    prev = previous_path(path)
    finite = tuple(finite)
    first: CheckpointError | None = None
    if path.exists():
        try:
            return _load(path, map_location, finite)
        except CheckpointError as exc:
            first = exc
    elif not prev.exists():
        raise CheckpointError(f"no checkpoint at {path}; start a new run without --resume")
    if not prev.exists():
        assert first is not None
        raise CheckpointError(f"{first}; there is no previous checkpoint to fall back to, so start over "
                              f"(move the directory away and run again)")
    try:
        state = _load(prev, map_location, finite)
    except CheckpointError as second:
        if first is None:
            raise CheckpointError(f"{path} is missing and {second}; start over (move the directory away and "
                                  f"run again)") from None
        raise CheckpointError(f"{first}, and {second}; start over (move the directory away and run again)") from None
    what = f"{first}" if first is not None else f"{path} is missing"
    where = position(state)
    if repair:
        try:
            if first is not None:
                os.replace(path, corrupt_path(path))  # kept for inspection, out of the way of the next rotation
            shutil.copyfile(prev, path)
        except OSError as exc:
            raise write_error(path, exc) from None
        what += f" (kept as {corrupt_path(path).name})" if first is not None else ""
    print(f"warning: {what}; resuming from the previous good checkpoint {prev}{where}", file=sys.stderr)
    return state


def read_unverified(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """The state in ``path`` as :func:`load_checkpoint` returns it, without its checks (to look into a file that
    fails them, e.g. after a disk error)."""
    state = torch.load(Path(path), map_location=map_location, weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state"), dict) and isinstance(state.get("tensors"), dict):
        return {"format": state.get("format"), "version": state.get("version"),
                **unpack(state["state"], state["tensors"])}
    return state


def mismatch_reason(exc: BaseException) -> str:
    """The informative part of a ``load_state_dict`` error (torch's first line only names the module)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        lines = lines[1:]
    return (lines[0][:200] if lines else type(exc).__name__) + (f" (and {len(lines) - 1} more)" if len(lines) > 1
                                                                else "")


def position(state: dict[str, Any]) -> str:
    """' (phase search, after 1 epoch and 30 steps)' for messages."""
    parts = [f"phase {state['phase']}"] if "phase" in state else []
    done = []
    for key, word in (("epoch", "epoch"), ("global_step", "step")):
        n = state.get(key)
        if isinstance(n, int):
            done.append(f"{n} {word}{'s' if n != 1 else ''}")
    if done:
        parts.append("after " + " and ".join(done))
    return f" ({', '.join(parts)})" if parts else ""


def _load(path: Path, map_location: Any, finite: tuple[str, ...] = ()) -> dict[str, Any]:
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory, not a checkpoint file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a nasfw checkpoint")
    version = state.get("version")
    if version not in READABLE_VERSIONS:
        raise CheckpointError(f"{path} has checkpoint format version {version!r}; this nasfw reads "
                              f"{', '.join(map(str, READABLE_VERSIONS))}")
    stored = state.pop(DIGEST_KEY, None)
    if version >= 3:
        if not isinstance(stored, str) or content_digest(state) != stored:
            raise CheckpointError(f"checkpoint {path} fails its SHA-256 check (its data changed after it was "
                                  f"written: a disk, copy or transfer error)")
        skeleton, buffers = state.get("state"), state.get("tensors")
        if not isinstance(skeleton, dict) or not isinstance(buffers, dict):
            raise CheckpointError(f"{path} is not a nasfw checkpoint (no packed state)")
        try:
            bad = _packed_non_finite(skeleton, buffers, finite)
            state = {"format": FORMAT, "version": version, **unpack(skeleton, buffers)}
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:  # verified, yet inconsistent
            raise CheckpointError(f"checkpoint {path} is corrupt (its packed tensors do not fit their placeholders: "
                                  f"{type(exc).__name__})") from None
        if not bad:
            bad = non_finite({k: v for k, v in state.items() if k in finite and not _all_packed(v)}, finite)
    elif version == 2:
        d = _Digest(finite)
        d.feed(state)
        if not isinstance(stored, str) or d.hexdigest() != stored:
            raise CheckpointError(f"checkpoint {path} fails its SHA-256 check (its data changed after it was "
                                  f"written: a disk, copy or transfer error)")
        bad = d.bad
    else:
        print(f"warning: {path} was written before checkpoints carried a checksum; its data cannot be verified",
              file=sys.stderr)
        bad = non_finite(state, finite)
    if bad:
        raise CheckpointError(f"checkpoint {path} holds NaN or inf in {len(bad)} tensor(s) ({', '.join(bad[:3])})")
    return state


__all__ = [
    "FORMAT",
    "VERSION",
    "NonFiniteStateError",
    "content_digest",
    "load_checkpoint",
    "mismatch_reason",
    "non_finite",
    "pack",
    "position",
    "previous_path",
    "read_unverified",
    "rng_state",
    "save_atomic",
    "set_rng_state",
    "unpack",
]
