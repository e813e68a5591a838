"""One writer per run directory: an advisory lock held for a run's (or an evaluation's) lifetime.

The lock is ``fcntl.flock`` on ``DIR/.nasfw.lock`` (``msvcrt.locking`` on Windows). The kernel drops it when
the holder exits however it exits (SIGKILL, OOM, power loss of a local disk), so a stale lock file left by
a killed process is simply taken over: the file's content (PID, host, start time, command) is only
information for the message, never trusted to decide. The file is never deleted: unlinking a lock file
lets two processes each lock a different inode of the same name.

Under torchrun only rank 0 takes it (the other ranks write nothing); the engine broadcasts the outcome.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from nasfw.errors import NasfwError

LOCK_NAME = ".nasfw.lock"


class RunLockedError(NasfwError):
    """Another live process holds the directory's lock."""


class RunLock:
    """The lock of one directory; :meth:`acquire` raises :class:`RunLockedError` when another process holds it."""

    def __init__(self, directory: str | Path, what: str = "run"):
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self.what = what
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, hint: str = "") -> RunLock:
        """Take the lock without waiting. ``hint`` ends the message when another process holds it."""
        if self._fd is not None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            locked = _try_lock(fd)
        except OSError as exc:  # a file system without locks (some network mounts)
            os.close(fd)
            warnings.warn(f"cannot lock {self.path} ({exc.strerror}); make sure no other nasfw process writes to "
                          f"{self.directory}", stacklevel=2)
            return self
        if not locked:
            holder = _describe(_read(fd))
            os.close(fd)
            raise RunLockedError(f"{self.directory} is in use by another nasfw {self.what} ({holder}); wait for it "
                                 f"to finish or stop it{hint}")
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": " ".join(["nasfw", *sys.argv[1:]])[:300]}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(info) + "\n").encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            _unlock(fd)
        os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def _read(fd: int) -> dict[str, Any]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = os.read(fd, 4096)
        info = json.loads(data.decode("utf-8", "replace") or "{}")
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def _describe(info: dict[str, Any]) -> str:
    if not info.get("pid"):
        return "PID unknown"
    where = f" on {info['host']}" if info.get("host") and info["host"] != socket.gethostname() else ""
    since = f", since {info['started']}" if info.get("started") else ""
    cmd = f": {info['command']}" if info.get("command") else ""
    return f"PID {info['pid']}{where}{since}{cmd}"


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import errno
    import fcntl

    def _try_lock(fd: int) -> bool:
        """True when taken; False when another open file holds it; OSError when the file system cannot lock."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


__all__ = ["LOCK_NAME", "RunLock", "RunLockedError"]
