"""Fixtures shared by the cross-distribution tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from nasfw.cli import main


@pytest.fixture
def cli_exit(capsys) -> Callable[[list[str]], tuple[int, str]]:
    """Run ``nasfw ARGS`` through the installed entry point (which maps errors to exit codes):
    returns (exit code, stderr)."""

    def call(args: list[str]) -> tuple[int, str]:
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = exc.code
        return code, capsys.readouterr().err

    return call
