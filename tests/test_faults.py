"""Fault suite: the attacks of issue #24, done by the tests themselves.

Corrupted and deleted checkpoints, a diverging search with a checkpoint every step, two writers on one run
directory, a killed writer's stale lock, edited and empty configs, hostile genotypes, full disks and read-only
directories, undecodable images, and a fuzz of generated bad command lines. Every bad input must end in exit
code 2 with one line on stderr and no traceback, and must leave the finished files of a run as they were.
Runs are tiny (2 cells of 4 channels, 2 steps per epoch on the embedded digits) so the module stays fast.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import string
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nasfw.checkpoint import NonFiniteStateError, load_checkpoint, previous_path, read_unverified, save_atomic
from nasfw.errors import CheckpointError
from nasfw.genotype import Genotype
from nasfw.runlock import LOCK_NAME, RunLock
from nasfw.testing import run_cli

NET = ["--set", "space.layers=2", "--set", "space.init_channels=4", "--set", "search.eval_batches=1",
       "--batch-size", "16", "--quiet", "--set", "log.plots=false", "--set", "log.tensorboard=false"]
TINY = [*NET, "--set", "search.steps_per_epoch=2"]
#: "within a second" on an idle machine; the bound leaves room for a loaded 2-core CI runner
FAST_S = 5.0


def one_line_error(res, *needles: str) -> str:
    """Assert exit 2, exactly one stderr line starting 'Error:', no traceback; returns the line."""
    lines = res.err.strip().splitlines()
    assert res.code == 2, (res.code, res.err[-2000:])
    assert len(lines) == 1 and lines[0].startswith("Error:") and "Traceback" not in res.err, res.err[-2000:]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def snapshot(run_dir: Path) -> dict[str, str]:
    """SHA-256 of every file of a run directory (the lock file excluded: it records who last held it)."""
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file() and p.name != LOCK_NAME}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished 2-epoch run (never modified: tests work on copies)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    res = run_cli("run", "--epochs", "2", "--out", str(out), *TINY)
    assert res.code == 0, res.err
    return out


def resumable_copy(finished: Path, dst: Path) -> Path:
    """A copy of the finished run as it was before its last step (summary and genotype not yet written)."""
    shutil.copytree(finished, dst)
    for f in ("summary.json", "genotype.json"):
        (dst / f).unlink()
    return dst


# --------------------------------------------------------------------------- corrupting a checkpoint


def storage_offset(path: Path, tensor: torch.Tensor) -> int:
    """File offset of ``tensor``'s bytes (torch.save stores each storage uncompressed; a checkpoint packs the
    state's tensors into a few flat storages, so the bytes sit inside one of them)."""
    want = tensor.contiguous().view(torch.uint8).numpy().tobytes()
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
        for info in zf.infolist():
            at = zf.read(info.filename).find(want) if "/data/" in info.filename else -1
            if at >= 0:
                assert info.compress_type == zipfile.ZIP_STORED
                fh.seek(info.header_offset)
                header = fh.read(30)
                name_len, extra_len = struct.unpack("<HH", header[26:30])
                return info.header_offset + 30 + name_len + extra_len + at
    raise AssertionError("storage not found")


def flip_exponent_bit(path: Path, tensor: torch.Tensor) -> None:
    """Flip the top exponent bit of the first float32 of ``tensor`` in the file (1e-3 becomes ~1e35)."""
    at = storage_offset(path, tensor) + 3
    data = bytearray(path.read_bytes())
    data[at] ^= 0x40
    path.write_bytes(bytes(data))


def zero_bytes(path: Path, tensor: torch.Tensor, n: int = 16) -> None:
    at = storage_offset(path, tensor) + tensor.numel() * tensor.element_size() // 2
    data = bytearray(path.read_bytes())
    data[at:at + n] = bytes(n)
    path.write_bytes(bytes(data))


def test_bit_flip_in_alpha_is_detected_and_resume_uses_the_previous_checkpoint(finished, tmp_path):
    run = resumable_copy(finished, tmp_path / "run")
    ckpt = run / "checkpoint.pt"
    state = read_unverified(ckpt)
    flip_exponent_bit(ckpt, state["supernet"]["alphas.normal"])
    flipped = read_unverified(ckpt)["supernet"]["alphas.normal"]
    assert not torch.equal(flipped, state["supernet"]["alphas.normal"])  # torch.load alone does not notice

    res = run_cli("run", "--resume", str(run), "--quiet")
    assert res.code == 0, res.err
    assert "fails its SHA-256 check" in res.err and "resuming from the previous good checkpoint" in res.err
    assert (run / "checkpoint.corrupt.pt").exists()
    assert Genotype.load(run / "genotype.json") == Genotype.load(finished / "genotype.json")
    resumed = load_checkpoint(ckpt)  # the rewritten checkpoint verifies
    assert torch.equal(resumed["supernet"]["alphas.normal"], state["supernet"]["alphas.normal"])


def test_corrupt_weights_in_both_checkpoints_stop_with_one_line_and_change_nothing(finished, tmp_path):
    run = resumable_copy(finished, tmp_path / "run")
    for f in ("checkpoint.pt", "checkpoint.prev.pt"):
        weight = read_unverified(run / f)["supernet"]["stem.0.weight"]
        zero_bytes(run / f, weight)
    before = snapshot(run)
    res = run_cli("run", "--resume", str(run), "--quiet")
    one_line_error(res, "SHA-256", "checkpoint.prev.pt")
    assert snapshot(run) == before


def test_deleted_checkpoint_resumes_from_the_previous_one_with_a_warning(finished, tmp_path):
    run = resumable_copy(finished, tmp_path / "run")
    prev = load_checkpoint(previous_path(run / "checkpoint.pt"))
    (run / "checkpoint.pt").unlink()
    res = run_cli("run", "--resume", str(run), "--quiet")
    assert res.code == 0, res.err
    assert "checkpoint.pt is missing; resuming from the previous good checkpoint" in res.err
    assert f"after {prev['epoch']} epochs" in res.err  # not a silent restart from step 0
    assert Genotype.load(run / "genotype.json") == Genotype.load(finished / "genotype.json")
    m1, m2 = ((d / "metrics.jsonl").read_text().splitlines() for d in (finished, run))
    assert len(m1) == len(m2)  # the logs were truncated to the checkpoint, not rewritten from scratch


def test_checkpoint_without_checksum_loads_with_a_warning(tmp_path, capsys):
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": "nasfw-checkpoint", "version": 1, "epoch": 3}, path)
    assert load_checkpoint(path)["epoch"] == 3
    assert "before checkpoints carried a checksum" in capsys.readouterr().err


def test_a_changed_plain_value_fails_the_checksum(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_atomic({"epoch": 3, "w": torch.ones(4)}, path)
    state = torch.load(path, weights_only=True)
    state["state"]["epoch"] = 4  # a rewritten file with the old digest: not only tensor bytes are covered
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(path)


# --------------------------------------------------------------------------- only finite state is "good"


def test_a_non_finite_state_is_never_written(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_atomic({"supernet": {"w": torch.ones(3)}, "epoch": 1}, path, finite=("supernet",))
    before = path.read_bytes()
    bad = {"supernet": {"w": torch.tensor([1.0, float("nan"), 2.0])}, "epoch": 2}
    with pytest.raises(NonFiniteStateError, match=r"supernet\.w"):
        save_atomic(bad, path, finite=("supernet",))
    assert path.read_bytes() == before and not previous_path(path).exists()  # nothing rotated
    save_atomic({"scores": torch.tensor([float("-inf")]), "epoch": 2}, path, finite=("supernet",))  # not checked


def test_divergence_with_a_checkpoint_every_step_names_a_finite_checkpoint(tmp_path):
    """The issue's case: w_lr = 1e30 with search.checkpoint_every=1 (the NaN guard used to look every 10 steps)."""
    out = tmp_path / "run"
    res = run_cli("run", "--epochs", "2", "--set", "search.steps_per_epoch=15", "--set", "search.checkpoint_every=1",
                  "--set", "optimizer.w_lr=1e30", "--out", str(out), *NET)
    line = one_line_error(res, "diverged")
    written = [f for f in ("checkpoint.pt", "checkpoint.prev.pt") if (out / f).exists()]
    if written:
        assert str(out / "checkpoint.pt") in line and "last good (finite) checkpoint" in line and "--resume" in line
    else:
        assert "no checkpoint was written" in line and "--resume" not in line
    for f in written:  # every checkpoint on disk is finite (and verifies)
        state = load_checkpoint(out / f, finite=("supernet", "optimizer"), repair=False)
        assert all(torch.isfinite(t).all() for t in state["supernet"].values() if t.is_floating_point())


# --------------------------------------------------------------------------- one writer per run directory


HOLD_LOCK = """
import sys, time
from nasfw.runlock import RunLock
lock = RunLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_second_writer_is_refused_naming_the_holder_and_a_killed_holder_is_taken_over(finished, tmp_path):
    run = resumable_copy(finished, tmp_path / "run")
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        before = snapshot(run)
        for args in (["run", "--resume", str(run)], ["run", "--out", str(run), *TINY],
                     ["eval", "darts-v2", "--protocol", "quick", "--out", str(run), "-q"]):
            one_line_error(run_cli(*args), f"PID {proc.pid}", "in use by another nasfw")
        assert snapshot(run) == before  # the live run's files were not touched
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    res = run_cli("run", "--resume", str(run), "--quiet")  # the kernel dropped the dead holder's lock
    assert res.code == 0, res.err
    assert json.loads((run / LOCK_NAME).read_text())["pid"] == os.getpid()
    m1, m2 = ([json.loads(r)["kind"] for r in (d / "metrics.jsonl").read_text().splitlines()] for d in (finished, run))
    assert m1 == m2  # no duplicated rows


def test_two_writers_in_one_process_conflict_too(tmp_path):
    """flock belongs to the open file, not the process: a second lock in the same process is refused."""
    d = tmp_path / "d"
    d.mkdir()
    with RunLock(d):
        one_line_error(run_cli("run", "--out", str(d), *TINY), f"PID {os.getpid()}", "or choose another --out")
    with RunLock(d):  # released and taken again
        pass


def test_an_edited_config_is_refused_naming_the_fields_unless_forced(finished, tmp_path):
    run = resumable_copy(finished, tmp_path / "run")
    (run / "checkpoint.pt").write_bytes((run / "checkpoint.prev.pt").read_bytes())  # the end of epoch 2
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["search"]["epochs"] = 3
    cfg["seed"] = 5
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    before = snapshot(run)
    one_line_error(run_cli("run", "--resume", str(run)), "search.epochs: 2 -> 3", "seed: 0 -> 5", "--force")
    assert snapshot(run) == before
    one_line_error(run_cli("run", "--force", *TINY[:2]), "--force only applies to --resume")
    res = run_cli("run", "--resume", str(run), "--force", "--quiet")
    assert res.code == 0 and "resuming with the edited" in res.err, res.err
    assert json.loads((run / "summary.json").read_text())["epochs"] == 3


def test_a_checkpoint_of_another_run_is_one_line(finished, tmp_path):
    """A checkpoint copied from a run of another configuration: refused by its saved config, and (forced, or an
    old checkpoint without one) by the supernet it does not fit, never torch's 161 KB size-mismatch error."""
    run = resumable_copy(finished, tmp_path / "run")
    state = load_checkpoint(run / "checkpoint.pt")
    state.pop("sha256", None)
    state["config"]["space"]["params"]["layers"] = 3
    state["supernet"]["stem.0.weight"] = torch.zeros(7, 1, 3, 3)
    for f in ("checkpoint.pt", "checkpoint.prev.pt"):
        save_atomic(state, run / f, keep_previous=False)
    before = snapshot(run)
    one_line_error(run_cli("run", "--resume", str(run)), "space.params.layers: 3 -> 2")
    res = run_cli("run", "--resume", str(run), "--force")
    lines = res.err.strip().splitlines()  # --force says what it accepted, the plan is shown, then the error
    warning, line = lines[0], lines[-1]
    assert res.code == 2 and warning.startswith("warning: resuming with the edited") and "Traceback" not in res.err
    assert all(" plan: " in x for x in lines[1:-1]), lines
    assert line.startswith("Error:") and "does not fit this run" in line and "stem.0.weight" in line
    after = snapshot(run)
    assert len(line) < 600 and after.pop("config.yaml") and {k: v for k, v in before.items() if k != "config.yaml"} \
        == after  # config.yaml: --force rewrote it with this directory as `out` (the copy named the original)


def test_an_empty_config_is_refused(finished, tmp_path):
    run = resumable_copy(finished, tmp_path / "run")
    (run / "config.yaml").write_text("")
    before = snapshot(run)
    one_line_error(run_cli("run", "--resume", str(run)), "config.yaml is empty")
    assert snapshot(run) == before


def test_a_finished_run_is_not_resumed(finished, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    before = snapshot(run)
    one_line_error(run_cli("run", "--resume", str(run)), "already finished")
    assert snapshot(run) == before


# --------------------------------------------------------------------------- hostile genotypes


def _million_edges() -> str:
    """A genotype of 10**6 edges, as text (building 10**6 dicts to dump them would dominate the test)."""
    edges = ",".join(['{"node": 2, "input": 0, "op": "skip_connect"}'] * 10**6)
    return '{"space": "darts", "cells": {"normal": [' + edges + '], "reduce": []}}'


def _darts(normal: list | None = None, **top: object) -> str:
    """A darts-v2-like genotype with ``normal`` replaced."""
    from nasfw.zoo import zoo_entry

    g = zoo_entry("darts-v2").genotype.model_dump(mode="json")
    if normal is not None:
        g["cells"]["normal"] = normal
    g.update(top)
    return json.dumps(g)


def _valid_normal() -> list[dict[str, object]]:
    return json.loads(_darts())["cells"]["normal"]


def _with(i: int, **field: object) -> list[dict[str, object]]:
    edges = _valid_normal()
    edges[i] = {**edges[i], **field}
    return edges


HOSTILE = {
    "node_1e30_float": (lambda: _darts(_with(0, node=1e30)), "valid integer"),
    "node_10_pow_30": (lambda: _darts(_with(0, node=10**30)), "less than or equal to"),
    "duplicate_edges": (lambda: _darts(_valid_normal() + _valid_normal()[:1]), "twice"),
    "nested_200000": (lambda: "[" * 200_000 + "]" * 200_000, "nested too deeply"),
    "int_5000_digits": (lambda: '{"space": "darts", "cells": {}, "extra": {"x": ' + "9" * 5000 + "}}", "JSON"),
    "empty_cell": (lambda: _darts([]), "node 2 has 0 input edge"),
    "edges_1e6": (_million_edges, "bytes"),
    "unknown_op": (lambda: _darts(_with(0, op="sep_conv_9x9")), "sep_conv_9x9"),
    "node_as_string": (lambda: _darts(_with(0, node="2")), "valid integer"),
    "input_as_bool": (lambda: _darts(_with(0, input=True)), "valid integer"),
    "op_of_1e6_chars": (lambda: _darts(_with(0, op="x" * 10**6)), "at most"),
    "node_out_of_range": (lambda: _darts(_with(0, node=9)), "out of range"),
    "backward_edge": (lambda: _darts(_with(0, input=5)), "does not point forward"),
    "none_op": (lambda: _darts(_with(0, op="none")), "none"),
    "empty_file": (lambda: "", "empty"),
    "version_true": (lambda: _darts(version=True), "version"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_genotype_is_one_line_fast_for_eval_and_show(tmp_path, name):
    make, needle = HOSTILE[name]
    f = tmp_path / "genotype.json"
    f.write_text(make())
    for args in (["eval", str(f), "--dry-run"], ["show", str(f), "--out", str(tmp_path / "img")]):
        t0 = time.perf_counter()
        res = run_cli(*args)
        seconds = time.perf_counter() - t0
        one_line_error(res, needle)
        assert seconds < FAST_S, (args, seconds)
    assert not (tmp_path / "img").exists() or not any((tmp_path / "img").iterdir())


def test_a_directory_instead_of_a_genotype_file(tmp_path):
    d = tmp_path / "genotype.json"
    d.mkdir()
    one_line_error(run_cli("eval", str(d), "--dry-run"), "no genotype.json")
    run = tmp_path / "run"
    (run / "genotype.json").mkdir(parents=True)
    one_line_error(run_cli("show", str(run)), "is a directory")


def test_an_nb201_genotype_in_a_darts_run_directory_is_refused(finished, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    from nasfw.registry import get_registry

    get_registry().create("search_space", "nb201").parse(cell).save(run / "genotype.json")
    before = snapshot(run)
    for args in (["eval", str(run), "--dry-run"], ["show", str(run)]):
        one_line_error(run_cli(*args), "space 'nb201'", "searched space 'darts'")
    assert snapshot(run) == before


def test_every_zoo_genotype_passes_its_space_check():
    from nasfw.registry import get_registry
    from nasfw.zoo import resolve, zoo_names

    for name in zoo_names():
        resolved = resolve(name, registry=get_registry())
        assert resolved.space_obj is not None, name


def test_genotype_fields_are_not_coerced():
    edge = {"node": 2, "input": 0, "op": "skip_connect"}
    assert Genotype.from_dict({"space": "darts", "cells": {"normal": [edge]}}).cells["normal"][0].node == 2
    from nasfw.errors import GenotypeError

    for bad in ({"node": "2"}, {"input": True}, {"node": 2.0}, {"op": 3}):
        with pytest.raises(GenotypeError):
            Genotype.from_dict({"space": "darts", "cells": {"normal": [{**edge, **bad}]}})


# --------------------------------------------------------------------------- bounded numbers and resources


@pytest.mark.parametrize("args, needle", [
    (["run", "--seed", "9" * 40], "--seed"),
    (["run", "--batch-size", str(10**30)], "--batch-size"),
    (["run", "--set", "seed=" + "9" * 5000], "too large"),
    (["run", "--set", "search.batch_size=100000"], "less than or equal to 65536"),
    (["run", "--set", "space.init_channels=" + "9" * 30], "out of range"),
    (["run", "--optimizer", ""], "--optimizer"),
    (["run", "--dataset", " "], "--dataset"),
    (["eval", "darts-v2", "--dry-run", "--seed", str(2**63)], "--seed"),
    (["eval", "darts-v2", "--dry-run", "--set", "epochs=" + "9" * 30], "epochs"),
    (["show", ""], "empty"),
])
def test_huge_or_empty_values_are_one_line_errors(tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    one_line_error(run_cli(*args), needle)
    assert not (tmp_path / "runs").exists()


def test_the_largest_seed_runs(tmp_path):
    res = run_cli("run", "--epochs", "1", "--seed", str(2**63 - 1), "--out", str(tmp_path / "run"), *NET,
                  "--set", "search.steps_per_epoch=1")
    assert res.code == 0, res.err


def _failing_torch_save(monkeypatch, err: int, after: int = 0) -> None:
    """torch.save inside nasfw.checkpoint writes half a file and then fails with ``err``, from call ``after``."""
    import nasfw.checkpoint as ckpt

    real, calls = ckpt.torch.save, [0]

    class FailingTorch:
        def __getattr__(self, name):
            return getattr(torch, name)

        @staticmethod
        def save(obj, fh, *a, **k):
            calls[0] += 1
            if calls[0] > after:
                fh.write(b"partial")
                raise OSError(err, os.strerror(err))
            return real(obj, fh, *a, **k)

    monkeypatch.setattr(ckpt, "torch", FailingTorch())


def test_a_full_disk_during_a_checkpoint_is_one_line_and_loses_nothing(tmp_path, monkeypatch):
    out = tmp_path / "run"
    _failing_torch_save(monkeypatch, errno.ENOSPC, after=1)  # the step-1 checkpoint succeeds, the next fails
    res = run_cli("run", "--epochs", "1", "--set", "search.checkpoint_every=1", "--out", str(out), *TINY)
    one_line_error(res, str(out / "checkpoint.pt"), "No space left on device", "--resume")
    assert not list(out.glob("*.tmp"))
    monkeypatch.undo()
    assert load_checkpoint(out / "checkpoint.pt", repair=False)["global_step"] == 1  # the finished step is kept


def test_a_read_only_run_directory_for_show_and_resume(finished, tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    import matplotlib.figure

    def read_only(self, fname, *a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(fname))

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", read_only)
    monkeypatch.setattr("nasfw.plots.dot_available", lambda: False)
    before = snapshot(run)
    line = one_line_error(run_cli("show", str(run)), "Read-only file system", "--out")
    assert str(run) in line and snapshot(run) == before and not list(run.glob("*.tmp"))

    real = Path.write_bytes

    def probe_fails(self, data):
        if self.name == ".nasfw-write-test":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", probe_fails)
    (run / "summary.json").unlink()
    line = one_line_error(run_cli("run", "--resume", str(run)), "Read-only file system", "make it writable")
    assert "--out" not in line  # a resumed run cannot move


def test_a_failed_summary_write_leaves_the_old_file_and_no_tmp(tmp_path, monkeypatch):
    from nasfw.outputs import OutputError, write_text_atomic

    target = tmp_path / "summary.json"
    target.write_text("old")
    monkeypatch.setattr("nasfw.outputs.os.fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(OutputError, match=r"cannot write .*summary\.json: full; free disk space"):
        write_text_atomic(target, "new")
    assert target.read_text() == "old" and not list(tmp_path.glob("*.tmp"))


def _image_folder(root: Path, bad: dict[str, bytes] | None = None, sizes: tuple[int, ...] = (8,)) -> Path:
    from PIL import Image

    for split in ("train", "test"):
        for c, cls in enumerate(("a", "b")):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(4):
                size = sizes[i % len(sizes)]
                Image.new("RGB", (size, size), (40 * c + i, 10, 200)).save(d / f"{i}.png")
    for name, data in (bad or {}).items():
        (root / "train" / "a" / name).write_bytes(data)
    return root


@pytest.mark.parametrize("name, data", [("broken.png", b"\x89PNG\r\n\x1a\nnot really"), ("empty.jpg", b"")])
def test_an_undecodable_image_is_one_line_naming_the_file(tmp_path, monkeypatch, name, data):
    monkeypatch.setenv("NASFW_CACHE", str(tmp_path / "cache"))
    root = _image_folder(tmp_path / "imgs", {name: data})
    res = run_cli("run", "--dataset", "image-folder", "--data-dir", str(root), "--out", str(tmp_path / "run"), *TINY)
    one_line_error(res, "cannot decode image", name)


def test_dataset_resize_reaches_image_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("NASFW_CACHE", str(tmp_path / "cache"))
    root = _image_folder(tmp_path / "imgs", sizes=(8, 10))
    res = run_cli("run", "--dataset", "image-folder", "--data-dir", str(root), "--out", str(tmp_path / "r"), *TINY)
    one_line_error(res, "different sizes", "dataset.resize")
    from nasfw.builtin.datasets import ImageFolderData

    splits = ImageFolderData(ImageFolderData.Config(data_dir=str(root), resize=6)).splits(0)
    assert splits.shape.height == splits.shape.width == 6 and splits.train[0][0].shape[-1] == 6


# --------------------------------------------------------------------------- fuzz: generated bad command lines

FUZZ = settings(max_examples=120, deadline=None, derandomize=not os.environ.get("NASFW_FUZZ_RANDOM"),
                database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

huge_int = st.integers(min_value=2**63, max_value=10**60).map(str)
junk = st.text(string.ascii_letters + string.digits + "-_.", min_size=1, max_size=12).map(lambda s: "zz" + s)
bad_int = st.one_of(huge_int, st.integers(max_value=-1).map(str), junk, st.just(""), st.just("1.5"))
bad_set = st.one_of(
    st.tuples(st.sampled_from(["seed", "search.epochs", "search.batch_size", "search.num_workers",
                               "search.checkpoint_every", "space.layers"]), bad_int),
    st.tuples(junk.map(lambda k: "search." + k), st.just("1")),
    st.tuples(st.just("search.epochs"), st.integers(2, 300).map(lambda n: "[" * n + "]" * n)),
    st.tuples(st.sampled_from(["optimizer", "space", "selector", "dataset"]), junk),
).map(lambda kv: f"{kv[0]}={kv[1]}")


@st.composite
def bad_command(draw, finished: str, genotypes: list[str]) -> list[str]:
    kind = draw(st.sampled_from(["run_flag", "run_set", "resume", "out_finished", "eval", "show", "config"]))
    if kind == "run_flag":
        flag = draw(st.sampled_from(["--seed", "--batch-size", "--epochs", "--optimizer", "--space", "--selector",
                                     "--dataset", "--device"]))
        value = draw(bad_int if flag in ("--seed", "--batch-size", "--epochs") else st.one_of(junk, st.just("")))
        return ["run", flag, value, "--out", finished]
    if kind == "run_set":
        return ["run", "--set", draw(bad_set), *draw(st.sampled_from([[], ["--out", finished]]))]
    if kind == "resume":
        extra = draw(st.sampled_from([[], ["--set", "seed=1"], ["--epochs", "3"], ["--out", finished], ["--force"]]))
        return ["run", "--resume", finished, *extra]
    if kind == "out_finished":
        return ["run", "--out", finished, "--force"]
    if kind == "eval":
        target = draw(st.sampled_from([*genotypes, finished + "/genotype.json/x", "zz-no-such-genotype"]))
        extra = draw(st.sampled_from([["--dry-run"], ["--dry-run", "--seed", str(2**64)], ["--protocol", ""],
                                      ["--dry-run", "--set", "epochs=" + "9" * 25]]))
        return ["eval", target, *extra]
    if kind == "show":
        target = draw(st.sampled_from([*genotypes, "", "zz-no-such-genotype"]))
        return ["show", target, *draw(st.sampled_from([[], ["--space", ""], ["--format", "bmp"]]))]
    return ["config", "show", "--set", draw(bad_set)]


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory) -> list[str]:
    d = tmp_path_factory.mktemp("hostile")
    paths = []
    for name in ("node_10_pow_30", "duplicate_edges", "nested_200000", "int_5000_digits", "empty_cell", "unknown_op",
                 "node_as_string", "input_as_bool"):
        p = d / f"{name}.json"
        p.write_text(HOSTILE[name][0]())
        paths.append(str(p))
    return paths


def test_fuzzed_bad_command_lines_are_one_line_exit_2_and_change_no_finished_file(finished, hostile_files, tmp_path,
                                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)  # a command that wrongly started would write runs/ here
    before = snapshot(finished)
    seen: list[list[str]] = []

    @FUZZ
    @given(args=bad_command(str(finished), hostile_files))
    def check(args: list[str]) -> None:
        seen.append(args)
        res = run_cli(*args)
        lines = res.err.strip().splitlines()
        assert res.code == 2 and len(lines) == 1 and lines[0].startswith("Error:") and "Traceback" not in res.err, \
            (args, res.code, res.err[-1500:])

    check()
    assert len(seen) >= 100
    assert snapshot(finished) == before
    assert not (tmp_path / "runs").exists()
