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
from nasfw.checkpoint import load_checkpoint, rng_state, save_atomic, set_rng_state
from nasfw.components import Context, Optimizer, SearchSpace, Selector, ShrunkSpace
from nasfw.config import COMPONENT_KEYS, RunConfig, dump_config
from nasfw.data import Batch, BatchStream, SearchData
from nasfw.distributed import LOCAL, Dist
from nasfw.errors import ConfigError, DataError, DivergenceError, NasfwError
from nasfw.genotype import Genotype
from nasfw.registry import Registry, get_registry
from nasfw.runlog import JsonLines, Progress, TensorBoard
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


def check_writable(out_dir: Path, min_free_mb: int = 50) -> None:
    """Fail before the search, not after hours, when outputs cannot be written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".nasfw-write-test"
        probe.write_bytes(b"x" * 1024)
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write to output directory {out_dir}: {exc.strerror or exc}; "
                          f"choose another with --out") from None
    free = shutil.disk_usage(out_dir).free / 2**20
    if free < min_free_mb:
        raise ConfigError(f"output directory {out_dir} has only {free:.0f} MB free (need {min_free_mb} MB); "
                          f"free space or choose another with --out")


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

    def __post_init__(self) -> None:
        main = self.dist.is_main
        self.metrics_log = JsonLines(self.out_dir / "metrics.jsonl", enabled=main)
        self.alphas_log = JsonLines(self.out_dir / "alphas.jsonl", enabled=main)
        self.tb = TensorBoard(self.out_dir, self.config.log.tensorboard and main)

    # -- helpers for components -------------------------------------------------------------
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
                 model: torch.nn.Module | None = None) -> dict[str, float]:
        """Accuracy and loss of the supernet (with its current mixing weights) over batches."""
        model = model if model is not None else self.supernet
        assert model is not None
        was = model.training
        model.train(train_mode)
        correct = torch.zeros((), device=self.device)
        loss = torch.zeros((), device=self.device)
        n = 0
        with self.autocast(), self.dist.local_bn():  # whole batches per rank: local statistics are the batch's
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
        }
        save_atomic(state, path)
        self.last_checkpoint = str(path)

    def check_finite(self, metrics: dict[str, Any], where: str) -> None:
        bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
        if self.supernet is not None:
            bad += [f"alpha[{k}]" for k, a in self.supernet.arch_parameters().items() if not torch.isfinite(a).all()]
        if bad:
            last = self.last_checkpoint or "none written yet"
            raise DivergenceError(
                f"search diverged at {where} (non-finite {', '.join(bad)}); last good checkpoint: {last}. "
                f"Lower the learning rates or resume from it with --resume {self.out_dir}")


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
            quiet: bool = False) -> Run:
    """Validate every component, create the output directory and build the run (no training yet)."""
    registry = registry or get_registry()
    validate_config(config, registry)  # before touching the disk or the data
    dist = dist_mod.init_from_env(config.device)
    device = resolve_device(config.device, dist)
    out = Path(dist.broadcast_object(str(out_dir or config.out or default_out_dir(config))))
    config.out = str(out)
    if dist.is_main:
        check_writable(out)
        tmp = out / "config.yaml.tmp"  # atomic: other ranks of a resumed run may be reading it
        tmp.write_text(dump_config(config))
        os.replace(tmp, out / "config.yaml")
    ctx = Context(registry=registry, device=device, seed=config.seed, out_dir=out)
    progress = Progress(config.log.progress, quiet=quiet or not dist.is_main)
    return Run(config=config, registry=registry, out_dir=out, device=device, ctx=ctx, progress=progress, dist=dist)


def build(run: Run, resume_state: dict[str, Any] | None = None) -> None:
    """Seed, load data, shrink, build the supernet and the optimizer and selector."""
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
    if cfg.shrinker is not None:
        space = _shrink(run, space, resume_state)
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
    steps = len(run.data.train)
    if cfg.search.steps_per_epoch is not None:
        steps = min(steps, cfg.search.steps_per_epoch)
    run.optimizer.run = run  # type: ignore[attr-defined]
    run.optimizer.setup(supernet, run.data, cfg.search.epochs, steps)


def _shrink(run: Run, space: SearchSpace, resume_state: dict[str, Any] | None) -> SearchSpace:
    cfg = run.config
    shrinker = run.registry.create("shrinker", cfg.shrinker, run.ctx)
    path = run.out_dir / "shrunk_space.json"
    t0 = time.time()
    if resume_state is not None and path.exists():
        data = json.loads(path.read_text())
        shrunk = ShrunkSpace([Genotype.from_dict(g) for g in data["members"]], data.get("info", {}))
    else:
        run.progress.line(f"shrinking space '{space.name}' with '{shrinker.name}'")
        shrunk = None
        if run.dist.is_main:  # shrinkers are not distributed-aware: rank 0 shrinks alone, the others wait
            with run.dist.solo():
                shrunk = shrinker.shrink(space, run)
            path.write_text(json.dumps({"members": [g.model_dump(mode="json") for g in shrunk.members],
                                        "info": shrunk.info}, default=str))
        shrunk = run.dist.broadcast_object(shrunk)
    run.timings["shrink_seconds"] = time.time() - t0
    run.shrunk = shrunk
    if getattr(run.optimizer, "samples_architectures", False):
        return space.restrict_to(shrunk.members)
    warnings.warn(
        f"optimizer '{run.optimizer.name}' searches a product space: the {len(shrunk.members)} shrunk "
        f"architectures are projected to a per-edge op mask, which re-expands the space", stacklevel=2)
    return space.restrict(shrunk.op_mask(space))


def _restore(run: Run, state: dict[str, Any]) -> None:
    assert run.supernet is not None and run.optimizer is not None and run.data is not None
    run.supernet.load_state_dict(state["supernet"])
    run.supernet.set_override({k: v.to(run.device) for k, v in state.get("override", {}).items()})
    run.optimizer.load_state_dict(state["optimizer"])
    if run.selector is not None:
        run.selector.load_state_dict(state.get("selector", {}))
    run.data.load_state_dict(state["data"])
    run.phase, run.epoch, run.global_step = state["phase"], state["epoch"], state["global_step"]
    run.timings.update(state.get("timings", {}))
    run.extra_summary.update(state.get("extra_summary", {}))
    run.epoch_sums = dict(state.get("epoch_sums", {}))
    run.epoch_count = state.get("epoch_count", 0)
    run.metrics_log.truncate(state["logs"]["metrics"])
    run.alphas_log.truncate(state["logs"]["alphas"])
    set_rng_state(state["rng"])
    run.last_checkpoint = str(run.out_dir / "checkpoint.pt")


def _search(run: Run) -> None:
    cfg = run.config
    assert run.optimizer is not None and run.data is not None and run.supernet is not None
    opt, data = run.optimizer, run.data
    if not opt.trains or cfg.search.epochs == 0:
        return
    steps_per_epoch = opt.steps_per_epoch
    t_start = time.time() - run.timings.get("search_seconds", 0.0)
    every = cfg.search.checkpoint_every
    with run.progress.phase("search", total=cfg.search.epochs * steps_per_epoch):
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
            val = run.evaluate(run.eval_batches("val", cfg.search.eval_batches))
            ep.update({"val_acc": val["acc"], "val_loss": val["loss"]})
            run.check_finite(ep, f"the end of epoch {epoch + 1}")
            run.epoch = epoch + 1
            run.timings["search_seconds"] = time.time() - t_start
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
    """Run the whole pipeline; returns the summary (also written to ``summary.json``)."""
    build(run, resume_state)
    assert run.supernet is not None and run.space is not None and run.selector is not None
    if resume_state is not None:
        _restore(run, resume_state)
        run.progress.line(f"resumed {run.out_dir} at phase '{run.phase}', epoch {run.epoch}, step {run.global_step}")
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
        genotype.save(run.out_dir / "genotype.json")
    summary = _summary(run, genotype)
    if run.config.evaluation.train:
        from nasfw.trainer import train_genotype

        summary["evaluation"] = train_genotype(run, genotype)
    if main:
        (run.out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    run.phase = "done"
    run.tb.close()
    if main and run.config.log.plots:
        _plots(run)
    if main:
        run.registry.run_finished(run, summary)
    return summary


def _select(run: Run) -> Genotype:
    """The selector's genotype. Under several processes a selector that declares ``distributed`` runs on
    every rank together (its evaluations are all-reduced); any other runs on rank 0 alone, as in a
    one-process run, and its genotype and summary entries are broadcast."""
    assert run.supernet is not None and run.space is not None and run.selector is not None
    sel = run.selector
    if not run.dist.enabled or sel.distributed:
        return sel.select(run.supernet, run.space, run)
    result = None
    if run.dist.is_main:
        with run.dist.solo():
            genotype = sel.select(run.supernet, run.space, run)
        result = (genotype, json.loads(json.dumps(run.extra_summary, default=str)))
    genotype, extra = run.dist.broadcast_object(result)
    run.extra_summary.update(extra)
    return genotype


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
    try:
        bench = _benchmark(run, genotype)
    except NasfwError as exc:
        bench = {"error": str(exc)}
    if bench is not None:
        summary["benchmark"] = bench
    return summary


def run_search(config: RunConfig, registry: Registry | None = None, out_dir: Path | None = None,
               quiet: bool = False) -> tuple[Run, dict[str, Any]]:
    """Prepare and execute a new run."""
    run = prepare(config, registry, out_dir, quiet)
    return run, execute(run)


def resume_search(run_dir: str | Path, registry: Registry | None = None, quiet: bool = False,
                  overrides: RunConfig | None = None) -> tuple[Run, dict[str, Any]]:
    """Continue a run from its ``checkpoint.pt`` with its saved ``config.yaml``."""
    from nasfw.config import build_config, read_config_file

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise ConfigError(f"{run_dir} is not a run directory (no config.yaml)")
    config = overrides or build_config(read_config_file(run_dir / "config.yaml"))
    if (run_dir / "summary.json").exists() and not (run_dir / "checkpoint.pt").exists():
        raise ConfigError(f"run {run_dir} already finished (summary.json exists)")
    state = load_checkpoint(run_dir / "checkpoint.pt", map_location="cpu") if (run_dir / "checkpoint.pt").exists() \
        else None
    run = prepare(config, registry, run_dir, quiet)
    if state is None and run.dist.is_main:
        for f in ("metrics.jsonl", "alphas.jsonl"):
            (run_dir / f).unlink(missing_ok=True)
    return run, execute(run, state)


__all__ = ["DataError", "Run", "execute", "prepare", "resume_search", "run_search"]
