"""Final training of a genotype's stand-alone network from scratch, under a named protocol.

The recipe (network size, data, optimiser, schedule, regularisers) is a :class:`~nasfw.protocols.TrainingProtocol`;
this module only runs it. The loop is the one every DARTS-family paper uses: SGD with momentum and weight
decay, a per-epoch LR schedule, drop path ramped linearly (``rate * epoch / epochs``, set on the network's
``drop_path_prob`` attribute when it has one), an auxiliary head whose loss is added with a weight when the
network returns ``(logits, aux)`` in training mode, optional label smoothing and gradient-norm clipping.

An evaluation directory holds ``eval.yaml`` (protocol, space, seed), ``genotype.json``, ``metrics.jsonl``,
``checkpoint.pt`` (after every epoch, atomically; ``--resume`` continues from it exactly), ``summary.json``
(params, multiply-adds, best and final test accuracy) and TensorBoard event files.

Under torchrun (``torchrun --nproc-per-node N -m nasfw eval ...``) the processes train one network together:
rank 0's initial weights are broadcast, each rank takes its share of every global batch (``batch_size`` is
the global batch), gradients are averaged over ranks before clipping and the SGD step, BN running statistics
are averaged before each test pass and checkpoint, the test batches are split across ranks and summed, and
only rank 0 writes files. The checkpoint does not depend on the number of processes.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import yaml
from torch import nn

from nasfw.checkpoint import (
    NonFiniteStateError,
    load_checkpoint,
    mismatch_reason,
    position,
    rng_state,
    save_atomic,
    set_rng_state,
)
from nasfw.components import Context, SearchSpace
from nasfw.config import ComponentRef, RunConfig
from nasfw.data import BatchStream, DataShape
from nasfw.distributed import current as current_dist
from nasfw.errors import CheckpointError, ConfigError, DataError, DivergenceError, NasfwError, closest
from nasfw.flops import count_macs, count_params
from nasfw.genotype import Genotype
from nasfw.outputs import write_text_atomic
from nasfw.protocols import TrainingProtocol, apply_overrides, get_protocol, network_override_keys
from nasfw.registry import Registry, get_registry
from nasfw.runlock import RunLock
from nasfw.runlog import JsonLines, Progress, TensorBoard

if TYPE_CHECKING:
    from nasfw.engine import Run

EVAL_FILE = "eval.yaml"


#: The protocol of a space that declares none (``SearchSpace.default_protocol``).
FALLBACK_PROTOCOL = "darts-cifar"


def default_protocol(space: Any) -> str:
    """The final-training protocol a space's genotypes get when the user names none."""
    return getattr(space, "default_protocol", None) or FALLBACK_PROTOCOL


def make_space(genotype: Genotype, registry: Registry, space: Any = None, ctx: Context | None = None) -> SearchSpace:
    """The space that builds the genotype's network: ``space`` (a name or {name, params}) or the genotype's own."""
    ref = space if space is not None else genotype.space
    return registry.create("search_space", ref, ctx or Context(registry=registry))


def build_eval_network(space: SearchSpace, genotype: Genotype, protocol: TrainingProtocol,
                       shape: DataShape) -> nn.Module:
    """The stand-alone network with the protocol's options (the space ignores options it does not know)."""
    try:
        return space.build_network(genotype, shape, **protocol.network)
    except TypeError as exc:
        raise ConfigError(f"space '{space.name}' rejected the protocol's network options "
                          f"{protocol.network}: {exc}; fix them with --set network.<option>=...") from None


def check_network_overrides(space: SearchSpace, overrides: dict[str, Any] | list[str] | tuple[str, ...],
                            where: str = "--set network.") -> None:
    """A user-set network option the space's ``build_network`` does not take is an error (a protocol's own
    options are not checked: one protocol serves spaces with different options)."""
    known = space.network_options()
    if known is None:
        return
    for key in sorted(network_override_keys(overrides) - known):
        raise ConfigError(f"space '{space.name}' has no network option '{key}' (set by {where}{key})."
                          f"{closest(key, known)} Its options: {', '.join(sorted(known)) or 'none'}")


def check_evaluation(config: RunConfig, registry: Registry) -> None:
    """Validate ``evaluation.protocol`` and ``evaluation.params`` when the run config is read, not hours later
    when the search ends and the final training starts."""
    if config.evaluation.protocol is None:
        config.evaluation.protocol = default_protocol(registry.resolve("search_space", config.space)[1])
    params = dict(config.evaluation.params)
    apply_overrides(get_protocol(config.evaluation.protocol, registry), params, "evaluation.params")
    if network_override_keys(params):  # only then is the space worth building here
        space = registry.create("search_space", config.space.model_dump(mode="json"))
        check_network_overrides(space, params, "evaluation.params network.")


def protocol_shape(protocol: TrainingProtocol) -> DataShape:
    c, h, w = protocol.input_shape
    return DataShape(c, h, w, protocol.num_classes)


def dry_run(genotype: Genotype, protocol: TrainingProtocol, registry: Registry | None = None,
            space: Any = None) -> dict[str, int]:
    """Params (auxiliary head excluded) and multiply-adds of the evaluation network, without data or training."""
    reg = registry or get_registry()
    sp = make_space(genotype, reg, space)
    shape = protocol_shape(protocol)
    net = build_eval_network(sp, genotype, protocol, shape)
    return {"params": count_params(net), "flops": count_macs(net, (shape.channels, shape.height, shape.width))}


def _train_and_test(protocol: TrainingProtocol, registry: Registry, ctx: Context,
                    seed: int) -> tuple[Any, Any, DataShape]:
    dataset = registry.create("dataset", protocol.dataset, ctx)
    splits = dataset.splits(seed)
    if protocol.train_on == "train+val":
        train = torch.utils.data.ConcatDataset([splits.train, splits.val])
        test = splits.test
        if test is None:
            raise DataError(f"dataset '{protocol.dataset.name}' has no test split to report on; "
                            f"use --set train_on=train to train on one half and test on the other")
    else:
        train, test = splits.train, splits.test if splits.test is not None else splits.val
    return train, test, splits.shape


class _Trainer:
    """One evaluation: state, data and the epoch loop (checkpointed after every epoch)."""

    def __init__(self, genotype: Genotype, protocol: TrainingProtocol, out_dir: Path, registry: Registry,
                 device: torch.device, seed: int, progress: Progress, space: Any, tensorboard: bool,
                 protocol_name: str):
        self.genotype, self.protocol, self.out_dir = genotype, protocol, out_dir
        self.registry, self.device, self.seed, self.progress = registry, device, seed, progress
        self.protocol_name = protocol_name
        self.ctx = Context(registry=registry, device=device, seed=seed, out_dir=out_dir)
        self.space = make_space(genotype, registry, space, self.ctx)
        self.schedule = registry.create("lr_schedule", protocol.lr_schedule, self.ctx)
        self.dist = current_dist()
        self.metrics = JsonLines(out_dir / "metrics.jsonl", enabled=self.dist.is_main)
        self.tb = TensorBoard(out_dir, tensorboard and self.dist.is_main)
        self.epoch = 0
        self.best: float | None = None
        self.final: dict[str, float] = {}
        self.seconds = 0.0
        self.last_at: str | None = None  # where the last finite checkpoint stands (for messages)

    def setup(self) -> None:
        from nasfw.engine import seed_everything

        p = self.protocol
        seed_everything(self.seed)
        train, test, shape = _train_and_test(p, self.registry, self.ctx, self.seed)
        self.shape = shape
        self.model = build_eval_network(self.space, self.genotype, p, shape).to(self.device)
        if self.dist.enabled and p.sync_bn:
            from nasfw.distributed import convert_batchnorm

            convert_batchnorm(self.model)
        self.dist.broadcast_module_(self.model)
        self.params = count_params(self.model)
        self.flops = count_macs(self.model, (shape.channels, shape.height, shape.width), self.device)
        kw = dict(num_workers=p.num_workers, pin_memory=self.device.type == "cuda",
                  dist=self.dist if self.dist.enabled else None)
        self.train = BatchStream(train, p.batch_size, seed=self.seed * 2 + 1, **kw)
        self.test = test
        self.steps = len(self.train) if p.steps_per_epoch is None else min(len(self.train), p.steps_per_epoch)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=p.lr, momentum=p.momentum,
                                   weight_decay=p.weight_decay, nesterov=p.nesterov and p.momentum > 0)

    # -- state -------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"kind": "eval", "epoch": self.epoch, "model": self.model.state_dict(),
                "optimizer": self.opt.state_dict(), "rng": rng_state(), "best": self.best, "final": self.final,
                "seconds": self.seconds, "metrics_pos": self.metrics.position(),
                "genotype": self.genotype.model_dump(mode="json")}

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "eval":
            raise ConfigError(f"{self.out_dir / 'checkpoint.pt'} is not an evaluation checkpoint")
        if Genotype.from_dict(state["genotype"]) != self.genotype:
            raise ConfigError(f"{self.out_dir} holds the evaluation of another genotype; choose another --out")
        try:
            self.model.load_state_dict(state["model"])
            self.opt.load_state_dict(state["optimizer"])
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            first = mismatch_reason(exc)
            raise CheckpointError(f"{self.out_dir / 'checkpoint.pt'} does not fit this evaluation's network "
                                  f"({first}); resume an evaluation only from its own checkpoint") from None
        self.epoch, self.best, self.final = int(state["epoch"]), state["best"], dict(state["final"])
        self.seconds = float(state["seconds"])
        self.metrics.truncate(int(state["metrics_pos"]))
        set_rng_state(state["rng"])
        self.last_at = position(state)

    # -- loop --------------------------------------------------------------------------------
    def loss(self, out: Any, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.protocol
        logits, aux = (out if isinstance(out, tuple) else (out, None))
        loss = nn.functional.cross_entropy(logits, y, label_smoothing=p.label_smoothing)
        if aux is not None and p.auxiliary_weight > 0:
            loss = loss + p.auxiliary_weight * nn.functional.cross_entropy(aux, y, label_smoothing=p.label_smoothing)
        return loss, logits

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        self.model.eval()
        test = self.test
        if self.dist.enabled:
            from nasfw.engine import own_batches

            self.dist.sync_buffers_(self.model)
            test = own_batches(test, self.protocol.eval_batch_size, self.dist)
        stream = BatchStream(test, self.protocol.eval_batch_size, seed=0, shuffle=False)
        correct, total, loss = 0, 0, 0.0
        for x, y in stream.epoch_batches():
            x, y = x.to(self.device), y.to(self.device)
            out = self.model(x)
            logits = out[0] if isinstance(out, tuple) else out
            loss += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
            total += y.numel()
        if self.dist.enabled:
            tot = self.dist.sum_(torch.tensor([correct, total, loss], dtype=torch.float64, device=self.dist.device))
            correct, total, loss = int(tot[0]), int(tot[1]), float(tot[2])
        return {"test_acc": correct / max(total, 1), "test_loss": loss / max(total, 1)}

    def run_epoch(self, epoch: int) -> dict[str, float]:
        p = self.protocol
        lr = self.schedule.lr(epoch, p.epochs, p.lr)
        for g in self.opt.param_groups:
            g["lr"] = lr
        drop = p.drop_path_prob * epoch / max(p.epochs, 1)
        if hasattr(self.model, "drop_path_prob"):
            self.model.drop_path_prob = drop
        self.model.train()
        self.train.load_state_dict({"epoch": epoch, "offset": 0, "seed": self.train.seed})
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        n = 0
        for i, (x, y) in enumerate(self.train.epoch_batches()):
            if i >= self.steps:
                break
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            self.opt.zero_grad(set_to_none=True)
            loss, logits = self.loss(self.model(x), y)
            loss.backward()
            if self.dist.enabled:
                self.dist.average_([q.grad for q in self.model.parameters()], weight=y.numel())
            if p.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), p.grad_clip)
            self.opt.step()
            loss_sum += loss.detach() * y.numel()
            correct += (logits.detach().argmax(1) == y).sum()
            n += y.numel()
            self.progress.advance(f"loss={float(loss.detach()):.3f}" if i % 10 == 0 else "")
        if self.dist.enabled:
            tot = self.dist.sum_(torch.stack([loss_sum.double(), correct.double(),
                                              torch.tensor(float(n), dtype=torch.float64, device=self.device)]))
            loss_sum, correct, n = tot[0], tot[1], int(tot[2])
        rec = {"train_loss": float(loss_sum) / max(n, 1), "train_acc": float(correct) / max(n, 1),
               "lr": lr, "drop_path_prob": drop}
        if not math.isfinite(rec["train_loss"]):
            raise DivergenceError(f"final training diverged in epoch {epoch + 1} (loss {rec['train_loss']}); "
                                  f"lower the learning rate with --set lr=...")
        return rec

    def fit(self, stop_after: int | None = None) -> None:
        p = self.protocol
        t0 = time.time() - self.seconds
        done_now = 0
        with self.progress.phase("eval", total=p.epochs * self.steps):
            for _ in range(self.epoch * self.steps):
                self.progress.advance()
            while self.epoch < p.epochs and (stop_after is None or done_now < stop_after):
                epoch = self.epoch
                self.progress.describe(f"train epoch {epoch + 1}/{p.epochs}")
                rec = self.run_epoch(epoch)
                if (epoch + 1) % p.eval_every == 0 or epoch + 1 == p.epochs:
                    rec.update(self.evaluate())
                    self.best = rec["test_acc"] if self.best is None else max(self.best, rec["test_acc"])
                self.epoch = epoch + 1
                self.seconds = time.time() - t0
                rec["seconds"] = self.seconds
                self.final = rec
                self.metrics.write({"phase": "eval", "kind": "epoch", "epoch": self.epoch, **rec})
                self.tb.scalars("eval", rec, self.epoch)
                self.progress.line(f"eval epoch {self.epoch}/{p.epochs}: " + " ".join(
                    f"{k}={v:.4f}" for k, v in rec.items() if k in ("train_loss", "train_acc", "test_acc", "lr")))
                self.dist.sync_buffers_(self.model)
                if self.dist.is_main:
                    self.save()
                done_now += 1
        self.tb.close()

    def save(self) -> None:
        """Checkpoint the epoch; a state with NaN/inf weights is never written (the last finite one stays)."""
        path = self.out_dir / "checkpoint.pt"
        state = self.state()
        try:
            save_atomic(state, path, finite=("model", "optimizer"))
        except NonFiniteStateError as exc:
            last = (f"the last finite checkpoint is {path}{self.last_at}" if self.last_at is not None
                    else "no checkpoint was written")
            raise DivergenceError(f"final training diverged in epoch {self.epoch} ({len(exc.bad)} non-finite tensors, "
                                  f"e.g. {exc.bad[0]}); {last}; lower the learning rate with --set lr=...") from None
        self.last_at = position(state)

    def summary(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol_name,
            "space": self.space.name,
            "genotype_str": self.space.format(self.genotype),
            "params": self.params,
            "flops": self.flops,
            "epochs_done": self.epoch,
            "epochs": self.protocol.epochs,
            "finished": self.epoch >= self.protocol.epochs,
            "best_test_acc": self.best,
            "final_test_acc": self.final.get("test_acc"),
            "final": self.final,
            "train_seconds": round(self.seconds, 3),
            "dataset": self.protocol.dataset.name,
            "seed": self.seed,
            "device": str(self.device),
        }


def _write_spec(out_dir: Path, genotype: Genotype, protocol: TrainingProtocol, protocol_name: str, space: Any,
                seed: int) -> None:
    spec = {"protocol_name": protocol_name, "protocol": protocol.model_dump(mode="json"), "seed": seed,
            "space": space.model_dump(mode="json") if isinstance(space, ComponentRef) else space}
    (out_dir / EVAL_FILE).write_text(yaml.safe_dump(spec, sort_keys=False))
    genotype.save(out_dir / "genotype.json")


def evaluate_genotype(genotype: Genotype, protocol: TrainingProtocol | str = "quick", out_dir: str | Path = "eval",
                      *, registry: Registry | None = None, device: str = "auto", seed: int = 0,
                      space: Any = None, resume: bool = False, quiet: bool = False, tensorboard: bool = True,
                      progress: Progress | None = None, stop_after: int | None = None,
                      protocol_name: str | None = None, lock: RunLock | None = None,
                      locked: bool = False) -> dict[str, Any]:
    """Train ``genotype`` from scratch under ``protocol``; returns (and writes) the summary.

    ``resume=True`` continues from ``out_dir/checkpoint.pt``; ``stop_after`` trains at most that many epochs in
    this call (time-sliced jobs), a later ``resume`` finishes the rest. The directory is locked (rank 0) for
    the call; ``lock`` is a lock the caller already holds.
    """
    from nasfw.distributed import init_from_env
    from nasfw.engine import RESUME_FIX, check_writable, lock_directory, resolve_device

    dist = init_from_env(device)
    reg = registry or get_registry()
    if isinstance(protocol, str):
        protocol_name = protocol_name or protocol
        protocol = get_protocol(protocol, reg)
    protocol_name = protocol_name or "custom"
    out = Path(out_dir)
    ckpt = out / "checkpoint.pt"
    dev = resolve_device(device, dist)
    if lock is None and not locked:  # only rank 0 holds the object: the others must not lock again alone
        fix = RESUME_FIX if resume else "choose another with --out"
        lock = lock_directory(out, dist, what="evaluation", hint="" if resume else " (or choose another --out)",
                              before=lambda: check_writable(out, fix=fix))
    trainer: _Trainer | None = None
    try:
        if not resume and ckpt.exists():
            raise ConfigError(f"{out} already holds an evaluation; continue it with --resume {out} or choose "
                              f"another --out")
        if dist.is_main and not resume:
            (out / "metrics.jsonl").unlink(missing_ok=True)
            _write_spec(out, genotype, protocol, protocol_name, space, seed)
        trainer = _Trainer(genotype, protocol, out, reg, dev, seed,
                           progress or Progress(quiet=quiet or not dist.is_main), space, tensorboard, protocol_name)
        trainer.setup()
        if resume and ckpt.exists():
            trainer.restore(load_checkpoint(ckpt, map_location="cpu", finite=("model", "optimizer"),
                                            repair=dist.is_main))
            trainer.progress.line(f"resumed evaluation {out} at epoch {trainer.epoch}/{protocol.epochs}")
        trainer.fit(stop_after)
        summary = trainer.summary()
        if dist.world_size > 1:
            summary["world_size"] = dist.world_size
        if dist.is_main:
            write_text_atomic(out / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
        return summary
    finally:  # every way out: the TensorBoard writer's thread stops, the directory is free again
        if trainer is not None:
            trainer.tb.close()
        if lock is not None:
            lock.release()


def resume_evaluation(out_dir: str | Path, *, registry: Registry | None = None, device: str = "auto",
                      quiet: bool = False, stop_after: int | None = None) -> dict[str, Any]:
    """Continue the evaluation in ``out_dir`` with its saved protocol, space, seed and genotype."""
    out = Path(out_dir)
    spec_path = out / EVAL_FILE
    if not spec_path.exists():
        raise ConfigError(f"{out} is not an evaluation directory (no {EVAL_FILE}); start one with nasfw eval --out")
    try:
        spec = yaml.safe_load(spec_path.read_text())
        protocol = TrainingProtocol.model_validate(spec["protocol"])
    except Exception as exc:
        raise ConfigError(f"{spec_path} is unreadable ({type(exc).__name__}); start a new evaluation") from None
    from nasfw.checkpoint import previous_path
    from nasfw.distributed import init_from_env
    from nasfw.engine import RESUME_FIX, check_writable, lock_directory, on_main
    from nasfw.zoo import Resolved, check_resolved

    ckpt = out / "checkpoint.pt"
    if not ckpt.exists() and not previous_path(ckpt).exists():
        raise ConfigError(f"{out} has no checkpoint.pt to resume from; start a new evaluation")
    reg = registry or get_registry()
    genotype = check_resolved(Resolved(Genotype.load(out / "genotype.json"), str(out / "genotype.json"),
                                       spec.get("space")), reg).genotype
    dist = init_from_env(device)
    lock = lock_directory(out, dist, what="evaluation", before=lambda: check_writable(out, fix=RESUME_FIX))
    try:
        # rank 0 verifies the checkpoint (falling back to checkpoint.prev.pt) before any rank reads it
        state = on_main(dist, lambda: load_checkpoint(ckpt, map_location="cpu", finite=("model", "optimizer")))
        state_epoch = int(dist.broadcast_object(None if state is None else int(state["epoch"])))
        if state_epoch >= protocol.epochs:
            raise ConfigError(f"evaluation {out} already finished ({state_epoch}/{protocol.epochs} epochs)")
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return evaluate_genotype(genotype, protocol, out, registry=reg, device=device, seed=int(spec["seed"]),
                             space=spec.get("space"), resume=True, quiet=quiet, stop_after=stop_after,
                             protocol_name=spec.get("protocol_name"), lock=lock, locked=True)


def train_genotype(run: Run, genotype: Genotype) -> dict[str, Any]:
    """The engine's hook after a search (``evaluation.train: true``): train the found genotype under
    ``evaluation.protocol`` with ``evaluation.params`` overrides, in ``RUN_DIR/eval``.

    The run's dataset is used unless the overrides name one; when it is the protocol's dataset, the protocol's
    dataset options (e.g. cutout 16) are laid over the run's (e.g. its data_dir). A killed run resumes the
    evaluation from ``RUN_DIR/eval/checkpoint.pt``.
    """
    cfg = run.config
    protocol = get_protocol(cfg.evaluation.protocol, run.registry)
    overrides = dict(cfg.evaluation.params)
    if not any(str(k).split(".")[0] == "dataset" for k in overrides):
        ref = cfg.dataset
        params = {**ref.params, **protocol.dataset.params} if ref.name == protocol.dataset.name else dict(ref.params)
        protocol = protocol.model_copy(update={"dataset": ComponentRef(name=ref.name, params=params)})
    protocol = apply_overrides(protocol, overrides, "evaluation.params")
    out = run.out_dir / "eval"
    resume = (out / "checkpoint.pt").exists()
    if resume:
        try:
            state = load_checkpoint(out / "checkpoint.pt", map_location="cpu", finite=("model", "optimizer"),
                                    repair=run.dist.is_main)
            resume = Genotype.from_dict(state.get("genotype")) == genotype
        except NasfwError:
            resume = False
        if not resume and run.dist.is_main:
            for f in ("checkpoint.pt", "checkpoint.prev.pt"):
                (out / f).unlink(missing_ok=True)
        run.dist.barrier()  # no rank may see the stale checkpoint after rank 0 decided to start over
    run.progress.line(f"training the genotype from scratch ('{cfg.evaluation.protocol}' protocol) in {out}")
    return evaluate_genotype(genotype, protocol, out, registry=run.registry, device=str(run.device), seed=cfg.seed,
                             space=cfg.space.model_dump(mode="json"), resume=resume,
                             tensorboard=cfg.log.tensorboard, progress=run.progress,
                             protocol_name=cfg.evaluation.protocol)


__all__ = ["build_eval_network", "dry_run", "evaluate_genotype", "resume_evaluation", "train_genotype"]
