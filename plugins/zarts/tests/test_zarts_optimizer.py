"""ZARTS optimizers on real (tiny) supernets: the scratch oracle, the schedule, resume, contracts."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from nasfw.testing import check_optimizer, stage, train_steps
from nasfw_zarts import estimators as est

FAST = {"warmup_epochs": 0, "inner_steps": 2, "update_every": 1, "num_samples": 2, "inner_batch_size": 8}
TINY_DARTS = {"name": "darts-7op", "params": {"layers": 2, "init_channels": 4}}


def _snapshot(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("name,extra", [("zarts-mgs", {}), ("zarts-rs", {}), ("zarts-gld", {"num_radii": 3})])
def test_zarts_contract(name: str, extra: dict) -> None:
    """The kit: finite metrics, steps change the supernet, bit-exact checkpoint round trip, whole run."""
    check_optimizer(name, {**FAST, **extra}, steps=2)


def test_inner_loop_trains_the_scratch_copy_not_the_main_supernet() -> None:
    """Regression test for the released search script, whose inner steps never trained the copy."""
    with stage(space=TINY_DARTS, optimizer={"name": "zarts-gld", "params": FAST}) as run:
        opt, net = run.optimizer, run.supernet
        before = _snapshot(net)
        inner = opt.inner_batches()
        val = run.to_device(run.data.val.next())
        opt.perturbed_loss(opt.current_alpha(), inner, val)
        after = _snapshot(net)
        assert all(torch.equal(before[k], after[k]) for k in before), "the main supernet changed"
        changed = [n for n, p in zip(opt.w_names, opt.weights) if not torch.equal(opt.scratch[n], p)]
        assert len(changed) > len(opt.w_names) // 2, "the scratch weights did not train"
        # the legacy (released) behaviour: the copy stays at the main weights, the main is untouched too
        opt.config.legacy_shared_optimizer = True
        opt.perturbed_loss(opt.current_alpha(), inner, val)
        assert all(torch.equal(opt.scratch[n], p) for n, p in zip(opt.w_names, opt.weights))
        assert all(torch.equal(before[k], v) for k, v in _snapshot(net).items())


def test_oracle_equals_a_deep_copied_supernet_trained_with_fresh_sgd() -> None:
    """The preallocated functional_call oracle computes exactly what the straightforward version does."""
    params = {**FAST, "inner_steps": 3, "inner_momentum": 0.9, "inner_lr": 0.05}
    with stage(space=TINY_DARTS, optimizer={"name": "zarts-mgs", "params": params}) as run:
        opt, net = run.optimizer, run.supernet
        train_steps(run, 1)
        inner = opt.inner_batches()
        val = run.to_device(run.data.val.next())
        gen = torch.Generator().manual_seed(0)
        alpha = {k: v + 0.1 * torch.randn(v.shape, generator=gen, dtype=v.dtype)
                 for k, v in opt.current_alpha().items()}
        got = opt.perturbed_loss(alpha, inner, val)
        assert got == opt.perturbed_loss(alpha, inner, val)  # scratch reset: same α, same batches, same loss

        ref = copy.deepcopy(net, memo={id(net.weighting): net.weighting})  # the weighting holds the registry
        with torch.no_grad():
            for k, a in ref.arch_parameters().items():
                a.copy_(alpha[k].to(a.dtype))
        ref.train()
        weights = ref.weight_parameters()
        sgd = torch.optim.SGD(weights, lr=0.05, momentum=0.9, weight_decay=3e-4)
        for x, y in inner:
            sgd.zero_grad()
            F.cross_entropy(ref(x), y).backward(inputs=weights)
            sgd.step()
        with torch.no_grad():
            want = float(F.cross_entropy(ref(val[0]), val[1]))
        assert abs(got - want) < 1e-5 * max(1.0, abs(want))


def test_alpha_updates_follow_warmup_and_period() -> None:
    params = {**FAST, "warmup_epochs": 1, "update_every": 2, "num_radii": 2}
    with stage(space=TINY_DARTS, optimizer={"name": "zarts-gld", "params": params}, epochs=2, steps=3) as run:
        opt, net = run.optimizer, run.supernet
        calls = []
        real = opt.alpha_update
        opt.alpha_update = lambda val: calls.append((opt.epoch, opt.search_step % 3)) or real(val)
        for epoch in (0, 1):
            opt.epoch_start(epoch)
            train_steps(run, 3)
        assert calls == [(1, 0), (1, 2)]
        assert opt.epoch_end(1)["alpha_updates"] == 2.0
        # tuning with α frozen: weights train, α does not
        opt.configure_tuning(0.0025, update_alpha=False)
        opt.epoch_start(2)
        alpha = {k: v.detach().clone() for k, v in net.arch_parameters().items()}
        w0 = opt.weights[0].detach().clone()
        train_steps(run, 2)
        assert all(torch.equal(alpha[k], v) for k, v in net.arch_parameters().items())
        assert not torch.equal(w0, opt.weights[0]) and opt.lr == 0.0025


def test_mgs_sigma_defaults_per_space() -> None:
    with stage(space={"name": "s2", "params": {"layers": 2, "init_channels": 4}},
               optimizer={"name": "zarts-mgs", "params": FAST}) as run:
        assert run.optimizer.sigma0() == 0.2
    with stage(space=TINY_DARTS, optimizer={"name": "zarts-mgs", "params": FAST}) as run:
        assert run.optimizer.sigma0() == 0.025
        run.optimizer.epochs, run.optimizer.epoch = 50, 49
        run.optimizer.config.warmup_epochs = 10
        assert run.optimizer.sigma() == est.sigma_at(49, 0.025, 10, 50)


def test_resume_mid_search_reproduces_alpha(tmp_path) -> None:
    """Checkpoint after 2 steps, continue 3 more; a restored run makes the same 3 steps: same α."""
    from nasfw.checkpoint import load_checkpoint
    from nasfw.engine import _restore

    ref = {"name": "zarts-rs", "params": {**FAST, "num_samples": 1}}
    with stage(space=TINY_DARTS, optimizer=ref, steps=6, out_dir=tmp_path) as run_a:
        run_a.optimizer.epoch_start(0)
        train_steps(run_a, 2)
        run_a.checkpoint()
        train_steps(run_a, 3)
        alpha_a = {k: v.detach().clone() for k, v in run_a.supernet.arch_parameters().items()}
        state = load_checkpoint(tmp_path / "checkpoint.pt")
    with stage(space=TINY_DARTS, optimizer=ref, steps=6) as run_b:
        _restore(run_b, state)
        run_b.optimizer.epoch_start(run_b.epoch)
        train_steps(run_b, 3)
        for k, v in run_b.supernet.arch_parameters().items():
            assert torch.equal(alpha_a[k], v), k
        assert not torch.equal(alpha_a["normal"], state["supernet"]["alphas.normal"])


def test_batched_oracle_equals_the_sequential_one() -> None:
    """The vmap-batched scratch trainings compute what one-after-the-other trainings do (momentum, weight
    decay and a per-sample clip that binds), and leave the main supernet and its BN statistics untouched."""
    params = {**FAST, "inner_steps": 3, "inner_momentum": 0.9, "inner_lr": 0.05, "inner_grad_clip": 0.5}
    with stage(space=TINY_DARTS, optimizer={"name": "zarts-mgs", "params": params}) as run:
        opt, net = run.optimizer, run.supernet
        train_steps(run, 1)
        inner, val = opt.inner_batches(), run.to_device(run.data.val.next())
        gen = torch.Generator().manual_seed(1)
        alphas = [{k: v + 0.3 * torch.randn(v.shape, generator=gen, dtype=v.dtype)
                   for k, v in opt.current_alpha().items()} for _ in range(3)]
        before = _snapshot(net)
        seq = [opt.perturbed_loss(a, inner, val) for a in alphas]
        bat = opt.batched_losses(alphas, inner, val)
        assert all(torch.equal(before[k], v) for k, v in _snapshot(net).items())
        assert len(set(seq)) == 3  # the samples differ, so the comparison means something
        for s, b in zip(seq, bat):
            assert abs(s - b) < 1e-5 * max(1.0, abs(s)), (s, b)


def test_gld_compares_with_the_unadapted_loss_and_counts_radii_from_the_space() -> None:
    """Official optimize_gld: best_loss = base_loss of the unadapted supernet, so an update makes exactly one
    oracle call per radius (15 on the 7-op DARTS space)."""
    with stage(space=TINY_DARTS, optimizer={"name": "zarts-gld", "params": {**FAST, "inner_steps": 1}}) as run:
        opt = run.optimizer
        assert opt.radii_count() == 15 and run.plan["optimizer"]["radii"] == 15
        sizes = []
        real = opt.perturbed_losses
        opt.perturbed_losses = lambda alphas, inner, val: sizes.append(len(alphas)) or real(alphas, inner, val)
        opt.alpha_update(run.to_device(run.data.val.next()))
        assert sizes == [15] and run.plan["optimizer"]["oracle_calls"] == 15 * run.plan["optimizer"]["alpha_updates"]


def test_refused_before_any_work_when_alpha_cannot_move() -> None:
    from nasfw.errors import ConfigError

    with pytest.raises(ConfigError, match=r"optimizer\.warmup_epochs"), stage(
            space=TINY_DARTS, optimizer={"name": "zarts-mgs", "params": {**FAST, "warmup_epochs": 1}}):
        pass
    with pytest.raises(ConfigError, match=r"optimizer\.update_every"), stage(
            space=TINY_DARTS, optimizer={"name": "zarts-mgs", "params": {**FAST, "update_every": 5}}, steps=3):
        pass


def test_tuning_keeps_its_own_clock_and_the_search_sigma() -> None:
    """During DARTS-PT tuning σ stays at the last search epoch's value whatever the tuning epoch, and α
    updates follow the tuning steps (not search epoch E + k, where the warm-up could end mid-selection)."""
    params = {**FAST, "warmup_epochs": 0.5, "update_every": 2}
    with stage(space=TINY_DARTS, optimizer={"name": "zarts-mgs", "params": params}, epochs=2, steps=2) as run:
        opt = run.optimizer
        for e in (0, 1):
            opt.epoch_start(e)
            train_steps(run, 2)
        last = opt.sigma()
        assert last > 0
        opt.configure_tuning(0.0025, update_alpha=True)
        calls = []
        real = opt.alpha_update
        opt.alpha_update = lambda val: calls.append(opt.tune_step) or real(val)
        for k in range(3):
            opt.tune_epoch_start(k)
            assert opt.sigma() == last and opt.lr == 0.0025
            train_steps(run, 2)
        assert calls == [0, 2, 4]
        assert opt.activity()["alpha_updates_tuning"] == 3
