"""Fixtures shared by the cross-distribution tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from nasfw.testing import run_cli


@pytest.fixture
def cli_exit() -> Callable[[list[str]], tuple[int, str]]:
    """Run ``nasfw ARGS`` through the installed entry point (which maps errors to exit codes):
    returns (exit code, stderr)."""

    def call(args: list[str]) -> tuple[int, str]:
        code, _, err = run_cli(*args)
        return code, err

    return call
