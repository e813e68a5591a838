"""Errors of this plugin (all :class:`nasfw.errors.NasfwError`, so the CLI reports one line, exit 2)."""

from __future__ import annotations

from nasfw.errors import NasfwError


class SaliencyError(NasfwError):
    """A saliency or proxy came out non-finite: silently picking `none` would hide it (the reference's NaN run)."""
