"""Performance estimators f(a) for shrinkers: zero-cost proxy, weight-sharing accuracy, and the oracle.

The LISSNAS sources do not say where f(a) comes from (methods note §A.5), so the estimator is a
swappable part: a shrinker names one with ``evaluator`` and configures it with ``evaluator_params``.
Every evaluator returns "higher is better" scores and is only asked about members of the space.

``proxy`` (SynFlow by default, data-free) and ``supernet`` never look at a benchmark; ``oracle`` reads the
benchmark's answer for every architecture it scores. It is an upper bound for what any estimator could
give a shrinker, not a shrinkage method: its shrunk spaces are an oracle search, and the Kendall-τ of its
scores against the truth is 1 by construction (the report does not compute it).
"""

from __future__ import annotations

import copy
import functools
import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from nasfw.components import SearchSpace, StrictModel
from nasfw.data import DataShape
from nasfw.errors import ConfigError
from nasfw.genotype import Genotype


class Evaluator:
    """Scores architectures; subclasses set ``Config`` and implement :meth:`score`."""

    Config: ClassVar[type[StrictModel]] = StrictModel
    description: ClassVar[str] = ""
    #: Whether f(a) stays the same across iterations (then each architecture is scored once).
    static: bool = True
    #: Whether f(a) *is* the benchmark's answer (the shrink then reads the truth; no τ is reported).
    reads_truth: ClassVar[bool] = False

    def __init__(self, config: StrictModel, space: SearchSpace, run: Any):
        self.config = config
        self.space = space
        self.run = run

    def score(self, genotypes: list[Genotype]) -> list[float]:
        raise NotImplementedError

    def on_space(self, sampler: Callable[[random.Random], Genotype]) -> None:
        """Called with a sampler of the current (shrunk) space at the start of every iteration."""


# --------------------------------------------------------------------------- benchmark table


class OracleEvaluator(Evaluator):
    """f(a) = a benchmark's number for a (e.g. NB201 CIFAR-10 test accuracy): the answer itself.

    An upper bound, not an estimator: a shrink with it is an oracle search over the table."""

    description = "ORACLE: reads the benchmark's true accuracy of every scored architecture (upper bound only)"
    reads_truth = True

    class Config(StrictModel):
        benchmark: str | None = Field(default=None, description="benchmark name (default: the one for the space)")
        benchmark_params: dict[str, Any] = Field(default_factory=dict)
        metric: str | None = Field(default=None, description="key of the benchmark's answer (default: the first "
                                   "key ending in 'acc', e.g. cifar10_test_acc)")

    def __init__(self, config: Any, space: SearchSpace, run: Any):
        super().__init__(config, space, run)
        name = config.benchmark or find_benchmark(run.registry, space)
        if name is None:
            raise ConfigError(f"no benchmark is registered for space '{space.name}'; name one with "
                              f"--set shrinker.evaluator_params.benchmark=NAME or use evaluator 'proxy' (the default)")
        self.benchmark_name = name
        self.bench = run.registry.create("benchmark", {"name": name, "params": config.benchmark_params}, run.ctx)
        self.metric = config.metric

    def score(self, genotypes: list[Genotype]) -> list[float]:
        out = []
        for g in genotypes:
            row = self.bench.query(g)
            if self.metric is None:
                self.metric = default_metric(row, self.benchmark_name)
            if self.metric not in row:
                raise ConfigError(f"benchmark '{self.benchmark_name}' has no metric '{self.metric}'; "
                                  f"choose one of {', '.join(sorted(row))}")
            out.append(float(row[self.metric]))
        return out


def find_benchmark(registry: Any, space: SearchSpace) -> str | None:
    """The first registered benchmark that declares this space."""
    from nasfw.shrinkage import find_benchmark as first_for_space

    return first_for_space(registry, space)


def default_metric(row: dict[str, float], bench: str) -> str:
    keys = [k for k in row if k.endswith("acc")]
    if not keys:
        raise ConfigError(f"benchmark '{bench}' reports no '*acc' metric; set evaluator_params.metric to one of "
                          f"{', '.join(sorted(row))}")
    return keys[0]


# --------------------------------------------------------------------------- zero-cost proxies


def synflow(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, inplace: bool = False) -> float:
    """SynFlow (Tanaka et al. 2020) as a zero-cost proxy (Abdelfattah et al. 2021): with |θ| and
    BatchNorm removed, R = Σ f(1); score = Σ over conv/linear weights of θ ⊙ ∂R/∂θ. Data-free.
    ``inplace`` uses (and spoils) ``net`` itself: the evaluator's throw-away networks skip the deep copy,
    which is most of the cost (NB201, C=16, N=5: 0.35 of 0.42 s)."""
    net = (net if inplace else copy.deepcopy(net)).double()
    _drop_batchnorm(net)
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad()
    ones = torch.ones((1, *inputs.shape[1:]), dtype=torch.float64)
    out = net(ones)
    out = out[0] if isinstance(out, tuple) else out
    out.sum().backward()
    total = 0.0
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.grad is not None:
            total += float((m.weight.detach() * m.weight.grad).sum())
    return total


def _drop_batchnorm(net: nn.Module) -> None:
    for name, child in net.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(net, name, nn.Identity())
        else:
            _drop_batchnorm(child)


def param_count(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Number of trainable parameters (the simplest "proxy"; a baseline for the others)."""
    return float(sum(p.numel() for p in net.parameters() if p.requires_grad))


def grad_norm(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """‖∂L/∂θ‖₂ of the cross-entropy on one batch at initialisation (Abdelfattah et al. 2021)."""
    net.zero_grad()
    out = net(inputs)
    out = out[0] if isinstance(out, tuple) else out
    F.cross_entropy(out, targets).backward()
    return float(torch.sqrt(sum((p.grad**2).sum() for p in net.parameters() if p.grad is not None)))


BUILTIN_PROXIES: dict[str, Callable[[nn.Module, torch.Tensor, torch.Tensor], float]] = {
    "synflow": synflow, "params": param_count, "grad_norm": grad_norm}


class ProxyEvaluator(Evaluator):
    """f(a) = a zero-cost proxy of a's stand-alone network at initialisation (no training)."""

    description = "architecture-level zero-cost proxy"

    class Config(StrictModel):
        proxy: str = Field(default="synflow", description="synflow (built-in, data-free; equal to nasfw-freedarts' "
                           "synflow), a registered proxy (e.g. nasfw-freedarts' nwot, jacob_cov, snip), or built-in "
                           "params/grad_norm")
        network: dict[str, Any] = Field(default_factory=dict, description="options of the space's build_network "
                                        "(e.g. {C: 16, N: 5} for NB201)")
        input_shape: list[int] | None = Field(default=None, min_length=4, max_length=4,
                                              description="[channels, height, width, classes] instead of the "
                                              "dataset's (e.g. [3, 32, 32, 10] for CIFAR-10)")
        batch_size: int = Field(default=16, ge=1, description="batch for data-dependent proxies")
        log: bool = Field(default=True, description="score = sign·log(1+|proxy|) (tames synflow's range; "
                          "rank-preserving, but it changes the mean the stopping rule watches)")
        seed: int = Field(default=0, ge=0, description="weight-initialisation seed of every scored network")
        cache: str | None = Field(default=None, description="JSON file memoising scores across shrinks (keyed by "
                                  "these options, the space's and the input): repeated studies skip recomputation; "
                                  "the shrinker still counts every score it asks for as an evaluation")

    def __init__(self, config: Any, space: SearchSpace, run: Any):
        super().__init__(config, space, run)
        self.memo: dict[str, float] = {}
        self.memo_key = ""
        names = run.registry.names("proxy")
        if config.proxy == "synflow":  # the built-in one, on the throw-away network (same numbers, no copy)
            self.fn = functools.partial(synflow, inplace=True)
        elif config.proxy in names:
            self.fn = run.registry.get("proxy", config.proxy)
        elif config.proxy in BUILTIN_PROXIES:
            self.fn = BUILTIN_PROXIES[config.proxy]
        else:
            avail = sorted({*names, *BUILTIN_PROXIES})
            raise ConfigError(f"unknown proxy '{config.proxy}'; choose one of {', '.join(avail)}")
        if config.input_shape is not None:
            c, h, w, k = config.input_shape
            self.shape = DataShape(channels=c, height=h, width=w, num_classes=k)
            gen = torch.Generator().manual_seed(config.seed)
            self.inputs = torch.randn(config.batch_size, c, h, w, generator=gen)
            self.targets = torch.randint(0, k, (config.batch_size,), generator=gen)
        else:
            if getattr(run, "data", None) is None:
                raise ConfigError("the proxy evaluator needs data or evaluator_params.input_shape")
            self.shape = run.data.shape
            x, y = next(iter(run.eval_batches("train", limit=1)))
            self.inputs, self.targets = x[: config.batch_size].cpu(), y[: config.batch_size].cpu()
        if config.cache:
            data = None if config.input_shape else [getattr(run.config, "seed", None), str(run.config.dataset)]
            self.memo_key = json.dumps([space.name, space.config.model_dump(mode="json"),
                                        config.model_dump(mode="json", exclude={"cache"}), data], sort_keys=True)
            path = Path(config.cache).expanduser()
            if path.exists():
                try:
                    self.memo = json.loads(path.read_text()).get(self.memo_key, {})
                except (OSError, ValueError, AttributeError):
                    raise ConfigError(f"evaluator_params.cache: {path} is not a score cache; delete it") from None

    def score(self, genotypes: list[Genotype]) -> list[float]:
        if not self.config.cache:
            return self._score(genotypes)
        keys = [g.key() for g in genotypes]
        todo = [(k, g) for k, g in zip(keys, genotypes) if k not in self.memo]
        if todo:
            self.memo.update(zip([k for k, _ in todo], self._score([g for _, g in todo])))
            path = Path(self.config.cache).expanduser()
            try:
                blob = json.loads(path.read_text()) if path.exists() else {}
            except (OSError, ValueError):
                blob = {}
            blob[self.memo_key] = {**blob.get(self.memo_key, {}), **self.memo}
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(blob))
            tmp.replace(path)
        return [self.memo[k] for k in keys]

    def _score(self, genotypes: list[Genotype]) -> list[float]:
        out = []
        for g in genotypes:
            torch.manual_seed(self.config.seed)
            net = self.space.build_network(g, self.shape, **self.config.network)
            net.train()
            value = float(self.fn(net, self.inputs, self.targets))
            if not math.isfinite(value):
                value = -math.inf
            elif self.config.log:
                value = math.copysign(math.log1p(abs(value)), value)
            out.append(value)
        return out


# --------------------------------------------------------------------------- weight sharing


class SupernetEvaluator(Evaluator):
    """f(a) = validation accuracy of a with weights inherited from a single-path supernet trained by
    uniform sampling of the current space (SPOS-style; ABS and GreedyNAS, the baselines, do the same)."""

    description = "weight-sharing accuracy from a single-path supernet"

    class Config(StrictModel):
        steps: int = Field(default=100, ge=0, description="initial training steps on the whole space")
        steps_per_iteration: int = Field(default=0, ge=0, description="fine-tuning steps on each shrunk space")
        lr: float = Field(default=0.05, gt=0)
        momentum: float = Field(default=0.9, ge=0, lt=1)
        weight_decay: float = Field(default=3e-4, ge=0)
        batch_size: int = Field(default=32, ge=1)
        eval_batches: int = Field(default=2, ge=1, description="validation batches per scored architecture")
        seed: int = Field(default=0, ge=0)

    def __init__(self, config: Any, space: SearchSpace, run: Any):
        super().__init__(config, space, run)
        if getattr(run, "data", None) is None:
            raise ConfigError("the supernet evaluator needs a dataset (it trains shared weights)")
        weighting = run.registry.create("edge_weighting", "softmax", run.ctx)
        torch.manual_seed(config.seed)
        self.supernet = space.build_supernet(run.data.shape, weighting).to(run.device)
        for name, table in space.op_table().items():
            self.supernet.set_mask(name, self.supernet.mask(name).cpu() & table)
        self.opt = torch.optim.SGD(self.supernet.weight_parameters(), lr=config.lr, momentum=config.momentum,
                                   weight_decay=config.weight_decay)
        self.stream = run.data.stream("lissnas-supernet", "train", config.batch_size)
        self.rng = random.Random(config.seed)
        self.trained = False
        self.static = config.steps_per_iteration == 0  # fine-tuned weights change every score

    def _onehot(self, g: Genotype) -> dict[str, torch.Tensor]:
        return {k: v.to(self.run.device) for k, v in self.space.encode(g).items()}

    def _train(self, sampler: Callable[[random.Random], Genotype], steps: int) -> None:
        self.supernet.train()
        for _ in range(steps):
            x, y = self.run.to_device(self.stream.next())
            with self.supernet.override_weights(self._onehot(sampler(self.rng))):
                loss = F.cross_entropy(self.supernet(x), y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.supernet.weight_parameters(), 5.0)
            self.opt.step()

    def on_space(self, sampler: Callable[[random.Random], Genotype]) -> None:
        if not self.trained:
            self._train(sampler, self.config.steps)
            self.trained = True
        elif self.config.steps_per_iteration:
            self._train(sampler, self.config.steps_per_iteration)

    def score(self, genotypes: list[Genotype]) -> list[float]:
        if not self.trained:
            self.on_space(self.space.sample)
        out = []
        for g in genotypes:
            with self.supernet.override_weights(self._onehot(g)):
                res = self.run.evaluate(self.run.eval_batches("val", self.config.eval_batches), model=self.supernet)
            out.append(100.0 * res["acc"])
        return out


EVALUATORS: dict[str, type[Evaluator]] = {
    "proxy": ProxyEvaluator,
    "supernet": SupernetEvaluator,
    "oracle": OracleEvaluator,
}
#: names that were evaluators once, with what to use instead
RENAMED = {"benchmark": "'benchmark' is now called 'oracle' (it reads the true accuracy of every architecture "
                        "it scores: an upper bound, not a shrinkage method); the default is 'proxy'"}


def validate_evaluator(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Check an evaluator name and its params (pydantic), returning the params with defaults filled."""
    if name in RENAMED:
        raise ValueError(f"evaluator {RENAMED[name]}")
    if name not in EVALUATORS:
        raise ValueError(f"unknown evaluator '{name}'; choose one of {', '.join(EVALUATORS)}")
    from pydantic import ValidationError

    try:
        return EVALUATORS[name].Config(**params).model_dump(mode="json")
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        fields = ", ".join(EVALUATORS[name].Config.model_fields)
        raise ValueError(f"evaluator '{name}' option '{loc}': {err['msg']} (options: {fields})") from None


class CachedScorer:
    """Wraps an evaluator: each architecture is scored once per iteration (once overall for static
    evaluators); counts evaluations, the method's cost."""

    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator
        self.cache: dict[Genotype, float] = {}
        self.evaluations = 0

    @property
    def reads_truth(self) -> bool:
        return self.evaluator.reads_truth

    def known(self, genotype: Genotype) -> float | None:
        """The cached score, if this architecture was scored (this iteration, for a non-static evaluator)."""
        return self.cache.get(genotype)

    def new_iteration(self, sampler: Callable[[random.Random], Genotype]) -> None:
        """Tell the evaluator the current space; forget scores that may have changed."""
        self.evaluator.on_space(sampler)
        if not self.evaluator.static:
            self.cache.clear()

    def __call__(self, genotypes: list[Genotype]) -> list[float]:
        todo = list(dict.fromkeys(g for g in genotypes if g not in self.cache))
        if todo:
            self.cache.update(zip(todo, self.evaluator.score(todo)))
            self.evaluations += len(todo)
        return [self.cache[g] for g in genotypes]


def make_evaluator(name: str, params: dict[str, Any], space: SearchSpace, run: Any) -> CachedScorer:
    cls = EVALUATORS[name]
    return CachedScorer(cls(cls.Config(**params), space, run))
