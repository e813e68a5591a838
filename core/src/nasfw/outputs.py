"""Writing run outputs so a full disk or a read-only directory is one line that names the file and the fix.

Every finished output (``summary.json``, ``genotype.json``, ``config.yaml``, plots) is written through
:func:`write_text_atomic`: a temporary file beside the target, renamed over it, so a failed write leaves the
previous version intact and no ``.tmp`` behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from nasfw.errors import NasfwError

#: errno values that mean "the environment refuses the write" (not a bug in nasfw)
SPACE_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}
PERMISSION_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}


class OutputError(NasfwError):
    """An output file could not be written (disk full, read-only or permission denied)."""


def is_environment_error(exc: BaseException) -> bool:
    """True for an OSError the user's environment causes (full disk, read-only, no permission)."""
    return isinstance(exc, OSError) and exc.errno in SPACE_ERRNOS | PERMISSION_ERRNOS


def write_error(path: str | Path, exc: OSError, fix: str | None = None) -> OutputError:
    """The one-line error for a failed write of ``path``; ``fix`` says how to continue (default: generic)."""
    reason = exc.strerror or type(exc).__name__
    if fix is None:
        if exc.errno in SPACE_ERRNOS:
            fix = "free disk space and retry"
        elif exc.errno in PERMISSION_ERRNOS:
            fix = "make the directory writable and retry"
        else:
            fix = "check the file system and retry"
    return OutputError(f"cannot write {path}: {reason}; {fix}")


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def write_bytes_atomic(path: str | Path, data: bytes, fix: str | None = None) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename; an OSError becomes :class:`OutputError`
    with the temporary file removed and the previous ``path`` (if any) untouched."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        remove_quietly(tmp)
        raise write_error(path, exc, fix) from None


def write_text_atomic(path: str | Path, text: str, fix: str | None = None) -> None:
    write_bytes_atomic(path, text.encode("utf-8"), fix)


__all__ = ["OutputError", "is_environment_error", "write_bytes_atomic", "write_error", "write_text_atomic"]
