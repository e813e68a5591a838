"""SDARTS: the projection onto simplex ∩ ε-ball, the adversarial perturbation raising the loss inside its ball,
the ε ramp, and whole runs with magnitude and perturb selection."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from nasfw import testing as kit
from nasfw_sdarts.perturb import epsilon_at, official_clip, project, project_box_simplex

FAST = ["--set", "search.steps_per_epoch=2", "--set", "search.eval_batches=1", "--batch-size", "8", "--quiet"]
NB201_TINY = ["--space", "nb201", "--set", "space.init_channels=4", "--set", "space.cells_per_stage=1", *FAST]


def test_projection_is_the_nearest_point_of_simplex_and_ball():
    """Against a QP solver (SLSQP) on random rows; masked entries stay 0 and fully masked rows too."""
    gen = torch.Generator().manual_seed(0)
    center = torch.softmax(torch.randn(6, 5, generator=gen, dtype=torch.float64), -1)
    mask = torch.ones(6, 5, dtype=torch.bool)
    mask[1, 3:] = False
    mask[4] = False
    center = center * mask / (center * mask).sum(-1, keepdim=True).clamp_min(1e-300)
    eps = 0.15
    v = center + 0.6 * torch.randn(6, 5, generator=gen, dtype=torch.float64)
    x = project(v, center, eps, mask, "box-simplex")
    assert torch.equal(x[~mask], torch.zeros(int((~mask).sum()), dtype=x.dtype))
    for r in (0, 1, 2, 3, 5):
        m = mask[r].numpy()
        c, vr = center[r].numpy()[m], v[r].numpy()[m]
        lo, hi = np.maximum(0, c - eps), np.minimum(1, c + eps)
        res = minimize(lambda z, vr=vr: ((z - vr) ** 2).sum(), c, jac=lambda z, vr=vr: 2 * (z - vr),
                       bounds=list(zip(lo, hi)), constraints=[{"type": "eq", "fun": lambda z: z.sum() - 1}],
                       method="SLSQP", options={"ftol": 1e-14, "maxiter": 500})
        assert res.success
        assert np.allclose(x[r].numpy()[m], res.x, atol=1e-7)
        assert abs(float(x[r].sum()) - 1) < 1e-12 and float((x[r] - center[r]).abs().max()) <= eps + 1e-12


def test_official_clip_can_leave_the_ball_the_projection_does_not():
    center = torch.tensor([[0.2, 0.2, 0.6]], dtype=torch.float64)
    mask = torch.ones(1, 3, dtype=torch.bool)
    v = center + torch.tensor([[-0.3, -0.3, 0.3]], dtype=torch.float64)
    off = project(v, center, 0.3, mask, "official")
    assert torch.allclose(off, torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64))  # 0.4 from 0.6: outside
    ours = project(v, center, 0.3, mask, "box-simplex")
    assert float((ours - center).abs().max()) <= 0.3 + 1e-12 and abs(float(ours.sum()) - 1) < 1e-12
    # the official clip's all-zero rule: a row clamped to zeros puts 1 on its largest entry
    assert torch.equal(official_clip(torch.tensor([[-0.2, -0.1, -0.5]]), mask), torch.tensor([[0.0, 1.0, 0.0]]))


def test_bisection_handles_degenerate_boxes():
    center = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    mask = torch.tensor([[True, False, False], [True, True, True]])
    x = project_box_simplex(center + 5.0, torch.zeros(2, 3), torch.ones(2, 3), mask)
    assert torch.allclose(x, torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]]))  # (5.5, 5.5, 5) shifted by 5


def _adv_stage(**params):
    return kit.stage(space="toy-cell", space_params={"channels": 4}, registry=kit.toy_registry(),
                     optimizer={"name": "sdarts-adv", "params": {"epsilon_min": 0.3, **params}}, epochs=1, steps=3)


def test_adversarial_perturbation_raises_the_loss_and_stays_in_its_ball():
    with _adv_stage() as run:
        opt, net = run.optimizer, run.supernet
        opt.epoch_start(0)
        kit.train_steps(run, 2)  # a supernet that has seen some training
        batch = run.to_device(run.data.train.next())
        base = opt._base()
        kept = opt.counts["attacks_kept"]
        w = opt.perturbed(batch)
        net.eval()  # the attack's own BN mode (attack_bn: eval)
        with torch.no_grad():
            before, after = float(opt._loss(base, batch)), float(opt._loss(w, batch))
        assert after > before  # the attack found a worse point, and it was kept
        for k in w:
            assert float((w[k] - base[k]).abs().max()) <= opt.epsilon + 1e-6
            assert torch.allclose(w[k].sum(-1), torch.ones(w[k].shape[0]), atol=1e-6) and bool((w[k] >= 0).all())
        # a random perturbation of the same size raises the loss less than the attack
        gen_state = opt.gen.get_state()
        rs = opt._project(opt._uniform(base), base)
        opt.gen.set_state(gen_state)
        with torch.no_grad():
            assert float(opt._loss(rs, batch)) < after
        assert opt.counts["attacks_kept"] == kept + 1


def test_attack_that_cannot_raise_the_loss_is_reverted():
    with _adv_stage(attack_step_size=1e-12, random_start=False) as run:  # steps too small to move: loss equal
        opt = run.optimizer
        opt.epoch_start(0)
        batch = run.to_device(run.data.train.next())
        base = opt._base()
        w = opt.perturbed(batch)
        assert all(torch.allclose(w[k], base[k], atol=1e-9) for k in w)


def test_epsilon_ramp_is_sdarts_linear():
    # train_search.py: 0.03 + (0.3 - 0.03) * epoch / epochs, here over 50 epochs
    assert [epsilon_at(e, 0.03, 0.3, 50) for e in (0, 25, 49)] == pytest.approx([0.03, 0.165, 0.03 + 0.27 * 49 / 50])
    assert epsilon_at(60, 0.03, 0.3, 50) == pytest.approx(0.3)  # after the ramp (e.g. DARTS-PT tuning): ε max


@pytest.mark.parametrize("name", ["sdarts-rs", "sdarts-adv"])
def test_sdarts_contract(name):
    kit.check_optimizer(name, {"attack_steps": 2} if name == "sdarts-adv" else None)


def test_inverted_epsilons_are_refused():
    res = kit.run_cli("config", "show", "--optimizer", "sdarts-rs", "--set", "optimizer.epsilon_min=0.5")
    assert res.code == 2 and "epsilon_min" in res.err and "Traceback" not in res.err


@pytest.mark.parametrize(("name", "selector"), [("sdarts-rs", "magnitude"), ("sdarts-adv", "perturb")])
def test_sdarts_end_to_end_on_nb201(tmp_path, name, selector):
    out = tmp_path / name
    extra = (["--set", "selector.tune_epochs=1", "--set", "selector.tune_steps=1", "--set", "selector.eval_batches=1"]
             if selector == "perturb" else [])
    attack = ["--set", "optimizer.attack_steps=2"] if name == "sdarts-adv" else []
    res = kit.run_cli("run", *NB201_TINY, "--optimizer", name, "--selector", selector, "--epochs", "2",
                      "--out", str(out), *extra, *attack)
    assert res.code == 0, res.err
    summary = json.loads((out / "summary.json").read_text())
    act = summary["activity"]["optimizer"]
    assert act["alpha_abs_change"]["cell"] > 0 and act["alpha_updates"] >= 4 and act["perturbed_steps"] >= 4
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
              if json.loads(line).get("kind") == "epoch"]
    assert [e["train_epsilon"] for e in epochs] == pytest.approx([0.03, 0.165])  # ramp over the 2-epoch search
    if name == "sdarts-adv":
        assert 0 <= act["attacks_kept"] <= act["perturbed_steps"]
