"""``save_atomic``: the latest checkpoint exists at every instant, and the previous one is kept beside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nasfw import checkpoint
from nasfw.checkpoint import load_checkpoint, previous_path, save_atomic


def test_rotation_keeps_latest_and_previous(tmp_path):
    path = tmp_path / "checkpoint.pt"
    for epoch in (1, 2, 3):
        save_atomic({"epoch": epoch}, path)
    assert load_checkpoint(path)["epoch"] == 3
    prev = previous_path(path)
    assert prev.name == "checkpoint.prev.pt" and load_checkpoint(prev)["epoch"] == 2
    assert not os.path.samefile(path, prev)  # two files: damaging one leaves the other
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.prev.pt", "checkpoint.pt"]


def test_kill_before_the_final_rename_leaves_a_resumable_checkpoint(tmp_path, monkeypatch):
    """A process killed inside save_atomic, right before the new file is renamed into place: ``--resume`` must
    still find checkpoint.pt (the last complete epoch), not only checkpoint.prev.pt and a .tmp file."""
    path = tmp_path / "checkpoint.pt"
    save_atomic({"epoch": 1}, path)
    save_atomic({"epoch": 2}, path)
    real_replace = os.replace

    def killed_at_final_rename(src, dst):
        if Path(src).name.endswith(".tmp"):
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", killed_at_final_rename)
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"epoch": 3}, path)
    monkeypatch.setattr(checkpoint.os, "replace", real_replace)
    assert path.exists() and load_checkpoint(path)["epoch"] == 2
    save_atomic({"epoch": 3}, path)  # the next save recovers: stale .tmp overwritten, previous rotated
    assert load_checkpoint(path)["epoch"] == 3 and load_checkpoint(previous_path(path))["epoch"] == 2
    assert not (tmp_path / "checkpoint.pt.tmp").exists()


def test_rotation_without_hard_links(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError("hard links not supported")

    monkeypatch.setattr(checkpoint.os, "link", no_links)
    path = tmp_path / "checkpoint.pt"
    for epoch in (1, 2):
        save_atomic({"epoch": epoch}, path)
    assert load_checkpoint(path)["epoch"] == 2 and load_checkpoint(previous_path(path))["epoch"] == 1
