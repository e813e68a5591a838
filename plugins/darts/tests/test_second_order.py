"""DARTS' second-order architecture gradient against the exact derivative of the unrolled objective.

f(α) = L_val(w'(α), α) with w'(α) = w − ξ(∇_w L_tr(w, α) + μ·m + λ·w). Its exact gradient comes from double
back-propagation in float64, and a central finite difference of f itself checks that; the optimizer's
finite-difference Hessian-vector product (ε = 0.01/‖v‖) must agree with both. ReLU and max-pooling make the
loss piecewise smooth, and a finite difference of a gradient across their kinks is wrong by O(1) however small
ε is, so the check runs on the same supernet with ReLU swapped for tanh and without max pooling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call

from nasfw.builtin.weightings import Softmax
from nasfw.data import DataShape
from nasfw.registry import get_registry
from nasfw_darts.optimizer import DartsOptimizer


def _smooth(module: torch.nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, torch.nn.ReLU):
            setattr(module, name, torch.nn.Tanh())
        else:
            _smooth(child)


def _setup():
    torch.manual_seed(0)
    reg = get_registry()
    prims = ["none", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "dil_conv_3x3"]
    space = reg.create("search_space", {"name": "darts", "params": {
        "layers": 3, "init_channels": 2, "steps": 2, "primitives": prims}})
    net = space.build_supernet(DataShape(1, 6, 6, 3), Softmax()).double()
    _smooth(net)
    with torch.no_grad():
        for a in net.arch_parameters().values():
            a.normal_(0, 0.5)
    opt = DartsOptimizer(DartsOptimizer.Config(unrolled=True, w_lr=0.1, w_weight_decay=3e-3))
    opt.setup(net, None, epochs=1, steps_per_epoch=1)
    gen = torch.Generator().manual_seed(1)
    tr = (torch.randn(6, 1, 6, 6, generator=gen, dtype=torch.float64), torch.randint(0, 3, (6,), generator=gen))
    val = (torch.randn(6, 1, 6, 6, generator=gen, dtype=torch.float64), torch.randint(0, 3, (6,), generator=gen))
    opt.weight_step(tr)  # leaves a momentum buffer, so the μ·m term is exercised
    return net, opt, tr, val


def _unrolled_objective(net, opt, tr, val, alphas: list[torch.Tensor], create_graph: bool) -> torch.Tensor:
    c = opt.config
    names = [n for n, _ in net.named_weight_parameters()]
    arch = {f"alphas.{k}": a for k, a in zip(net.arch_parameters(), alphas)}
    buffers = {n: b.clone() for n, b in net.named_buffers()}
    params = dict(zip(names, opt.weights)) | arch
    loss_tr = F.cross_entropy(functional_call(net, (params, buffers), (tr[0],)), tr[1])
    g_w = torch.autograd.grad(loss_tr, opt.weights, create_graph=create_graph)
    w_prime = []
    for p, g in zip(opt.weights, g_w):
        m = opt.w_opt.state[p]["momentum_buffer"]
        w_prime.append(p - opt.lr * (c.w_momentum * m + g + c.w_weight_decay * p))
    params = dict(zip(names, w_prime)) | arch
    return F.cross_entropy(functional_call(net, (params, buffers), (val[0],)), val[1])


def test_second_order_gradient_matches_exact_and_finite_difference():
    net, opt, tr, val = _setup()
    got, _ = opt.unrolled_alpha_grad(tr, val)
    alphas = [a.detach().clone().requires_grad_(True) for a in opt.alphas]
    exact = torch.autograd.grad(_unrolled_objective(net, opt, tr, val, alphas, True), alphas)
    scale = max(e.abs().max().item() for e in exact)
    for g, e in zip(got, exact):  # ε = 0.01/‖v‖: the finite difference is accurate to O(ε²)
        assert (g - e).abs().max().item() < 5e-3 * scale
    opt.config.fd_r = 1e-4  # and it converges to the exact value as ε shrinks (error ∝ ε²)
    fine, _ = opt.unrolled_alpha_grad(tr, val)
    for g, e in zip(fine, exact):
        assert (g - e).abs().max().item() < 1e-6 * scale  # 6e-9 measured
    # central finite difference of f along a random direction
    gen = torch.Generator().manual_seed(2)
    d = [torch.randn(a.shape, generator=gen, dtype=torch.float64) for a in alphas]
    h = 1e-5
    with torch.enable_grad():
        f_plus = _unrolled_objective(net, opt, tr, val, [a + h * di for a, di in zip(alphas, d)], False)
        f_minus = _unrolled_objective(net, opt, tr, val, [a - h * di for a, di in zip(alphas, d)], False)
    fd = (f_plus - f_minus) / (2 * h)
    directional = sum((g * di).sum() for g, di in zip(exact, d))
    assert torch.allclose(directional, fd.detach(), rtol=1e-6, atol=1e-10)
    # and the second-order term matters: it differs from the first-order gradient
    first, _ = opt.first_order_alpha_grad(val)
    assert max((g - f).abs().max().item() for g, f in zip(got, first)) > 1e-6


def test_virtual_step_leaves_weights_and_buffers_untouched():
    net, opt, tr, val = _setup()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt.unrolled_alpha_grad(tr, val)
    after = net.state_dict()
    changed = [k for k in before if "running" not in k and "num_batches" not in k
               and not torch.equal(before[k], after[k])]
    assert changed == []


def _bn_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: b.clone() for n, b in net.named_buffers() if "running" in n or "num_batches" in n}


def test_finite_difference_passes_move_bn_statistics_like_the_reference():
    """The reference architect.py runs the virtual step's forward and both finite-difference passes on the real
    model (running statistics move 3 times in the α step, 4 with the weight step) and L_val(w') on a copy."""
    import copy

    net, opt, tr, val = _setup()
    ref = copy.deepcopy(net)
    before = _bn_state(net)
    _, _ = opt.unrolled_alpha_grad(tr, val)
    got = _bn_state(net)
    # the reference's sequence on a copy: forward at w (the virtual step), then at w + εv and w − εv
    F.cross_entropy(ref(tr[0]), tr[1])
    names = [n for n, _ in ref.named_weight_parameters()]
    c = opt.config
    w_prime = {}
    params = dict(ref.named_weight_parameters())
    loss_tr = F.cross_entropy(functional_call(ref, ({**params}, {n: b.clone() for n, b in ref.named_buffers()}),
                                              (tr[0],)), tr[1])
    g_w = torch.autograd.grad(loss_tr, list(params.values()))
    for (n, p), g in zip(params.items(), g_w):
        m = opt.w_opt.state[dict(net.named_parameters())[n]]["momentum_buffer"]
        w_prime[n] = (p - opt.lr * (c.w_momentum * m + g + c.w_weight_decay * p)).detach().requires_grad_(True)
    lv = F.cross_entropy(functional_call(ref, (w_prime, {n: b.clone() for n, b in ref.named_buffers()}),
                                         (val[0],)), val[1])
    v = torch.autograd.grad(lv, [w_prime[n] for n in names])
    eps = c.fd_r / torch.sqrt(sum((g ** 2).sum() for g in v))
    with torch.no_grad():
        for sign in (+1, -1):
            for (_, p), vi in zip(ref.named_weight_parameters(), v):
                p.add_(sign * eps * vi)
            ref(tr[0])
            for (_, p), vi in zip(ref.named_weight_parameters(), v):
                p.sub_(sign * eps * vi)
    want = _bn_state(ref)
    assert any(not torch.equal(before[k], got[k]) for k in got if "running_mean" in k)
    for k in got:
        assert torch.allclose(got[k], want[k], rtol=1e-10, atol=1e-12), k
    assert all(int(got[k] - before[k]) == 3 for k in got if "num_batches" in k)
    # fd_updates_bn=false: only the virtual step's forward moves them
    net2, opt2, tr2, val2 = _setup()
    opt2.config = opt2.config.model_copy(update={"fd_updates_bn": False})
    b2 = _bn_state(net2)
    opt2.unrolled_alpha_grad(tr2, val2)
    assert all(int(_bn_state(net2)[k] - b2[k]) == 1 for k in b2 if "num_batches" in k)
