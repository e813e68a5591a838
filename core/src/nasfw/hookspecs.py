"""Hook specifications of nasfw (pluggy project name ``nasfw``).

Every ``nasfw_register_*`` hook receives a ``register`` callable, so one plugin can add several
components of a kind (the simonw/llm style)::

    from nasfw import hookimpl

    @hookimpl
    def nasfw_register_optimizers(register):
        register("my-opt", MyOptimizer, description="what it does")

``register(name, obj, *, aliases=(), description="")``. For classes (spaces, optimizers, selectors,
shrinkers, datasets, edge weightings, LR schedules, benchmarks) ``obj`` is a subclass of the base in
:mod:`nasfw.components` with a pydantic ``Config`` model; it is built as ``obj(config, ctx)``.
For operations ``obj`` is a factory ``(C_in, C_out, stride, affine) -> nn.Module``; for proxies a
function ``(net, inputs, targets) -> float``. A :class:`nasfw.components.Preset` registers a named
set of defaults on top of another component (``sharpdarts`` = ``darts`` with Max-W and CPA).
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "nasfw"
#: Bumped when a hook's signature changes incompatibly. A plugin module may declare
#: ``NASFW_API_VERSION``; a different value is refused with a clear message.
API_VERSION = 1

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def nasfw_register_search_spaces(register: Any) -> None:
    """Register :class:`~nasfw.components.SearchSpace` classes (``darts``, ``nb201``, ...)."""


@hookspec
def nasfw_register_optimizers(register: Any) -> None:
    """Register :class:`~nasfw.components.Optimizer` classes: gradient, zero-order or no training."""


@hookspec
def nasfw_register_selectors(register: Any) -> None:
    """Register :class:`~nasfw.components.Selector` classes that turn a supernet into a genotype."""


@hookspec
def nasfw_register_shrinkers(register: Any) -> None:
    """Register :class:`~nasfw.components.Shrinker` classes that shrink a space before a search."""


@hookspec
def nasfw_register_datasets(register: Any) -> None:
    """Register :class:`~nasfw.components.Dataset` classes (train / arch-val / test splits)."""


@hookspec
def nasfw_register_operations(register: Any) -> None:
    """Register candidate operations ``(C_in, C_out, stride, affine) -> nn.Module`` any cell space may use."""


@hookspec
def nasfw_register_edge_weightings(register: Any) -> None:
    """Register :class:`~nasfw.components.EdgeWeighting` classes (softmax, Max-W, raw alpha)."""


@hookspec
def nasfw_register_lr_schedules(register: Any) -> None:
    """Register :class:`~nasfw.components.LRSchedule` classes usable by optimizers and final training."""


@hookspec
def nasfw_register_benchmarks(register: Any) -> None:
    """Register :class:`~nasfw.components.Benchmark` classes: tabular ground truth for a space."""


@hookspec
def nasfw_register_proxies(register: Any) -> None:
    """Register architecture-level scores ``(net, inputs, targets) -> float`` (zero-cost proxies)."""


@hookspec
def nasfw_register_genotypes(register: Any) -> None:
    """Register published genotypes (the zoo) as :class:`~nasfw.genotype.ZooEntry`:
    ``register("darts-v2", ZooEntry(genotype=..., source="Liu et al. 2019, genotypes.py"))``."""


@hookspec
def nasfw_register_protocols(register: Any) -> None:
    """Register final-training protocols (pydantic models of hyperparameters) used by ``nasfw eval``."""


@hookspec
def nasfw_register_commands(cli: Any) -> None:
    """Add click sub-commands to the ``nasfw`` group."""


@hookspec
def nasfw_run_started(run: Any) -> None:
    """Called once when a run starts (after setup, before the first step)."""


@hookspec
def nasfw_epoch_end(run: Any, epoch: int, metrics: dict) -> None:
    """Called after every search epoch with that epoch's metrics."""


@hookspec
def nasfw_run_finished(run: Any, summary: dict) -> None:
    """Called once when a run finished, with the summary that was written."""
