"""Shared fixtures: throw-away plugin distributions installed on sys.path for the test only."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from nasfw.registry import Registry, set_registry


def make_distribution(root: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str]) -> None:
    """Write a minimal installed distribution (``.dist-info`` + modules) that importlib.metadata finds."""
    info = root / f"{dist.replace('-', '_')}-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0.1\n")
    eps = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[nasfw]\n{eps}\n")
    for name, code in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(code))


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A temporary site directory on sys.path and a function that installs throw-away plugins into it."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    set_registry(None)

    def install(dist: str, code: str, module: str | None = None) -> None:
        module = module or dist.replace("-", "_")
        make_distribution(root, dist, {module: code}, {module: module})

    yield install
    set_registry(None)
    for mod in [m for m in sys.modules if m.startswith("tp_")]:
        del sys.modules[mod]


@pytest.fixture
def fresh_registry():
    set_registry(None)
    yield Registry
    set_registry(None)
