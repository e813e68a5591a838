"""Architecture-level zero-cost proxies with the zero-cost-nas definitions (Abdelfattah et al., ICLR 2021).

Each proxy is ``(net, inputs, targets) -> float`` and works on a deep copy of ``net`` in train mode (BN
uses batch statistics), so the caller's network is untouched. Per-weight measures are taken over the
weights of Conv2d and Linear layers only and summed over the network, as ``find_measures`` does.
``synflow`` removes BN (zero-cost-nas' ``bn=False``); ``jacob_cov`` returns NaN when the Jacobian
correlation is undefined, as the reference does (callers drop it from rank statistics).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Proxy = Callable[[nn.Module, torch.Tensor, torch.Tensor], float]


def _out(y: object) -> torch.Tensor:
    return y[0] if isinstance(y, (tuple, list)) else y  # type: ignore[return-value]


def _layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _copy(net: nn.Module, bn: bool = True) -> nn.Module:
    """A train-mode copy; without ``bn`` every BatchNorm becomes the identity."""
    net = copy.deepcopy(net)
    if not bn:
        for parent in list(net.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.modules.batchnorm._BatchNorm):
                    setattr(parent, name, nn.Identity())
    net.train()
    net.zero_grad(set_to_none=True)
    return net


def _weight_grads(net: nn.Module, loss: torch.Tensor, create_graph: bool = False) -> list[torch.Tensor]:
    ws = [m.weight for m in _layers(net)]
    gs = torch.autograd.grad(loss, ws, create_graph=create_graph, allow_unused=True)
    return [torch.zeros_like(w) if g is None else g for w, g in zip(ws, gs)]


def snip(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Σ |θ ⊙ ∂L/∂θ| (connection sensitivity, Lee et al. 2019)."""
    net = _copy(net)
    loss = F.cross_entropy(_out(net(inputs)), targets)
    grads = _weight_grads(net, loss)
    return float(sum((m.weight.detach() * g).abs().sum() for m, g in zip(_layers(net), grads)))


def grad_norm(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Σ over layers of ‖∂L/∂θ‖₂ (not squared)."""
    net = _copy(net)
    loss = F.cross_entropy(_out(net(inputs)), targets)
    return float(sum(g.norm() for g in _weight_grads(net, loss)))


def grasp(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Σ −θ ⊙ (H g) (Wang et al. 2020, sign as zero-cost-nas uses it: higher is better)."""
    net = _copy(net)
    loss = F.cross_entropy(_out(net(inputs)), targets)
    g = _weight_grads(net, loss, create_graph=True)
    z = sum((gi * gi.detach()).sum() for gi in g)
    ws = [m.weight for m in _layers(net)]
    hg = torch.autograd.grad(z, ws, allow_unused=True)
    return float(sum((-w.detach() * h).sum() for w, h in zip(ws, hg) if h is not None))


def synflow(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Σ |θ ⊙ ∂R/∂θ|, R = Σ output of an all-ones float64 input, all state absolute, BN removed (Tanaka et al.)."""
    net = _copy(net, bn=False).double()
    with torch.no_grad():
        for t in net.state_dict(keep_vars=True).values():
            if t.is_floating_point():
                t.abs_()
    x = torch.ones(1, *inputs.shape[1:], dtype=torch.float64, device=inputs.device)
    r = _out(net(x)).sum()
    grads = _weight_grads(net, r)
    return float(sum((m.weight.detach() * g).abs().sum() for m, g in zip(_layers(net), grads)))


def fisher(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Channel Fisher (Turner et al. 2020): per output channel k of each conv/linear layer with output z,
    ``½·mean_n(Σ_spatial z·∂L/∂z)²``, broadcast to every weight of the channel and summed."""
    net = _copy(net)
    acc: dict[nn.Module, torch.Tensor] = {}
    handles = []

    def hook(mod: nn.Module, _inp: object, out: torch.Tensor) -> None:
        act = out.detach()

        def on_grad(grad: torch.Tensor) -> None:
            g_nk = (act * grad).sum(dim=tuple(range(2, act.dim()))) if act.dim() > 2 else act * grad
            del_k = g_nk.pow(2).mean(0).mul(0.5)
            acc[mod] = acc[mod] + del_k if mod in acc else del_k

        if out.requires_grad:
            out.register_hook(on_grad)

    for m in _layers(net):
        handles.append(m.register_forward_hook(hook))
    try:
        loss = F.cross_entropy(_out(net(inputs)), targets)
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    total = 0.0
    for m in _layers(net):
        if m in acc:
            total += float(acc[m].abs().sum()) * math.prod(m.weight.shape[1:])
    return total


def jacob_cov(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Mellor et al.'s Jacobian-covariance score: J = ∂(Σ_c y_c)/∂x per sample, λ = eig(corrcoef(J)),
    ``−Σ [log(λ + k) + 1/(λ + k)]``, k = 1e-5. NaN when the correlation is undefined (as zero-cost-nas)."""
    net = _copy(net)
    x = inputs.detach().clone().requires_grad_(True)
    y = _out(net(x))
    (jac,) = torch.autograd.grad(y, x, torch.ones_like(y))
    j = jac.reshape(jac.shape[0], -1).detach().double().cpu().numpy()
    with np.errstate(all="ignore"):
        corrs = np.corrcoef(j)
    if not np.isfinite(corrs).all():
        return float("nan")
    v = np.linalg.eigvalsh(corrs)
    k = 1e-5
    with np.errstate(all="ignore"):
        return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


def nwot(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """NASWOT (Mellor et al. 2021): log|det K|, K = Σ over ReLUs of c·cᵀ + (1−c)(1−c)ᵀ for the binary
    activation codes c of the batch (NASLib's ``nwot``)."""
    net = _copy(net)
    n = inputs.shape[0]
    kmat = torch.zeros(n, n, dtype=torch.float64)
    handles = []

    def hook(_mod: nn.Module, inp: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        nonlocal kmat
        c = (inp[0].detach().reshape(n, -1) > 0).double()  # same code pre- or post-ReLU (inplace ReLUs)
        kmat = kmat + (c @ c.t() + (1 - c) @ (1 - c).t()).cpu()

    for m in net.modules():
        if isinstance(m, nn.ReLU):
            handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            net(inputs)
    finally:
        for h in handles:
            h.remove()
    return float(torch.linalg.slogdet(kmat)[1])


def params(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Number of trainable parameters: the baseline every zero-cost proxy should beat."""
    return float(sum(p.numel() for p in net.parameters() if p.requires_grad))


#: name -> proxy; registered through ``nasfw_register_proxies``
PROXIES: dict[str, Proxy] = {
    "snip": snip,
    "grasp": grasp,
    "synflow": synflow,
    "fisher": fisher,
    "grad_norm": grad_norm,
    "jacob_cov": jacob_cov,
    "nwot": nwot,
    "params": params,
}


def score_network(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                  names: list[str] | None = None, proxies: dict[str, Proxy] | None = None) -> dict[str, float]:
    """Several proxies of one network (each on its own copy, so their order does not matter)."""
    table = proxies if proxies is not None else PROXIES
    return {name: table[name](net, inputs, targets) for name in (names or list(table))}
