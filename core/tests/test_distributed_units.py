"""nasfw.distributed: sharding of global batches, whole-batch evaluation shards, the single-process no-ops, and
(under torchrun with gloo, 2 processes) weighted gradient averaging and global-batch BatchNorm against the
one-process math."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from nasfw.data import BatchStream
from nasfw.distributed import LOCAL, Dist, fingerprint
from nasfw.engine import own_batches


def _data(n: int = 37) -> TensorDataset:
    return TensorDataset(torch.arange(n, dtype=torch.float32).view(n, 1), torch.arange(n))


@pytest.mark.parametrize("world", [2, 3])
def test_shards_of_every_global_batch_make_the_one_process_batch(world):
    ds = _data()
    one = BatchStream(ds, 8, seed=5)
    ranks = [BatchStream(ds, 8, seed=5, dist=Dist(r, world)) for r in range(world)]
    for _ in range(12):  # crosses epoch ends (37 = 4 x 8 + 5)
        _, y = one.next()
        shards = [s.next()[1] for s in ranks]
        assert torch.equal(torch.cat(shards), y)
        assert max(len(s) for s in shards) - min(len(s) for s in shards) <= 1
        assert all(s.state_dict() == one.state_dict() for s in ranks)  # the state is global


def test_a_tail_batch_smaller_than_the_world_gives_every_rank_one_sample():
    ds = _data(9)  # batches of 8 and 1
    ranks = [BatchStream(ds, 8, seed=0, shuffle=False, dist=Dist(r, 2)) for r in range(2)]
    for s in ranks:
        s.next()
    assert [s.next()[1].tolist() for s in ranks] == [[8], [8]]


def test_a_sharded_stream_resumes_under_another_world_size():
    ds = _data()
    two = [BatchStream(ds, 8, seed=1, dist=Dist(r, 2)) for r in range(2)]
    for _ in range(3):
        for s in two:
            s.next()
    one = BatchStream(ds, 8, seed=1)
    one.load_state_dict(two[0].state_dict())
    ref = BatchStream(ds, 8, seed=1)
    for _ in range(3):
        ref.next()
    assert torch.equal(one.next()[1], ref.next()[1])


def test_solo_reopens_a_sharded_stream_with_whole_batches():
    ds = _data()
    d = Dist(1, 2)
    s = BatchStream(ds, 8, seed=2, dist=d)
    ref = BatchStream(ds, 8, seed=2)
    assert torch.equal(s.next()[1], ref.next()[1][4:])
    with d.solo():
        assert torch.equal(s.next()[1], ref.next()[1])
    assert torch.equal(s.next()[1], ref.next()[1][4:])


def test_own_batches_split_whole_batches_round_robin():
    ds = _data()
    parts = [own_batches(ds, 8, Dist(r, 2)) for r in range(2)]
    got = {r: [b[1].tolist() for b in BatchStream(p, 8, seed=0, shuffle=False).epoch_batches()]
           for r, p in enumerate(parts)}
    whole = [b[1].tolist() for b in BatchStream(ds, 8, seed=0, shuffle=False).epoch_batches()]
    assert got[0] == whole[0::2] and got[1] == whole[1::2]
    assert len(own_batches(ds, 8, Dist(1, 2), limit=1)) == 0


def test_single_process_helpers_do_nothing():
    t = torch.randn(3)
    before = t.clone()
    LOCAL.average_([t], weight=5.0)
    assert torch.equal(t, before) and LOCAL.broadcast_object({"a": 1}) == {"a": 1}
    assert not LOCAL.enabled and LOCAL.is_main and LOCAL.share([1, 2, 3]) == [1, 2, 3]
    LOCAL.assert_same(t, "anything")
    assert fingerprint({"a": t, "b": [1, "x"]}) == fingerprint({"b": [1, "x"], "a": before})
    assert fingerprint(t) != fingerprint(t + 1)


WORKER = textwrap.dedent('''
    import json, os, sys
    import torch
    from torch import nn
    from nasfw.distributed import DistributedError, convert_batchnorm, init_from_env

    d = init_from_env("cpu")
    r = d.rank
    out = {}
    # weighted average: ranks hold 3 and 1 samples
    g = torch.full((2,), float(r + 1))
    d.average_([g], weight=3.0 if r == 0 else 1.0)
    out["avg"] = g.tolist()
    # global-batch BN on shards vs plain BN on the whole batch (same init on every rank)
    torch.manual_seed(0)
    x = torch.randn(8, 3, 4, 4, dtype=torch.float64)
    w = torch.randn(8, 3, 4, 4, dtype=torch.float64)
    def make():
        torch.manual_seed(1)
        return nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3), nn.ReLU()).double()
    ref = make()
    loss = (ref(x) * w).mean()
    loss.backward()
    net = make()
    assert convert_batchnorm(net) == 1
    sl = slice(4 * r, 4 * r + 4)
    (net(x[sl]) * w[sl]).mean().backward()
    d.average_([p.grad for p in net.parameters()], weight=4)
    out["grad_gap"] = max(float((p.grad - q.grad).abs().max()) for p, q in zip(net.parameters(), ref.parameters()))
    out["stat_gap"] = max(float((net[1].running_mean - ref[1].running_mean).abs().max()),
                          float((net[1].running_var - ref[1].running_var).abs().max()))
    with d.local_bn():
        net.train()
        y = net[1](x[:4].to(torch.float64)[:, :, :, :])
    out["local_ok"] = True
    try:
        d.assert_same(torch.tensor([r]), "the rank")
        out["mismatch_caught"] = False
    except DistributedError as exc:
        out["mismatch_caught"] = "disagree on the rank" in str(exc)
    d.assert_same(torch.tensor([7]), "a constant")
    out["obj"] = d.broadcast_object({"rank": r})
    # the first torch.optim optimizer imports torch._dynamo, which kept the live group (and its gloo threads)
    # alive past destroy_process_group: those threads then died in interpreter teardown (SIGABRT)
    torch.optim.SGD(net.parameters(), lr=0.1)
    from nasfw.distributed import shutdown
    shutdown()
    out["threads_after_shutdown"] = sorted(
        open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task")
    ) if os.path.isdir("/proc/self/task") else []
    with open(os.path.join(sys.argv[1], f"rank{r}.json"), "w") as fh:
        json.dump(out, fh)
''')


def _torchrun_2(tmp_path: Path, worker: str) -> subprocess.CompletedProcess:
    """Run ``worker`` (given ``tmp_path`` as argv[1]) in 2 gloo processes; they must finish with exit 0."""
    script = tmp_path / "worker.py"
    script.write_text(worker)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                          str(script), str(tmp_path)], capture_output=True, text=True, timeout=180, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="torch.distributed with the gloo backend is not available")
def test_two_gloo_processes_average_and_normalise_like_one_process(tmp_path):
    _torchrun_2(tmp_path, WORKER)
    outs = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for o in outs:
        assert o["avg"] == [1.25, 1.25]  # (3·1 + 1·2) / 4
        assert o["grad_gap"] < 1e-12 and o["stat_gap"] < 1e-12  # float64: the same math up to rounding
        assert o["mismatch_caught"] and o["local_ok"] and o["obj"] == {"rank": 0}
        # nasfw.distributed.shutdown() stopped the process group's threads before interpreter exit
        assert not [t for t in o["threads_after_shutdown"] if "gloo" in t], o["threads_after_shutdown"]


def test_an_optimizer_that_is_not_distributed_is_refused_under_several_processes(tmp_path):
    from nasfw import testing as kit
    from nasfw.config import RunConfig
    from nasfw.engine import build, prepare
    from nasfw.errors import ConfigError

    config = RunConfig(space="toy-cell", optimizer="kit-sgd", selector="kit-strongest", dataset="toy-images",
                       device="cpu", log={"progress": "none", "tensorboard": False, "plots": False})
    run = prepare(config, kit.toy_registry(load_entrypoints=False), tmp_path / "run", quiet=True)
    run.dist = Dist(0, 2)  # as under torchrun; the refusal comes before any collective
    with pytest.raises(ConfigError, match="'kit-sgd' does not support multi-process runs"):
        build(run)


HELD_GROUP_WORKER = textwrap.dedent('''
    import atexit, os, sys
    import torch, torch.distributed as tdist
    tdist.init_process_group("gloo")  # made before nasfw imports torch._dynamo: dynamo then holds the group
    torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)  # imports torch._dynamo
    from nasfw.cli import main
    from nasfw.distributed import init_from_env
    init_from_env("cpu")
    r = os.environ["RANK"]
    atexit.register(lambda: open(os.path.join(sys.argv[1], f"atexit{r}"), "w").close())
    print(f"rank {r} done", flush=True)
    main(["--version"])
''')


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="torch.distributed with the gloo backend is not available")
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="gloo threads are listed from Linux /proc")
def test_gloo_threads_that_outlive_the_group_do_not_abort_a_finished_command(tmp_path):
    """torch._dynamo imported after the group was made keeps it (and gloo's threads) alive past
    destroy_process_group; the CLI then leaves with os._exit(code) after flushing, instead of letting C++ static
    teardown hit running threads (SIGABRT). The skipped atexit handler shows that path was taken."""
    res = _torchrun_2(tmp_path, HELD_GROUP_WORKER)
    assert "rank 0 done" in res.stdout and "rank 1 done" in res.stdout and "nasfw" in res.stdout  # flushed
    assert not list(tmp_path.glob("atexit*"))
