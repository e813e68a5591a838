"""Checkpoint format 3: the state's tensors packed into a few flat buffers, and what stays as it was."""

from __future__ import annotations

import zipfile
from collections import OrderedDict

import pytest
import torch

from nasfw import checkpoint
from nasfw.checkpoint import (
    NonFiniteStateError,
    _Digest,
    load_checkpoint,
    pack,
    read_unverified,
    save_atomic,
    unpack,
)
from nasfw.errors import CheckpointError


def _state() -> dict:
    g = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    cl = torch.randn(2, 3, 4, 5, generator=g).contiguous(memory_format=torch.channels_last)
    return {
        "epoch": 3,
        "supernet": net.state_dict(),  # OrderedDict; float weights and an int64 counter
        "optimizer": {"state": {0: {"momentum": torch.randn(4, 3, 3, 3, generator=g)}}, "lr": [0.1, 0.2]},
        "misc": {"scalar": torch.tensor(2.5), "bool": torch.tensor([True, False]), "empty": torch.zeros(0, 3),
                 "channels_last": cl, "transposed": torch.randn(3, 4, generator=g).t(),
                 "half": torch.randn(5, generator=g).half(), "pair": (torch.arange(3), "x"),
                 "param": torch.nn.Parameter(torch.ones(2)), "grad": torch.ones(2, requires_grad=True)},
        "rng": torch.get_rng_state(),
    }


def _same(a, b) -> None:
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
        assert a.requires_grad == b.requires_grad
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    else:
        assert a == b


def test_pack_and_unpack_round_trip_every_kind_of_entry():
    state = _state()
    skeleton, buffers = pack(state)
    # one buffer per top-level entry, dtype and device; Parameters, tensors with grad and empty ones stay as they are
    assert set(buffers) == {"supernet/float32/cpu", "supernet/int64/cpu", "optimizer/float32/cpu", "misc/float32/cpu",
                            "misc/bool/cpu", "misc/float16/cpu", "misc/int64/cpu", "rng/uint8/cpu"}
    assert isinstance(skeleton["misc"]["param"], torch.nn.Parameter) and skeleton["misc"]["empty"].numel() == 0
    assert all(b.dim() == 1 and b.is_contiguous() for b in buffers.values())
    out = unpack(skeleton, buffers)
    _same(out, state)
    assert type(out["supernet"]) is OrderedDict and type(out["misc"]["pair"]) is tuple
    # every tensor has a storage of its own: nothing aliases a buffer or another tensor
    ptrs = [t.untyped_storage().data_ptr() for t in out["supernet"].values()]
    assert len(set(ptrs)) == len(ptrs)
    assert not any(t.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
                   for t in out["supernet"].values() for b in buffers.values())


def test_a_checkpoint_file_holds_a_few_storages_and_loads_the_same_state(tmp_path):
    path = tmp_path / "checkpoint.pt"
    state = _state()
    save_atomic(state, path, finite=("supernet", "optimizer"))
    with zipfile.ZipFile(path) as zf:
        storages = [n for n in zf.namelist() if "/data/" in n]
    assert len(storages) == 11  # 8 buffers, and the Parameter, the tensor with grad and the empty one as they are
    loaded = load_checkpoint(path, finite=("supernet", "optimizer"))
    assert loaded["format"] == checkpoint.FORMAT and loaded["version"] == checkpoint.VERSION == 3
    _same({k: loaded[k] for k in state}, state)
    _same({k: read_unverified(path)[k] for k in state}, state)


def test_many_small_tensors_make_one_storage_per_dtype(tmp_path):
    """The reason for packing: a DARTS supernet's state is thousands of small tensors."""
    path = tmp_path / "checkpoint.pt"
    sd = {f"edge{i}.weight": torch.full((8, 1, 3, 3), float(i)) for i in range(2000)}
    save_atomic({"supernet": sd}, path)
    with zipfile.ZipFile(path) as zf:
        assert sum("/data/" in n for n in zf.namelist()) == 1
    loaded = load_checkpoint(path)["supernet"]
    assert list(loaded) == list(sd) and all(torch.equal(loaded[k], sd[k]) for k in sd)


def test_non_finite_tensors_are_named_by_path_and_nothing_is_written(tmp_path):
    path = tmp_path / "checkpoint.pt"
    good = {"supernet": OrderedDict(a=torch.ones(3), b=torch.ones(2)), "epoch": 1}
    save_atomic(good, path, finite=("supernet",))
    before = path.read_bytes()
    bad = {"supernet": OrderedDict(a=torch.ones(3), b=torch.tensor([1.0, float("inf")])),
           "opt": [torch.tensor([float("nan")])], "epoch": 2}
    with pytest.raises(NonFiniteStateError, match=r"supernet\.b") as exc:
        save_atomic(bad, path, finite=("supernet", "opt"))
    assert sorted(exc.value.bad) == ["opt[0]", "supernet.b"]
    assert path.read_bytes() == before
    # a tensor that is not packed (a Parameter) is checked too
    with pytest.raises(NonFiniteStateError, match=r"supernet\.p"):
        save_atomic({"supernet": {"p": torch.nn.Parameter(torch.tensor([float("nan")]))}}, path, finite=("supernet",))
    save_atomic({"scores": torch.tensor([float("-inf")])}, path, finite=("supernet",))  # not a checked entry


def test_a_changed_placeholder_or_buffer_fails_the_checksum(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_atomic({"supernet": {"a": torch.ones(3), "b": torch.zeros(3)}}, path)
    raw = torch.load(path, weights_only=True)
    raw["state"]["supernet"]["a"][checkpoint.PACKED][1] = 3  # a reads b's values
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(path, repair=False)
    save_atomic({"supernet": {"a": torch.ones(3)}}, path, keep_previous=False)
    raw = torch.load(path, weights_only=True)
    raw["tensors"]["supernet/float32/cpu"][0] = 2.0
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(path, repair=False)


def test_version_2_checkpoints_still_load_and_verify(tmp_path):
    """Files written before packing: the state as it was, the digest over it."""
    path = tmp_path / "checkpoint.pt"
    state = {"epoch": 2, "supernet": {"w": torch.arange(4.0)}}
    payload = {"format": checkpoint.FORMAT, "version": 2, **state}
    d = _Digest()
    d.feed(payload)
    torch.save({**payload, checkpoint.DIGEST_KEY: d.hexdigest()}, path)
    loaded = load_checkpoint(path)
    assert loaded["epoch"] == 2 and torch.equal(loaded["supernet"]["w"], torch.arange(4.0))
    torch.save({**payload, "epoch": 3, checkpoint.DIGEST_KEY: d.hexdigest()}, path)
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(path, repair=False)


def test_an_entry_name_with_a_slash_is_still_checked(tmp_path):
    with pytest.raises(NonFiniteStateError, match=r"a/b\.w"):
        save_atomic({"a/b": {"w": torch.tensor([float("nan")])}}, tmp_path / "c.pt", finite=("a/b",))


def test_placeholders_that_do_not_fit_their_buffers_are_one_error(tmp_path):
    """A file whose digest matches but whose packed form is inconsistent (a writer's bug, a crafted file)."""
    path = tmp_path / "checkpoint.pt"
    save_atomic({"supernet": {"a": torch.ones(3)}}, path)
    raw = torch.load(path, weights_only=True)
    raw.pop(checkpoint.DIGEST_KEY)
    raw["state"]["supernet"]["a"][checkpoint.PACKED][2] = [4, 4]  # more values than the buffer holds
    raw[checkpoint.DIGEST_KEY] = checkpoint.content_digest(raw)
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path, repair=False)
