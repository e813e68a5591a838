"""Multi-process plumbing for ``torchrun``: one small object components reach as ``run.dist``.

``torchrun --nproc-per-node N -m nasfw run ...`` starts N processes with ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``
set; :func:`init_from_env` joins them into a process group (nccl on CUDA, gloo on CPU). Every process holds
the same supernet and takes its share of each *global* batch (the configured batch size is split across
ranks, see :class:`nasfw.data.BatchStream`), so gradients averaged with :meth:`Dist.average_` equal the
gradient of the whole batch and every rank takes the same step. Only rank 0 writes files.

Train-mode BatchNorm normalises with batch statistics, so a shard of 8 is not half of a batch of 16:
with ``sync_bn`` (the default) the supernet's and the evaluation network's BatchNorm layers compute their
statistics over the whole global batch (:func:`convert_batchnorm`, a differentiable all-reduce of the
per-channel sums, on CPU/gloo as on CUDA/nccl), which makes an N-process run take the one-process steps up
to floating-point rounding. ``run.evaluate`` passes whole batches per rank and keeps local statistics.

Without torchrun (``WORLD_SIZE`` unset or 1) :data:`LOCAL` is used: every method returns at once, so the
single-process path has no extra work, no host syncs and unchanged results.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import os
import pickle
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from nasfw.errors import NasfwError


class DistributedError(NasfwError):
    """The processes of a multi-process run disagree (a component that is not distributed-safe)."""


class Dist:
    """Rank, world size and the few collectives nasfw needs; all no-ops when ``world_size == 1``."""

    def __init__(self, rank: int = 0, world_size: int = 1, local_rank: int = 0, backend: str | None = None,
                 device: torch.device | None = None):
        self._rank, self._world_size, self.local_rank = int(rank), int(world_size), int(local_rank)
        self.backend = backend
        self.device = device or torch.device("cpu")  # where collective buffers live (cuda for nccl)
        self._solo = 0
        self._local_bn = 0

    # -- who am I ------------------------------------------------------------------------------
    @property
    def rank(self) -> int:
        return 0 if self._solo else self._rank

    @property
    def world_size(self) -> int:
        return 1 if self._solo else self._world_size

    @property
    def enabled(self) -> bool:
        """True when collectives actually run (several processes, not inside :meth:`solo`)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 of the whole group: the process that writes outputs (always True when alone)."""
        return self._rank == 0

    @contextmanager
    def solo(self) -> Iterator[None]:
        """Act as a single process inside the block (rank 0 running a step the others wait for).

        Streams created or reopened inside read world size 1 and take whole batches, and collectives
        are skipped, so a component that is not distributed-aware sees exactly a one-process run.
        """
        self._solo += 1
        try:
            yield
        finally:
            self._solo -= 1

    @property
    def global_bn(self) -> bool:
        """Whether converted BatchNorm layers use global-batch statistics right now."""
        return self.enabled and not self._local_bn

    @contextmanager
    def local_bn(self) -> Iterator[None]:
        """BatchNorm on this rank's batches alone (evaluations, where every rank holds whole batches)."""
        self._local_bn += 1
        try:
            yield
        finally:
            self._local_bn -= 1

    # -- collectives ---------------------------------------------------------------------------
    def average_(self, tensors: Iterable[torch.Tensor | None], weight: float = 1.0) -> None:
        """In place: ``t ← Σ_r w_r t_r / Σ_r w_r`` over ranks, in one all-reduce for all tensors.

        ``weight`` is this rank's share (its local batch size), so uneven shards still give the gradient
        of the mean loss over the global batch. ``None`` entries (unused parameters) are skipped; they are
        the same on every rank because every rank runs the same architecture.
        """
        if not self.enabled:
            return
        ts = [t for t in tensors if t is not None]
        if not ts:
            return
        import torch.distributed as tdist

        dtype = torch.float64 if any(t.dtype == torch.float64 for t in ts) else torch.float32
        dev = ts[0].device
        flat = torch.cat([*(t.detach().reshape(-1).to(dtype) for t in ts), torch.ones(1, dtype=dtype, device=dev)])
        flat.mul_(float(weight))
        tdist.all_reduce(flat)
        flat = flat[:-1] / flat[-1]
        offset = 0
        with torch.no_grad():
            for t in ts:
                n = t.numel()
                t.copy_(flat[offset:offset + n].view_as(t))
                offset += n

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """In-place all-reduce sum (e.g. correct counts, losses and sample counts of an evaluation)."""
        if self.enabled:
            import torch.distributed as tdist

            tdist.all_reduce(tensor)
        return tensor

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        """Rank ``src``'s ``obj`` on every rank (a decision made once)."""
        if not self.enabled:
            return obj
        import torch.distributed as tdist

        box = [obj]
        tdist.broadcast_object_list(box, src=src, device=self.device if self.backend == "nccl" else None)
        return box[0]

    def broadcast_(self, tensors: Iterable[torch.Tensor], src: int = 0) -> None:
        """In place: every rank gets rank ``src``'s values."""
        if not self.enabled:
            return
        import torch.distributed as tdist

        for t in tensors:
            buf = t.detach() if t.device.type == self.device.type else t.detach().to(self.device)
            tdist.broadcast(buf, src=src)
            if buf is not t:
                with torch.no_grad():
                    t.copy_(buf)

    def broadcast_module_(self, module: nn.Module) -> None:
        """Start every rank from rank 0's parameters and buffers (whatever each rank's init did)."""
        if not self.enabled:
            return
        self.broadcast_([p.data for p in module.parameters()])
        self.broadcast_([b for b in module.buffers()])

    def sync_buffers_(self, module: nn.Module) -> None:
        """Average the floating buffers (BatchNorm running statistics) over ranks.

        Each rank's BN running statistics follow its own shard during training; they are averaged before
        end-of-epoch evaluations and before every checkpoint, so the checkpoint holds one set that does not
        depend on the world size. Integer and boolean buffers (counters, op masks) are equal on all ranks.
        """
        if not self.enabled:
            return
        self.average_([b for b in module.buffers() if b.is_floating_point()])

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as tdist

            tdist.barrier()

    def assert_same(self, value: Any, what: str) -> None:
        """Raise :class:`DistributedError` unless ``value`` is identical on every rank (one small gather)."""
        if not self.enabled:
            return
        import torch.distributed as tdist

        digest = fingerprint(value)
        digests: list[Any] = [None] * self.world_size
        tdist.all_gather_object(digests, digest)
        if len(set(digests)) != 1:
            raise DistributedError(f"the {self.world_size} processes disagree on {what} (rank digests "
                                   f"{', '.join(d[:8] for d in digests)}); the run cannot continue consistently")

    # -- data ----------------------------------------------------------------------------------
    def share(self, indices: list[int]) -> list[int]:
        """This rank's part of one global batch: a contiguous slice (sizes differ by at most one).

        A tail batch smaller than the world size gives each rank one sample (repeated), so no rank runs an
        empty forward pass; :meth:`average_` weights by the local size, so this costs only a slight bias.
        """
        n, r, w = len(indices), self.rank, self.world_size
        if w == 1:
            return indices
        if n < w:
            return [indices[r % n]] if n else []
        return indices[r * n // w:(r + 1) * n // w]


class _AllReduceSum(torch.autograd.Function):
    """Differentiable all-reduce: the sum's gradient w.r.t. each rank's input is the summed gradient."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        import torch.distributed as tdist

        out = tensor.clone(memory_format=torch.contiguous_format)
        tdist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        import torch.distributed as tdist

        grad = grad.clone(memory_format=torch.contiguous_format)
        tdist.all_reduce(grad)
        return grad


class _GlobalStatsBatchNorm:
    """Mixin over ``nn.BatchNormNd``: in training, statistics of the global batch across all ranks.

    One all-reduce of ``[Σx, Σx², count]`` per layer and call; it is differentiable (its backward is an
    all-reduce of the gradients), so with equal shards the averaged gradients equal the one-process gradient
    of the whole batch. Outside torchrun, in eval mode or under :meth:`Dist.local_bn` it is the plain layer.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        d = current()
        if not (self.training and d.global_bn):
            return super().forward(input)  # type: ignore[misc]
        self._check_input_dim(input)  # type: ignore[attr-defined]
        x = input if input.dtype == torch.float64 else input.float()
        dims = [0, *range(2, x.dim())]
        c = x.shape[1]
        count = x.new_full((1,), float(x.numel() // max(c, 1)))
        stats = _AllReduceSum.apply(torch.cat([x.sum(dims), (x * x).sum(dims), count]))
        total = stats[-1]
        mean = stats[:c] / total
        var = (stats[c:2 * c] / total - mean * mean).clamp_min(0)
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)  # type: ignore[attr-defined]
        if self.affine:  # type: ignore[attr-defined]
            y = y * self.weight.view(shape) + self.bias.view(shape)  # type: ignore[attr-defined]
        if self.track_running_stats and self.running_mean is not None:  # type: ignore[attr-defined]
            with torch.no_grad():
                self.num_batches_tracked.add_(1)  # type: ignore[attr-defined]
                mom = self.momentum  # type: ignore[attr-defined]
                if mom is None:
                    mom = 1.0 / self.num_batches_tracked.to(mean.dtype)  # type: ignore[attr-defined]
                unbiased = var.detach() * total / (total - 1).clamp_min(1)
                rm, rv = self.running_mean, self.running_var  # type: ignore[attr-defined]
                rm.mul_(1 - mom).add_((mom * mean.detach()).to(rm.dtype))
                rv.mul_(1 - mom).add_((mom * unbiased).to(rv.dtype))
        return y.to(input.dtype)


class GlobalBatchNorm1d(_GlobalStatsBatchNorm, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` with global-batch statistics under torchrun."""


class GlobalBatchNorm2d(_GlobalStatsBatchNorm, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with global-batch statistics under torchrun."""


class GlobalBatchNorm3d(_GlobalStatsBatchNorm, nn.BatchNorm3d):
    """``nn.BatchNorm3d`` with global-batch statistics under torchrun."""


_GLOBAL_BN = {nn.BatchNorm1d: GlobalBatchNorm1d, nn.BatchNorm2d: GlobalBatchNorm2d, nn.BatchNorm3d: GlobalBatchNorm3d}


def convert_batchnorm(module: nn.Module) -> int:
    """Make the plain ``nn.BatchNormNd`` layers of ``module`` use global-batch statistics; returns how many.

    The layers keep their identity, parameters, buffers and state-dict keys (only their class changes), so
    optimizers, checkpoints and ``functional_call`` are unaffected. Subclasses of BatchNorm are left alone.
    """
    n = 0
    for m in module.modules():
        cls = _GLOBAL_BN.get(type(m))
        if cls is not None:
            m.__class__ = cls
            n += 1
    return n


def fingerprint(value: Any) -> str:
    """A digest of tensors, dicts, lists and plain values (for :meth:`Dist.assert_same`)."""
    h = hashlib.sha256()

    def feed(v: Any) -> None:
        if isinstance(v, torch.Tensor):
            t = v.detach().cpu().contiguous().reshape(-1)
            h.update(str((t.dtype, tuple(t.shape))).encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(v, dict):
            for k in sorted(v, key=str):
                h.update(str(k).encode())
                feed(v[k])
        elif isinstance(v, (list, tuple)):
            h.update(f"[{len(v)}".encode())
            for x in v:
                feed(x)
        else:
            buf = io.BytesIO()
            pickle.dump(v, buf)
            h.update(buf.getvalue())

    feed(value)
    return h.hexdigest()


#: The single-process instance: what everything uses outside torchrun.
LOCAL = Dist()
_current: Dist = LOCAL


def env_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def init_from_env(device: str = "auto") -> Dist:
    """Join the torchrun process group once per process (idempotent); :data:`LOCAL` without torchrun.

    The backend is nccl when the run's device is CUDA, else gloo. On CUDA each process uses
    ``cuda:LOCAL_RANK``.
    """
    global _current
    if _current is not LOCAL:
        return _current
    world = env_world_size()
    if world <= 1:
        return LOCAL
    import torch.distributed as tdist

    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev_type = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                            (device if device != "auto" else "cpu")).type
    backend = "nccl" if dev_type == "cuda" else "gloo"
    cdev = torch.device("cpu")
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
        cdev = torch.device("cuda", local_rank)
    if not tdist.is_initialized():
        # torch._dynamo, imported lazily by the first torch.optim optimizer, keeps references to a process
        # group that exists when it is imported; destroy_process_group then leaves the group and its gloo
        # threads alive until interpreter exit, where their teardown races with finalization (SIGABRT,
        # "terminate called without an active exception"). Imported first, it holds none (see shutdown()).
        importlib.import_module("torch._dynamo")
        tdist.init_process_group(backend=backend)
    _current = Dist(rank, world, local_rank, backend, cdev)
    return _current


def current() -> Dist:
    """The process's :class:`Dist` (``LOCAL`` until :func:`init_from_env` joined a group)."""
    return _current


def of(obj: Any) -> Dist:
    """``obj.dist`` for a run (or anything carrying one), else :data:`LOCAL` (the contract kit's fakes)."""
    d = getattr(obj, "dist", None)
    return d if isinstance(d, Dist) else LOCAL


def shutdown(clean: bool = True) -> None:
    """Leave the process group at the end of the CLI command, on every way out, so a finished torchrun child
    exits 0 deterministically.

    ``clean`` (the command finished): a barrier first, so no rank closes its connections while another is
    still in a collective; after an error the peers may be gone, so the group is destroyed without one.
    ``destroy_process_group`` then frees the group and stops its threads (gloo's ``gloo_tcp_loop`` and
    ``pt_gloo_runloop``) here, not during interpreter finalization.
    """
    global _current
    if _current is LOCAL:
        return
    import torch.distributed as tdist

    _current = LOCAL
    if not tdist.is_initialized():
        return
    if clean:
        with contextlib.suppress(Exception):  # a peer already gone: still destroy our side
            tdist.barrier()
    tdist.destroy_process_group()


def lingering_threads() -> list[str]:
    """Names of the process's gloo threads still alive (Linux ``/proc``; empty elsewhere or when none are).

    They are C++ threads, invisible to :mod:`threading`; after :func:`shutdown` there should be none.
    """
    task = "/proc/self/task"
    if env_world_size() <= 1 or not os.path.isdir(task):
        return []
    names = []
    for tid in os.listdir(task):
        with contextlib.suppress(OSError):
            with open(f"{task}/{tid}/comm") as fh:
                name = fh.read().strip()
            if "gloo" in name:
                names.append(name)
    return sorted(names)


__all__ = ["LOCAL", "Dist", "DistributedError", "GlobalBatchNorm1d", "GlobalBatchNorm2d", "GlobalBatchNorm3d",
           "convert_batchnorm", "current", "fingerprint", "init_from_env", "lingering_threads", "of",
           "shutdown"]
