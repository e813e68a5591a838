"""Scoring a supernet in place and putting it back exactly.

A saliency needs the supernet in a state the caller must never see: SynFlow makes every tensor absolute,
the forward pass of a train-mode BN moves its running statistics, a repeat re-initialises the weights,
a precision check converts everything to float64. Copying the module tree for that (``copy.deepcopy``,
zero-cost-nas' way) was most of SynFlow's time on the DARTS space; swapping in a clone of every tensor is
cheaper but still allocates a second supernet. :func:`in_place` does neither unless it must:

* at the supernet's own precision the parameters are used as they are; :meth:`Scratch.absolute` records
  the sign bit of every tensor it changes (one byte per element) and restores it on exit, which is exact:
  ``|x|`` with its sign bit set again is ``x`` bit for bit, ``-0.0`` included;
* only the buffers (a few thousand BN statistics) are swapped for clones, because a train-mode forward
  writes into them;
* a new precision or a re-initialisation needs new tensors anyway: those get converted or cloned, and
  the originals are put back untouched.

``requires_grad``, ``.grad``, the train/eval flag of every module and BN forwards replaced by the
identity are restored too. The module tree is walked once, and flags are set without
``nn.Module.__setattr__`` (whose bookkeeping made ``train()`` cost 70 ms on the DARTS supernet).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from nasfw.supernet import Supernet

#: how SynFlow treats BatchNorm: see :meth:`Scratch.set_bn`
BnMode = Literal["eval", "identity", "batch"]

_BN = nn.modules.batchnorm._BatchNorm


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _initial_statistics(bn: nn.modules.batchnorm._BatchNorm) -> Callable[[torch.Tensor], torch.Tensor]:
    """Eval-mode forward of a BN that keeps no running statistics: it normalises with the ones it would
    start from (mean 0, variance 1), as a fresh tracking BN does in eval mode."""
    def forward(x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        return F.batch_norm(x, x.new_zeros(c), x.new_ones(c), bn.weight, bn.bias, False, 0.0, bn.eps)
    return forward


@dataclass
class Scratch:
    """The supernet while it is being scored: what was changed, so that :func:`in_place` can undo it."""

    net: Supernet
    modules: list[nn.Module]
    params: list[nn.Parameter]
    #: parameters whose ``.data`` is a private tensor (converted or cloned): changed freely, dropped on exit
    private: set[int] = field(default_factory=set)
    #: (tensor, sign-bit mask) of tensors :meth:`absolute` changed in place
    signs: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    buffers: list[torch.Tensor] = field(default_factory=list)
    bypassed: list[nn.Module] = field(default_factory=list)

    def own(self, p: nn.Parameter) -> torch.Tensor:
        """Give ``p`` a private copy of its data before changing it in a way signs cannot undo; returns it."""
        if id(p) not in self.private:
            p.data = p.data.clone()
            self.private.add(id(p))
        return p.data

    def absolute(self, alphas: bool = True) -> None:
        """SynFlow's linearisation: every floating parameter and buffer becomes ``|·|`` (α only with ``alphas``)."""
        arch = {id(a) for a in self.net.alphas.values()}
        with torch.no_grad():
            for p in self.params:
                if not p.is_floating_point() or (id(p) in arch and not alphas):
                    continue
                if id(p) not in self.private:
                    self.signs.append((p.data, torch.signbit(p.data)))
                p.data.abs_()
            for b in self.buffers:  # private clones
                if b.is_floating_point():
                    b.abs_()

    def set_bn(self, mode: BnMode) -> None:
        """How every BatchNorm computes while scoring.

        ``batch``: train mode, normalising with the statistics of the batch (the FreeDARTS notebooks);
        ``eval``: eval mode, normalising with the running statistics, which at initialisation (mean 0,
        variance 1) is the identity up to 1/√(1+ε) — SynFlow's own pruning setting; a BN that keeps no
        running statistics (``track_running_stats=False``, NB201's search cells) uses those initial ones
        rather than PyTorch's eval-mode fallback to batch statistics; ``identity``: the layer passes its
        input through (zero-cost-nas' SynFlow removes BN). Other modules stay in train mode.
        """
        for m in self.modules:
            if isinstance(m, _BN):
                object.__setattr__(m, "training", mode == "batch")
                if mode == "identity":
                    object.__setattr__(m, "forward", _identity)
                    self.bypassed.append(m)
                elif mode == "eval" and m.running_mean is None:
                    object.__setattr__(m, "forward", _initial_statistics(m))
                    self.bypassed.append(m)


def _walk(supernet: nn.Module) -> tuple[list[nn.Module], list[nn.Parameter], list[tuple[nn.Module, str, torch.Tensor]]]:
    modules = list(supernet.modules())
    seen: set[int] = set()
    params: list[nn.Parameter] = []
    slots: list[tuple[nn.Module, str, torch.Tensor]] = []
    for m in modules:
        for p in m._parameters.values():
            if p is not None and id(p) not in seen:
                seen.add(id(p))
                params.append(p)
        slots.extend((m, name, b) for name, b in m._buffers.items() if b is not None)
    return modules, params, slots


@contextlib.contextmanager
def in_place(supernet: Supernet, dtype: torch.dtype | None = None, reinit: bool = False) -> Iterator[Scratch]:
    """The supernet itself, in train mode with weights frozen, ready to be scored; exactly restored on exit.

    ``dtype`` converts floating parameters and buffers (the originals are kept aside); ``reinit``
    re-initialises the weights (``reset_parameters`` of every sub-module) on private copies.
    """
    modules, params, slots = _walk(supernet)
    saved = [(p, p.data, p.requires_grad, p.grad) for p in params]
    flags = [m.training for m in modules]
    scratch = Scratch(supernet, modules, params)
    copies: dict[int, torch.Tensor] = {}  # a buffer shared by two modules stays shared
    try:
        for p, data, _, _ in saved:
            if data.is_floating_point() and dtype is not None and data.dtype != dtype:
                p.data = data.to(dtype)
                scratch.private.add(id(p))
            elif reinit:
                p.data = data.clone()
                scratch.private.add(id(p))
            p.requires_grad_(False)
            p.grad = None
        for m, name, b in slots:
            if id(b) not in copies:
                new = b.to(dtype) if dtype is not None and b.is_floating_point() else b
                copies[id(b)] = new.clone() if new is b else new
                scratch.buffers.append(copies[id(b)])
            m._buffers[name] = copies[id(b)]
        if reinit:
            for m in modules:
                if m is not supernet and hasattr(m, "reset_parameters"):
                    m.reset_parameters()
        for m in modules:
            object.__setattr__(m, "training", True)
        yield scratch
    finally:
        with torch.no_grad():
            for t, negative in reversed(scratch.signs):
                t.copy_(torch.where(negative, t.neg(), t))
        for m in scratch.bypassed:
            m.__dict__.pop("forward", None)
        for p, data, flag, grad in saved:
            p.data = data
            p.requires_grad_(flag)
            p.grad = grad
        for m, name, b in slots:
            m._buffers[name] = b
        for m, flag in zip(modules, flags):
            object.__setattr__(m, "training", flag)
