"""The run pipeline: seed → data → (shrink) → supernet → optimizer epochs → selector → genotype.

Every epoch (and every ``search.checkpoint_every`` steps) the whole state — supernet, optimizer,
selector, data positions, RNG states and log lengths — goes into ``checkpoint.pt`` atomically, so
``--resume RUN_DIR`` continues exactly where a killed run stopped.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import random
import shutil
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasfw import __version__
from nasfw import distributed as dist_mod
from nasfw.budget import Budget, refuse
from nasfw.checkpoint import (
    NonFiniteStateError,
    load_checkpoint,
    mismatch_reason,
    position,
    previous_path,
    rng_state,
    save_atomic,
    set_rng_state,
)
from nasfw.components import Context, Optimizer, SearchSpace, Selector, ShrunkSpace
from nasfw.config import COMPONENT_KEYS, RunConfig, dump_config
from nasfw.data import Batch, BatchStream, SearchData
from nasfw.distributed import LOCAL, Dist
from nasfw.errors import CheckpointError, ConfigError, DataError, DivergenceError, NasfwError
from nasfw.genotype import Genotype
from nasfw.outputs import write_text_atomic
from nasfw.registry import Registry, get_registry
from nasfw.runlock import RunLock
from nasfw.runlog import JsonLines, Progress, TensorBoard, duration
from nasfw.supernet import Supernet


def resolve_device(name: str, dist: Dist = LOCAL) -> torch.device:
    """The run's device; under torchrun ``auto`` and ``cuda`` mean this process's ``cuda:LOCAL_RANK``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
    if dev.type == "cuda" and dev.index is None and dist.world_size > 1 and torch.cuda.is_available():
        dev = torch.device("cuda", dist.local_rank)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' requested but CUDA is not available here; use --device cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device '{name}' requested but MPS is not available here; use --device cpu")
    return dev


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


#: top-level checkpoint entries whose tensors must be finite for the state to count as "good"
FINITE_STATE = ("supernet", "optimizer")


def check_writable(out_dir: Path, min_free_mb: int = 50, fix: str = "choose another with --out") -> None:
    """Fail before the search, not after hours, when outputs cannot be written. ``fix`` ends the message
    (a resumed run cannot move: it says to make the directory writable instead of naming --out)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".nasfw-write-test"
        probe.write_bytes(b"x" * 1024)
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write to output directory {out_dir}: {exc.strerror or exc}; {fix}") from None
    free = shutil.disk_usage(out_dir).free / 2**20
    if free < min_free_mb:
        raise ConfigError(f"output directory {out_dir} has only {free:.0f} MB free (need {min_free_mb} MB); "
                          f"free space or {fix}")


RESUME_FIX = "make it writable (a resumed run stays in its directory)"


def on_main(dist: Dist, fn: Any) -> Any:
    """``fn()`` on rank 0 only; a :class:`NasfwError` there is raised on every rank (the others would otherwise
    wait forever at the next collective). Returns ``fn()``'s result on rank 0, None elsewhere."""
    result, failed = None, None
    if dist.is_main:
        try:
            result = fn()
        except NasfwError as exc:
            if not dist.enabled:
                raise
            failed = exc
    message = dist.broadcast_object(None if failed is None else str(failed))
    if failed is not None:
        raise failed
    if message is not None:
        raise NasfwError(message)
    return result


def lock_directory(out_dir: Path, dist: Dist = LOCAL, what: str = "run", hint: str = "",
                   before: Any = None) -> RunLock | None:
    """Rank 0 runs ``before()`` (e.g. :func:`check_writable`) and takes ``out_dir``'s lock (see
    :mod:`nasfw.runlock`); a refusal is the same one-line error on all ranks."""
    def take() -> RunLock:
        if before is not None:
            before()
        try:
            return RunLock(out_dir, what).acquire(hint)
        except OSError as exc:  # the lock file cannot be created
            raise ConfigError(f"cannot create the lock file in {out_dir}: {exc.strerror or exc}") from None

    return on_main(dist, take)


def to_device(batch: Batch, device: torch.device, channels_last: bool = False) -> Batch:
    x, y = batch
    x = x.to(device, non_blocking=True)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(device, non_blocking=True)


def own_batches(dataset: Any, batch_size: int, dist: Dist, limit: int | None = None) -> Any:
    """The samples of the in-order batches ``i ≡ rank (mod world)`` (``i < limit``), as one subset.

    Chunking the subset by ``batch_size`` gives back exactly those batches (only the last global batch can
    be short, and it is last here too), so each rank loads only what it evaluates.
    """
    n = len(dataset)
    batches = -(-n // batch_size)
    if limit is not None:
        batches = min(batches, limit)
    idx = [j for i in range(dist.rank, batches, dist.world_size)
           for j in range(i * batch_size, min((i + 1) * batch_size, n))]
    return torch.utils.data.Subset(dataset, idx)


@dataclass
class Run:
    """The state of one run; components receive it to reach data, logs and checkpoints."""

    config: RunConfig
    registry: Registry
    out_dir: Path
    device: torch.device
    ctx: Context
    progress: Progress
    space: SearchSpace | None = None
    supernet: Supernet | None = None
    optimizer: Optimizer | None = None
    selector: Selector | None = None
    data: SearchData | None = None
    shrunk: ShrunkSpace | None = None
    phase: str = "search"
    epoch: int = 0
    global_step: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    extra_summary: dict[str, Any] = field(default_factory=dict)
    last_checkpoint: str | None = None
    #: running sums of this epoch's step metrics (checkpointed so a resumed epoch averages the same)
    epoch_sums: dict[str, Any] = field(default_factory=dict)
    epoch_count: int = 0
    #: the processes of a torchrun run (``LOCAL`` alone); only ``dist.is_main`` writes files
    dist: Dist = LOCAL
    #: the run directory's lock (rank 0), held until :meth:`close`
    lock: RunLock | None = None
    #: where the last finite checkpoint stands (for the divergence message)
    last_checkpoint_at: str = ""
    #: α when the search started (CPU copies), for the activity block's |Δα|
    alpha_start: dict[str, torch.Tensor] = field(default_factory=dict)
    #: what each phase will do (``plan`` of the optimizer, selector and shrinker), shown before the work
    plan: dict[str, Any] = field(default_factory=dict)
    #: weight steps per search epoch (known once the data is loaded, before any component is set up)
    steps_per_epoch: int = 0
    #: whether :func:`prepare` created the run directory (a run refused before any work removes it again)
    fresh_dir: bool = False

    def __post_init__(self) -> None:
        main = self.dist.is_main
        self.metrics_log = JsonLines(self.out_dir / "metrics.jsonl", enabled=main)
        self.alphas_log = JsonLines(self.out_dir / "alphas.jsonl", enabled=main)
        self.tb = TensorBoard(self.out_dir, self.config.log.tensorboard and main)

    def close(self) -> None:
        """Stop the TensorBoard writer's thread and release the directory lock (every exit path)."""
        self.tb.close()
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    # -- helpers for components -------------------------------------------------------------
    @property
    def budget(self) -> Budget:
        """The search's epochs × weight steps per epoch (what fractional schedule lengths are of)."""
        steps = self.steps_per_epoch or getattr(self.optimizer, "steps_per_epoch", 0)
        return Budget(self.config.search.epochs, steps)

    def note_activity(self, section: str, **figures: Any) -> None:
        """Record what a phase did (``summary.json`` → ``activity`` → ``section``); checkpointed with the run."""
        block = self.extra_summary.setdefault("activity", {}).setdefault(section, {})
        block.update(json.loads(json.dumps(figures, default=_plain)))

    def log(self, record: dict[str, Any]) -> None:
        """Append one record to ``metrics.jsonl`` (and TensorBoard scalars)."""
        record = {"phase": self.phase, "epoch": self.epoch, "step": self.global_step, **record}
        self.metrics_log.write(record)
        self.tb.scalars(record.get("phase", "run"), {k: v for k, v in record.items() if k not in ("epoch", "step")},
                        self.global_step)

    def autocast(self) -> contextlib.AbstractContextManager:
        perf = self.config.performance
        if perf.bf16 and self.device.type in ("cuda", "cpu"):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def to_device(self, batch: Batch) -> Batch:
        return to_device(batch, self.device, self.config.performance.channels_last)

    def eval_batches(self, split: str = "val", limit: int | None = None) -> Iterator[Batch]:
        """Deterministic pass over a split (in order), on the run's device.

        Under several processes each rank gets whole batches ``i ≡ rank (mod world)``, so batch-statistics
        BN sees the same batches as one process would; :meth:`evaluate` sums over ranks.
        """
        assert self.data is not None
        ds = {"train": self.data.splits.train, "val": self.data.splits.val, "test": self.data.splits.test}[split]
        if ds is None:
            return
        bs = self.data.val.batch_size
        if self.dist.enabled:
            ds = own_batches(ds, bs, self.dist, limit)
            limit = None
        stream = BatchStream(ds, bs, seed=0, shuffle=False)
        for i, batch in enumerate(stream.epoch_batches()):
            if limit is not None and i >= limit:
                break
            yield self.to_device(batch)

    @torch.no_grad()
    def evaluate(self, batches: Iterable[Batch], train_mode: bool = False,
                 model: torch.nn.Module | None = None, keep_bn_stats: bool = False) -> dict[str, float]:
        """Accuracy and loss of the supernet (with its current mixing weights) over batches.

        ``train_mode`` normalises with each batch's own BN statistics; ``keep_bn_stats`` then leaves the
        running statistics untouched (an evaluation that does not change the supernet's state)."""
        model = model if model is not None else self.supernet
        assert model is not None
        was = model.training
        model.train(train_mode)
        correct = torch.zeros((), device=self.device)
        loss = torch.zeros((), device=self.device)
        n = 0
        frozen = frozen_bn_stats(model) if train_mode and keep_bn_stats else contextlib.nullcontext()
        with self.autocast(), self.dist.local_bn(), frozen:  # whole batches per rank: local statistics are the batch's
            for x, y in batches:
                logits = model(x)
                loss += torch.nn.functional.cross_entropy(logits.float(), y, reduction="sum")
                correct += (logits.argmax(1) == y).sum()
                n += y.numel()
        model.train(was)
        if self.dist.enabled:  # every rank evaluated its own batches: sum, so all ranks agree
            tot = self.dist.sum_(torch.stack([correct.double(), loss.double(),
                                              torch.tensor(float(n), dtype=torch.float64, device=self.device)]))
            correct, loss, n = tot[0], tot[1], int(tot[2])
        if n == 0:
            return {"acc": float("nan"), "loss": float("nan"), "n": 0}
        return {"acc": float(correct) / n, "loss": float(loss) / n, "n": n}

    def checkpoint(self, phase_done: bool = False) -> None:
        """Write the full state atomically (components call this at their safe points).

        Every rank calls it (BN statistics are averaged first, so the state does not depend on the world
        size); rank 0 writes.
        """
        assert self.supernet is not None and self.optimizer is not None and self.data is not None
        self.dist.sync_buffers_(self.supernet)
        path = self.out_dir / "checkpoint.pt"
        if not self.dist.is_main:
            self.last_checkpoint = str(path)
            return
        state = {
            "phase": self.phase,
            "epoch": self.epoch,
            "global_step": self.global_step,
            "supernet": self.supernet.state_dict(),
            "override": self.supernet.override_state(),
            "optimizer": self.optimizer.state_dict(),
            "selector": self.selector.state_dict() if self.selector is not None else {},
            "data": self.data.state_dict(),
            "rng": rng_state(),
            "logs": {"metrics": self.metrics_log.position(), "alphas": self.alphas_log.position()},
            "timings": dict(self.timings),
            "extra_summary": json.loads(json.dumps(self.extra_summary, default=str)),
            "epoch_sums": {k: float(v) for k, v in self.epoch_sums.items()},
            "epoch_count": self.epoch_count,
            "config": comparable_config(self.config),
            "alpha_start": {k: v.clone() for k, v in self.alpha_start.items()},
        }
        try:
            save_atomic(state, path, finite=FINITE_STATE,
                        fix=f"continue from the last complete checkpoint with 'nasfw run --resume {self.out_dir}'")
        except NonFiniteStateError as exc:
            shown = ", ".join(exc.bad[:3]) + (f" and {len(exc.bad) - 3} more" if len(exc.bad) > 3 else "")
            raise DivergenceError(self._diverged(f"epoch {self.epoch + 1}, step {self.global_step}",
                                                 f"{len(exc.bad)} tensors of the state to checkpoint: {shown}")
                                  ) from None
        self.last_checkpoint = str(path)
        self.last_checkpoint_at = position(state)

    def _diverged(self, where: str, what: str) -> str:
        """The divergence message: where, what, and a checkpoint that really holds finite state (or none)."""
        if self.last_checkpoint is None:
            last = ("no checkpoint was written yet. Start a new run with lower learning rates "
                    "(e.g. --set optimizer.w_lr=...)")
        else:
            last = (f"the last good (finite) checkpoint is {self.last_checkpoint}{self.last_checkpoint_at}. "
                    f"Start a new run with lower learning rates, or lower them in {self.out_dir / 'config.yaml'} "
                    f"and continue with 'nasfw run --resume {self.out_dir} --force'")
        return f"search diverged at {where} (non-finite {what}); {last}"

    def check_finite(self, metrics: dict[str, Any], where: str) -> None:
        bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
        if self.supernet is not None:
            bad += [f"alpha[{k}]" for k, a in self.supernet.arch_parameters().items() if not torch.isfinite(a).all()]
        if bad:
            raise DivergenceError(self._diverged(where, ", ".join(bad)))


@contextlib.contextmanager
def frozen_bn_stats(model: torch.nn.Module) -> Iterator[None]:
    """Train-mode BatchNorm that normalises with batch statistics without updating the running ones."""
    saved = []
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            saved.append((m, m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None
                          else None))
            m.momentum = 0.0  # running = (1 - 0)·running + 0·batch
    try:
        yield
    finally:
        for m, momentum, tracked in saved:
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


@contextlib.contextmanager
def batch_statistics_only(net: torch.nn.Module) -> Iterator[None]:
    """Train-mode BatchNorm without running statistics: every BN normalises with its batch's statistics and
    no buffer is written, so a forward can be ``vmap``-ed (ZARTS' batched oracle, DARTS-PT's batched
    variants) and the supernet's running statistics are not touched."""
    saved = []
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            saved.append(m)
            m.track_running_stats = False
    try:
        yield
    finally:
        for m in saved:
            m.track_running_stats = True


def _plain(value: Any) -> Any:
    """JSON form of tensors and numbers in activity figures."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _make_data(run: Run, dataset: Any) -> SearchData:
    cfg = run.config
    splits = dataset.splits(cfg.seed)
    s = cfg.search
    kw = dict(num_workers=s.num_workers, pin_memory=run.device.type == "cuda",
              dist=run.dist if run.dist.world_size > 1 else None)
    train = BatchStream(splits.train, s.batch_size, seed=cfg.seed * 2 + 1, **kw)
    val = BatchStream(splits.val, s.val_batch_size or s.batch_size, seed=cfg.seed * 2 + 2, **kw)
    test = BatchStream(splits.test, s.val_batch_size or s.batch_size, seed=0, shuffle=False) if splits.test else None
    if run.dist.world_size > 1 and s.batch_size < run.dist.world_size:
        raise ConfigError(f"search.batch_size {s.batch_size} is the global batch, split across "
                          f"{run.dist.world_size} processes; use at least {run.dist.world_size}")

    def factory(name: str, split: str, batch_size: int) -> BatchStream:
        ds = {"train": splits.train, "val": splits.val}.get(split)
        if ds is None:
            raise ConfigError(f"unknown data split '{split}' (use train or val)")
        sub = sum(ord(c) for c in name)
        return BatchStream(ds, batch_size, seed=cfg.seed * 7919 + sub, **kw)

    return SearchData(splits, train, val, test, stream_factory=factory)


def default_out_dir(config: RunConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{config.space.name}-{config.optimizer.name}-{config.selector.name}"


def _weighting_ref(config: RunConfig, optimizer: Optimizer, selector: Selector) -> Any:
    """The run's weighting, else the optimizer's; the selector's only for a training-free optimizer (a
    supernet trained with one weighting must be scored with it); else softmax."""
    if config.edge_weighting is not None:
        return config.edge_weighting
    chosen = optimizer.edge_weighting()
    if chosen is None and not optimizer.trains:
        chosen = selector.edge_weighting()
    return chosen or "softmax"


def validate_config(config: RunConfig, registry: Registry) -> RunConfig:
    """Every component's params against its own Config (filled with defaults), and the final-training settings."""
    from nasfw.trainer import check_evaluation

    for key, kind in COMPONENT_KEYS.items():
        ref = getattr(config, key)
        if ref is not None:
            ref.params = registry.validate(kind, ref).model_dump(mode="json")
    check_evaluation(config, registry)
    return config


def prepare(config: RunConfig, registry: Registry | None = None, out_dir: Path | None = None,
            quiet: bool = False, lock: RunLock | None = None, locked: bool = False) -> Run:
    """Validate every component, create and lock the output directory and build the run (no training yet).

    ``lock``/``locked``: the caller already took the directory's lock (a resume takes it before reading). Only
    rank 0 holds a lock object, so ``locked`` tells the other ranks not to take it again: a second
    :func:`lock_directory` on them alone would be a collective rank 0 never joins.
    """
    registry = registry or get_registry()
    validate_config(config, registry)  # before touching the disk or the data
    dist = dist_mod.init_from_env(config.device)
    device = resolve_device(config.device, dist)
    out = Path(dist.broadcast_object(str(out_dir or config.out or default_out_dir(config))))
    config.out = str(out)
    fresh = dist.is_main and not out.exists()  # before the lock file makes it exist
    if lock is None and not locked:
        lock = lock_directory(out, dist, hint=" (or choose another --out)", before=lambda: check_writable(out))
    try:
        if dist.is_main:  # atomic: other ranks of a resumed run may be reading it
            write_text_atomic(out / "config.yaml", dump_config(config))
    except NasfwError:
        if lock is not None:
            lock.release()
        raise
    ctx = Context(registry=registry, device=device, seed=config.seed, out_dir=out)
    progress = Progress(config.log.progress, quiet=quiet or not dist.is_main)
    return Run(config=config, registry=registry, out_dir=out, device=device, ctx=ctx, progress=progress, dist=dist,
               lock=lock, fresh_dir=fresh)


def build(run: Run, resume_state: dict[str, Any] | None = None) -> None:
    """Seed, load data, plan every phase (refusing a method that could not act), shrink, build the supernet
    and set up the optimizer and selector."""
    cfg, reg = run.config, run.registry
    seed_everything(cfg.seed, cfg.deterministic)
    if run.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = cfg.performance.tf32
        torch.backends.cudnn.allow_tf32 = cfg.performance.tf32
    dataset = reg.create("dataset", cfg.dataset, run.ctx)
    t0 = time.time()
    run.data = _make_data(run, dataset)
    run.timings["data_seconds"] = time.time() - t0
    space: SearchSpace = reg.create("search_space", cfg.space, run.ctx)
    run.optimizer = reg.create("optimizer", cfg.optimizer, run.ctx)
    run.selector = reg.create("selector", cfg.selector, run.ctx)
    if run.dist.enabled and run.optimizer.trains and cfg.search.epochs > 0 and not run.optimizer.distributed:
        raise ConfigError(f"optimizer '{run.optimizer.name}' does not support multi-process runs (it does not "
                          f"average its gradients through run.dist); run it in one process")
    steps = len(run.data.train)
    if cfg.search.steps_per_epoch is not None:
        steps = min(steps, cfg.search.steps_per_epoch)
    run.steps_per_epoch = steps
    run.space = space
    run.optimizer.run = run  # type: ignore[attr-defined]
    shrinker = reg.create("shrinker", cfg.shrinker, run.ctx) if cfg.shrinker is not None else None
    _plan(run, space, shrinker, resume_state)  # every refusal happens here, before any search or shrink work
    if shrinker is not None:
        space = _shrink(run, space, resume_state, shrinker)
    run.space = space
    weighting = reg.create("edge_weighting", _weighting_ref(cfg, run.optimizer, run.selector), run.ctx)
    supernet = space.build_supernet(run.data.shape, weighting)
    for name, table in space.op_table().items():
        supernet.set_mask(name, supernet.mask(name).cpu() & table)
    supernet.to(run.device)
    if cfg.performance.channels_last:
        supernet.to(memory_format=torch.channels_last)
    if run.dist.enabled and cfg.distributed.sync_bn:  # before compiling, so compiled units see the final layers
        dist_mod.convert_batchnorm(supernet)
    if cfg.performance.compile:  # per unit (cells): a whole DARTS supernet's forward takes too long to compile
        for unit in supernet.compile_units():
            unit.compile()
    run.dist.broadcast_module_(supernet)
    run.supernet = supernet
    run.optimizer.setup(supernet, run.data, cfg.search.epochs, steps)


def searches(run: Run) -> bool:
    """Whether this run trains a supernet (an optimizer that trains, for at least one epoch)."""
    assert run.optimizer is not None
    return run.optimizer.trains and run.config.search.epochs > 0


def meaningless(optimizer: Optimizer, selector: Selector, epochs: int, registry: Registry) -> str | None:
    """Why this optimizer/selector pair cannot act in a run of ``epochs`` search epochs (None when it can), as
    the components declare it (``Optimizer.trains``, ``Selector.needs_search``)."""
    if optimizer.trains and epochs == 0:
        return refuse("search.epochs", f"optimizer '{optimizer.name}' trains the supernet but the search has 0 "
                                       f"epochs, so it would do nothing",
                      "give --epochs 1 or more, or use --optimizer none with a training-free selector").args[0]
    if selector.needs_search and not optimizer.trains:
        free = [n for n in registry.names("selector")
                if not getattr(registry.resolve("selector", n)[1], "needs_search", True)]
        fix = "use a training optimizer (e.g. --optimizer darts)" + (
            f" or a training-free selector ({', '.join(free)})" if free else "")
        return refuse("selector", f"'{selector.name}' reads what a search learned, but optimizer "
                                  f"'{optimizer.name}' does not search", fix).args[0]
    return None


def _plan(run: Run, space: SearchSpace, shrinker: Any, resume_state: dict[str, Any] | None) -> None:
    """Every phase's plan, before any work: a component that cannot act raises a one-line ConfigError here."""
    cfg = run.config
    assert run.optimizer is not None and run.selector is not None
    why = meaningless(run.optimizer, run.selector, cfg.search.epochs, run.registry)
    if why is not None:
        raise ConfigError(why)
    budget = run.budget if searches(run) else Budget(0, run.steps_per_epoch)
    if searches(run):
        run.plan["search"] = {"epochs": budget.epochs, "steps_per_epoch": budget.steps_per_epoch,
                              "weight_steps": budget.steps}
    if shrinker is not None and not (resume_state is not None and (run.out_dir / "shrunk_space.json").exists()):
        run.plan["shrinker"] = shrinker.plan(space)
    if searches(run):
        run.plan["optimizer"] = run.optimizer.plan(budget)
    run.plan["selector"] = run.selector.plan(space, budget)
    for text in plan_lines(run):
        run.progress.line(text)


def _shrink(run: Run, space: SearchSpace, resume_state: dict[str, Any] | None, shrinker: Any = None) -> SearchSpace:
    """Shrink, then search only the members: a sampling optimizer draws members, a differentiable one trains
    the union of their ops and selection returns the best-scoring member (``SearchSpace.restrict_to``)."""
    cfg = run.config
    shrinker = shrinker if shrinker is not None else run.registry.create("shrinker", cfg.shrinker, run.ctx)
    path = run.out_dir / "shrunk_space.json"
    t0 = time.time()
    if resume_state is not None and path.exists():
        data = json.loads(path.read_text())
        shrunk = ShrunkSpace([Genotype.from_dict(g) for g in data["members"]], data.get("info", {}))
        report = data.get("report")
    else:
        run.progress.line(f"shrinking space '{space.name}' with '{shrinker.name}'")
        shrunk, report = None, None
        if run.dist.is_main:  # shrinkers are not distributed-aware: rank 0 shrinks alone, the others wait
            with run.dist.solo():
                shrunk = shrinker.shrink(space, run)
            if not shrunk.members:
                raise NasfwError(f"shrinker '{shrinker.name}' returned an empty space; loosen its options")
            report = _shrink_report(run, space, shrunk)
            path.write_text(json.dumps({"members": [g.model_dump(mode="json") for g in shrunk.members],
                                        "info": shrunk.info, "report": report}, default=str))
        shrunk, report = run.dist.broadcast_object((shrunk, report))
    run.timings["shrink_seconds"] = time.time() - t0
    run.shrunk = shrunk
    sub = space.restrict_to(shrunk.members)
    if report:
        run.note_activity("shrinker", **report)
    try:  # the product space a differentiable optimizer's supernet spans (the members' ops per edge)
        product = space.restrict(sub.allowed or {}).size()
    except (NotImplementedError, NasfwError):
        product = None
    if run.optimizer is not None and run.optimizer.samples_architectures:
        how = f"optimizer '{run.optimizer.name}' samples only the {len(shrunk.members)} members"
    else:
        how = (f"optimizer '{run.optimizer.name if run.optimizer else '?'}' trains the union of the "
               f"{len(shrunk.members)} members' ops per edge; selection returns the best-scoring member")
    run.note_activity("shrinker", search=how, **({"union_size": product} if product else {}))
    run.progress.line(f"shrunk to {len(shrunk.members)} members: {how}")
    return sub


def _shrink_report(run: Run, space: SearchSpace, shrunk: ShrunkSpace) -> dict[str, Any]:
    """The shrunk space's report, scored by the run's benchmark (if any) after the shrinker is done."""
    from nasfw.shrinkage import find_benchmark, shrink_report

    name = find_benchmark(run.registry, space, run.config.benchmark.name if run.config.benchmark else None)
    bench = None
    if name is not None:
        ref = run.config.benchmark if run.config.benchmark is not None else name
        try:
            bench = run.registry.create("benchmark", ref, run.ctx)
            return shrink_report(space, shrunk, bench, name)
        except NasfwError as exc:  # a missing table must not stop the search
            return {**shrink_report(space, shrunk), "benchmark_error": str(exc)}
    return shrink_report(space, shrunk)


def _restore(run: Run, state: dict[str, Any]) -> None:
    assert run.supernet is not None and run.optimizer is not None and run.data is not None
    try:
        run.supernet.load_state_dict(state["supernet"])
        run.supernet.set_override({k: v.to(run.device) for k, v in state.get("override", {}).items()})
        run.optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
        # e.g. a checkpoint copied from a run of another space or size: torch's message lists every tensor
        first = mismatch_reason(exc)
        raise CheckpointError(f"{run.out_dir / 'checkpoint.pt'} does not fit this run (it was written by a run "
                              f"with another configuration: {first}); resume a run only from its own "
                              f"checkpoint") from None
    if run.selector is not None:
        run.selector.load_state_dict(state.get("selector", {}))
    run.data.load_state_dict(state["data"])
    run.phase, run.epoch, run.global_step = state["phase"], state["epoch"], state["global_step"]
    run.timings.update(state.get("timings", {}))
    run.extra_summary.update(state.get("extra_summary", {}))
    run.epoch_sums = dict(state.get("epoch_sums", {}))
    run.epoch_count = state.get("epoch_count", 0)
    run.alpha_start = dict(state.get("alpha_start", {}))
    run.metrics_log.truncate(state["logs"]["metrics"])
    run.alphas_log.truncate(state["logs"]["alphas"])
    set_rng_state(state["rng"])
    run.last_checkpoint = str(run.out_dir / "checkpoint.pt")
    run.last_checkpoint_at = position(state)


def _search(run: Run) -> None:
    cfg = run.config
    assert run.optimizer is not None and run.data is not None and run.supernet is not None
    opt, data = run.optimizer, run.data
    if not opt.trains or cfg.search.epochs == 0:
        return
    steps_per_epoch = opt.steps_per_epoch
    t_start = time.time() - run.timings.get("search_seconds", 0.0)
    every = cfg.search.checkpoint_every
    run.progress.line("search-time validation uses " + (
        "BN batch statistics (search.val_bn=batch; DARTS' eval-mode running statistics: search.val_bn=running)"
        if cfg.search.val_bn == "batch" else "eval-mode BN running statistics (search.val_bn=running, as DARTS)"))
    total = cfg.search.epochs * steps_per_epoch
    eta = _Eta(run, total)
    with run.progress.phase("search", total=total):
        for _ in range(run.global_step):
            run.progress.advance()
        while run.epoch < cfg.search.epochs:
            epoch = run.epoch
            opt.epoch_start(epoch)
            run.progress.describe(f"search epoch {epoch + 1}/{cfg.search.epochs}")
            sums = run.epoch_sums
            pending: list[tuple[int, torch.Tensor]] = []
            while data.train.offset < steps_per_epoch and data.train.epoch == epoch:
                batch = data.train.next()
                val_batch = data.val.next()
                run.supernet.train()
                with run.autocast():  # bf16 when performance.bf16 is set; a no-op otherwise
                    metrics = opt.step(run.to_device(batch), run.to_device(val_batch))
                run.global_step += 1
                run.epoch_count += 1
                eta.step()
                if "loss" in metrics:  # flag non-finite losses on device; read at the next check (no sync now)
                    pending.append((run.global_step, torch.isfinite(torch.as_tensor(metrics["loss"])).all()))
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + (v.detach() if isinstance(v, torch.Tensor) else v)
                if run.global_step % 10 == 0 or data.train.offset >= steps_per_epoch:
                    step_metrics = {k: float(v) for k, v in metrics.items()}
                    first_bad = _first_non_finite(pending)
                    pending.clear()
                    run.check_finite(step_metrics if first_bad is None else {"loss": math.nan},
                                     f"epoch {epoch + 1}, step {first_bad or run.global_step}")
                    run.log({"kind": "step", **step_metrics})
                    run.progress.advance(" ".join(f"{k}={v:.4g}" for k, v in step_metrics.items()
                                                  if k in ("loss", "acc")))
                else:
                    run.progress.advance()
                if every and run.global_step % every == 0 and data.train.offset < steps_per_epoch:
                    run.timings["search_seconds"] = time.time() - t_start
                    run.checkpoint()
            # finish the data epoch so the next starts fresh (steps_per_epoch may cap it)
            if data.train.epoch == epoch:
                data.train.epoch, data.train.offset, data.train._it = epoch + 1, 0, None
            extra = opt.epoch_end(epoch)
            run.dist.sync_buffers_(run.supernet)  # eval-mode BN below uses the running statistics
            run.dist.assert_same(run.supernet.state_dict(), f"the supernet (weights, α, BN) after epoch {epoch + 1}")
            ep = {f"train_{k}": float(v) / max(run.epoch_count, 1) for k, v in sums.items()}
            run.epoch_sums, run.epoch_count = {}, 0
            ep.update({k: float(v) for k, v in (extra or {}).items()})
            val = run.evaluate(run.eval_batches("val", cfg.search.eval_batches),
                               train_mode=cfg.search.val_bn == "batch", keep_bn_stats=True)
            ep.update({"val_acc": val["acc"], "val_loss": val["loss"]})
            run.check_finite(ep, f"the end of epoch {epoch + 1}")
            run.epoch = epoch + 1
            run.timings["search_seconds"] = time.time() - t_start
            eta.epoch_end()
            run.log({"kind": "epoch", "epoch": epoch + 1, **ep, "seconds": run.timings["search_seconds"]})
            weights = run.supernet.mixing_weights()
            run.alphas_log.write({"epoch": epoch + 1,
                                  "alphas": {k: v for k, v in run.supernet.arch_parameters().items()},
                                  "weights": weights})
            run.tb.weights(weights, epoch + 1)
            run.extra_summary["final"] = ep
            run.progress.line(f"epoch {epoch + 1}/{cfg.search.epochs}: " + " ".join(
                f"{k}={v:.4f}" for k, v in ep.items() if k in ("train_loss", "train_acc", "val_loss", "val_acc")))
            if run.dist.is_main:
                run.registry.epoch_end(run, epoch + 1, ep)
            run.checkpoint()


class _Eta:
    """After the first measured steps, one line: the search's remaining time and, when the selector plans
    weight steps of its own (``tuning_steps``), their estimate at the same rate."""

    MEASURE = 3

    def __init__(self, run: Run, total: int):
        self.run, self.total = run, total
        self.start, self.done, self.said = time.time(), 0, False

    def step(self) -> None:
        self.done += 1
        if self.said or self.done < min(self.MEASURE, self.total - (self.run.global_step - self.done)):
            return
        self.said = True
        self._say("measured")

    def epoch_end(self) -> None:
        """Again at each epoch's end but the last, over every step so far: the rate now includes the
        α updates (a zero-order update costs many weight steps and the first comes after the warm-up)."""
        if self.said and self.run.global_step < self.total:
            self._say(f"over {self.done} steps, α updates included")

    def _say(self, how: str) -> None:
        rate = (time.time() - self.start) / max(self.done, 1)
        left = max(self.total - self.run.global_step, 0) * rate
        text = f"ETA: {rate:.2f} s/step {how}; search {duration(left)} left"
        tuning = (self.run.plan.get("selector") or {}).get("tuning_steps")
        if isinstance(tuning, (int, float)) and tuning > 0:
            text += f", selection's {int(tuning)} tuning steps ~{duration(tuning * rate)} more"
        self.run.progress.line(text)


def _first_non_finite(pending: list[tuple[int, torch.Tensor]]) -> int | None:
    """The first step whose loss was not finite, with one host sync for all pending steps."""
    if not pending:
        return None
    ok = torch.stack([flag for _, flag in pending]).cpu()
    if bool(ok.all()):
        return None
    return pending[int((~ok).nonzero()[0])][0]


def _benchmark(run: Run, genotype: Genotype) -> dict[str, Any] | None:
    cfg = run.config
    assert run.space is not None
    if cfg.benchmark is not None:
        bench = run.registry.create("benchmark", cfg.benchmark, run.ctx)
        return {"name": cfg.benchmark.name, **bench.query(genotype)}
    for name in run.registry.names("benchmark"):
        cls = run.registry.get("benchmark", name)
        if run.space.name in getattr(cls, "spaces", ()) or genotype.space in getattr(cls, "spaces", ()):
            try:
                bench = run.registry.create("benchmark", name, run.ctx)
                return {"name": name, **bench.query(genotype)}
            except NasfwError:
                continue
    return None


def execute(run: Run, resume_state: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the whole pipeline; returns the summary (also written to ``summary.json``).

    On every way out (finished, error, Ctrl-C) the TensorBoard writer is closed and the lock released.
    """
    try:
        return _execute(run, resume_state)
    finally:
        run.close()


def _execute(run: Run, resume_state: dict[str, Any] | None) -> dict[str, Any]:
    try:
        build(run, resume_state)
    except NasfwError:
        _discard_refused(run)
        raise
    assert run.supernet is not None and run.space is not None and run.selector is not None
    if resume_state is not None:
        _restore(run, resume_state)
        run.progress.line(f"resumed {run.out_dir} at phase '{run.phase}', epoch {run.epoch}, step {run.global_step}")
    else:
        run.alpha_start = {k: v.detach().cpu().clone() for k, v in run.supernet.arch_parameters().items()}
    main = run.dist.is_main
    if main:
        run.registry.run_started(run)
    if run.phase == "search":
        _search(run)
        run.phase = "select"
        run.checkpoint()
    t0 = time.time() - run.timings.get("selection_seconds", 0.0)
    run.progress.line(f"selecting with '{run.selector.name}'")
    genotype = _select(run)
    run.timings["selection_seconds"] = time.time() - t0
    if main:
        write_text_atomic(run.out_dir / "genotype.json", genotype.to_json() + "\n", _resume_fix(run))
    summary = _summary(run, genotype)
    if run.config.evaluation.train:
        from nasfw.trainer import train_genotype

        summary["evaluation"] = train_genotype(run, genotype)
    if main:
        write_text_atomic(run.out_dir / "summary.json", json.dumps(summary, indent=2, default=str) + "\n",
                          _resume_fix(run))
    run.phase = "done"
    run.tb.close()
    if main and run.config.log.plots:
        _plots(run)
    if main:
        run.registry.run_finished(run, summary)
    return summary


def _resume_fix(run: Run) -> str:
    return f"free space or make it writable, then finish with 'nasfw run --resume {run.out_dir}'"


def plan_lines(run: Run) -> list[str]:
    """The plan as a few lines: one per phase that has something to say."""
    names = {"optimizer": run.optimizer.name if run.optimizer else "", "selector": run.selector.name if run.selector
             else "", "shrinker": run.config.shrinker.name if run.config.shrinker else ""}
    out = []
    for phase in ("shrinker", "search", "optimizer", "selector"):
        p = run.plan.get(phase)
        if not p:
            continue
        who = f"{phase} {names[phase]}" if names.get(phase) else phase
        out.append(f"plan: {who}: " + ", ".join(f"{k}={_short(v)}" for k, v in p.items()))
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, default=_plain) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def _discard_refused(run: Run) -> None:
    """A run refused before any work leaves nothing behind in a directory it created (config.yaml, the
    TensorBoard writer's folder); a directory that existed before is left as it was found."""
    run.tb.close()
    if run.fresh_dir and run.dist.is_main and run.global_step == 0 and not (run.out_dir / "checkpoint.pt").exists():
        shutil.rmtree(run.out_dir, ignore_errors=True)


def _select(run: Run) -> Genotype:
    """The selector's genotype. Under several processes a selector that declares ``distributed`` runs on
    every rank together (its evaluations are all-reduced); any other runs on rank 0 alone, as in a
    one-process run, and its genotype and summary entries are broadcast."""
    assert run.supernet is not None and run.space is not None and run.selector is not None
    sel = run.selector
    if not run.dist.enabled or sel.distributed:
        return _as_member(run, sel.select(run.supernet, run.space, run))
    result = None
    if run.dist.is_main:
        with run.dist.solo():
            genotype = _as_member(run, sel.select(run.supernet, run.space, run))
        result = (genotype, json.loads(json.dumps(run.extra_summary, default=str)))
    genotype, extra = run.dist.broadcast_object(result)
    run.extra_summary.update(extra)
    return genotype


def _as_member(run: Run, genotype: Genotype) -> Genotype:
    """On a shrunk space, record the member-constrained decision; a selector that returned a non-member
    (one that bypasses ``discretize``) is projected to the member closest to it (most matching edges)."""
    space = run.space
    assert space is not None
    if space.members is None:
        return genotype
    decision = dict(space.last_selection or {})
    if not space.contains(genotype) and _encodable(space, genotype):
        nearest = space.best_member(space._scores_of(genotype))
        decision = {**(space.last_selection or {}), "projected_from": space.format(genotype)}
        warnings.warn(f"selector '{run.selector.name if run.selector else '?'}' returned a cell outside the "
                      f"shrunk space; projected to the nearest member", stacklevel=2)
        genotype = nearest
    run.note_activity("selector", member_constrained=True, selected_member=space.format(genotype),
                      **{k: v for k, v in decision.items() if k != "member_constrained"})
    return genotype


def _encodable(space: SearchSpace, genotype: Genotype) -> bool:
    try:
        space.encode(genotype)
        return True
    except NasfwError:
        return False


def _plots(run: Run) -> None:
    try:
        from nasfw.plots import plot_run
    except ImportError:
        return
    with contextlib.suppress(Exception):
        plot_run(run.out_dir)


def _used_components(run: Run) -> dict[str, str | None]:
    """The configured components plus the edge weighting the supernet actually used (it may come from the
    optimizer or selector rather than the config)."""
    names = run.config.component_names()
    weighting = getattr(run.supernet, "weighting", None)
    if getattr(weighting, "name", ""):
        names["edge_weighting"] = weighting.name
    return names


def _summary(run: Run, genotype: Genotype) -> dict[str, Any]:
    assert run.space is not None
    cfg = run.config
    peak = torch.cuda.max_memory_allocated(run.device) / 2**20 if run.device.type == "cuda" else None
    summary: dict[str, Any] = {
        "genotype": genotype.model_dump(mode="json"),
        "genotype_str": run.space.format(genotype),
        "search_seconds": round(run.timings.get("search_seconds", 0.0), 3),
        "selection_seconds": round(run.timings.get("selection_seconds", 0.0), 3),
        "shrink_seconds": round(run.timings.get("shrink_seconds", 0.0), 3) if run.shrunk else None,
        "final": run.extra_summary.get("final", {}),
        "components": run.registry.versions(_used_components(run)),
        "seed": cfg.seed,
        "epochs": cfg.search.epochs,
        "steps": run.global_step,
        "device": str(run.device),
        "peak_memory_mb": peak,
        **({"world_size": run.dist.world_size} if run.dist.world_size > 1 else {}),
        "versions": {"nasfw": __version__, "torch": torch.__version__, "python": platform.python_version()},
    }
    for k, v in run.extra_summary.items():
        if k != "final":
            summary[k] = v
    if run.shrunk is not None:
        summary["shrink"] = run.shrunk.info
    summary["activity"] = _activity(run)
    try:
        bench = _benchmark(run, genotype)
    except NasfwError as exc:
        bench = {"error": str(exc)}
    if bench is not None:
        summary["benchmark"] = bench
    return summary


def _activity(run: Run) -> dict[str, Any]:
    """What each phase did: α movement (engine-measured) and the components' own figures."""
    assert run.supernet is not None and run.optimizer is not None
    act: dict[str, Any] = json.loads(json.dumps(run.extra_summary.get("activity", {}), default=str))
    opt = act.setdefault("optimizer", {})
    opt.update(json.loads(json.dumps(run.optimizer.activity(), default=_plain)))
    opt["alpha_abs_change"] = {
        k: float((a.detach().cpu().float() - run.alpha_start[k].float()).abs().sum())
        for k, a in run.supernet.arch_parameters().items() if k in run.alpha_start}
    if run.shrunk is not None and run.space is not None:
        full = run.registry.create("search_space", run.config.space, run.ctx).size()
        act.setdefault("shrinker", {}).update(
            {"members": len(run.shrunk.members), "space_size": full,
             "shrink_ratio": (full / len(run.shrunk.members)) if full and run.shrunk.members else None})
    if run.plan:
        act["plan"] = json.loads(json.dumps(run.plan, default=_plain))
    return act


def run_search(config: RunConfig, registry: Registry | None = None, out_dir: Path | None = None,
               quiet: bool = False) -> tuple[Run, dict[str, Any]]:
    """Prepare and execute a new run."""
    run = prepare(config, registry, out_dir, quiet)
    return run, execute(run)


def comparable_config(config: RunConfig) -> dict[str, Any]:
    """The config as checkpointed and compared on resume (``out`` excluded: a run directory may be moved)."""
    data = config.model_dump(mode="json")
    data.pop("out", None)
    return data


def config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every dotted setting that differs between two config dumps."""
    def flat(d: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(d, dict) and d:
            out: dict[str, Any] = {}
            for k, v in d.items():
                out.update(flat(v, f"{prefix}{k}."))
            return out
        return {prefix[:-1]: d}

    a, b = flat(saved), flat(current)
    missing = object()
    diffs = []
    for key in sorted(set(a) | set(b)):
        old, new = a.get(key, missing), b.get(key, missing)
        if old != new:
            def show(v: Any) -> str:
                return "(unset)" if v is missing else json.dumps(v, default=str)[:60]
            diffs.append(f"{key}: {show(old)} -> {show(new)}")
    return diffs


def resume_search(run_dir: str | Path, registry: Registry | None = None, quiet: bool = False,
                  overrides: RunConfig | None = None, force: bool = False) -> tuple[Run, dict[str, Any]]:
    """Continue a run from its ``checkpoint.pt`` with its saved ``config.yaml``.

    The directory is locked before anything is read. A missing or bad ``checkpoint.pt`` falls back to
    ``checkpoint.prev.pt`` with a warning (see :func:`nasfw.checkpoint.load_checkpoint`); with neither the run
    starts over, saying so. A ``config.yaml`` that differs from the config saved in the checkpoint is refused,
    naming the fields, unless ``force`` (the edited settings then apply from the checkpoint on).
    """
    from nasfw.config import build_config, read_config_file

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    if not run_dir.is_dir() or not cfg_path.exists():
        raise ConfigError(f"{run_dir} is not a run directory (no config.yaml)")
    registry = registry or get_registry()
    if overrides is not None:
        config = overrides
    else:
        data = read_config_file(cfg_path)
        if not data:
            raise ConfigError(f"{cfg_path} is empty; a run's config.yaml holds all its settings: restore it (nasfw "
                              f"writes it at the start of every run) or start a new run")
        config = build_config(data)
    validate_config(config, registry)
    dist = dist_mod.init_from_env(config.device)
    ckpt = run_dir / "checkpoint.pt"
    lock = lock_directory(run_dir, dist, before=lambda: check_writable(run_dir, fix=RESUME_FIX))
    try:
        has_state = ckpt.exists() or previous_path(ckpt).exists()
        if (run_dir / "summary.json").exists():  # written last: resuming would redo the selection and rewrite it
            raise ConfigError(f"run {run_dir} already finished (summary.json exists); to redo its selection, "
                              f"delete {run_dir / 'summary.json'} and resume")
        state = None
        if has_state:
            # rank 0 verifies (and repairs from checkpoint.prev.pt) first; then the others read the good file
            state = on_main(dist, lambda: load_checkpoint(ckpt, map_location="cpu", finite=FINITE_STATE))
            if not dist.is_main:
                state = load_checkpoint(ckpt, map_location="cpu", finite=FINITE_STATE, repair=False)
            assert state is not None
            saved = state.get("config")
            if isinstance(saved, dict):
                diffs = config_differences(saved, comparable_config(config))
                if diffs and not force:
                    raise ConfigError(
                        f"{cfg_path} differs from the config saved in the checkpoint ({'; '.join(diffs[:5])}"
                        f"{f'; and {len(diffs) - 5} more' if len(diffs) > 5 else ''}); undo the edit, or resume "
                        f"with --force to continue with the edited settings")
                if diffs and dist.is_main:
                    print(f"warning: resuming with the edited {cfg_path} ({'; '.join(diffs[:5])})", file=sys.stderr)
        elif dist.is_main:
            print(f"warning: {run_dir} has no checkpoint yet; starting the run over from step 0", file=sys.stderr)
        run = prepare(config, registry, run_dir, quiet, lock=lock, locked=True)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    if state is None and run.dist.is_main:
        for f in ("metrics.jsonl", "alphas.jsonl"):
            (run_dir / f).unlink(missing_ok=True)
    return run, execute(run, state)


__all__ = ["DataError", "Run", "execute", "prepare", "resume_search", "run_search"]
