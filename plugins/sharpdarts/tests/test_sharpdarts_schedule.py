"""Cosine power annealing against its definition (the reference's min-max normalised array) and the
methods note's test vectors, including the paper's constants (p = 2, 0.025 -> 1e-4, warm-up 5; p = 10)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nasfw.registry import get_registry
from nasfw.testing import check_lr_schedule
from nasfw_sharpdarts.schedule import CosinePower, cosine_power_annealing, cosine_power_proportion


def reference_array(E: int, lr_max: float, lr_min: float, p: float, w: int = 0) -> np.ndarray:
    """The definition, as an array over e = 1..E: power of the cosine, min-max normalised, warm-up ramp."""
    e = np.arange(1, E + 1, dtype=np.float64)
    max_e = float(E)
    if w > 0:
        e, max_e = e - w, max_e - w
    c = (1 + np.cos(np.pi * e / max_e)) / 2
    s = c if p == 1 else np.power(p, c + 1)
    s = (s - s.min()) / (s - s.min()).max()
    if w > 0:
        s[: w + 1] = np.arange(1, w + 2) / (w + 1)
    return lr_min + (lr_max - lr_min) * s


@pytest.mark.parametrize(("E", "p", "w"), [(120, 2, 0), (50, 2, 5), (300, 10, 10), (7, 1, 0), (20, 1, 3), (9, 3.5, 2)])
def test_cpa_equals_its_definition_at_every_epoch(E, p, w):
    ref = reference_array(E, 0.025, 1e-4, p, w)
    sched = CosinePower(CosinePower.Config(exponent=p, min_lr=1e-4, warmup_epochs=w))
    ours = np.array([sched.lr(epoch, E, 0.025) for epoch in range(E)])  # the engine's epochs are 0-based
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)
    assert ours[0] == pytest.approx(0.025 if w == 0 else 1e-4 + (0.025 - 1e-4) / (w + 1))
    assert ours[-1] == pytest.approx(1e-4, abs=1e-15)


def test_cpa_published_test_vectors():
    """E=120, p=2, 0.025 -> 1e-4 (sharpDARTS search defaults): values from the methods note."""
    lr = [cosine_power_annealing(e, 120, 0.025, 1e-4, 2.0) for e in (1, 2, 3, 60, 120)]
    np.testing.assert_allclose(lr, [0.025, 0.0249823, 0.0249527, 0.0104164, 1e-4], rtol=0, atol=5e-8)  # 6 digits
    warm = [cosine_power_annealing(e, 120, 0.025, 1e-4, 2.0, warmup_epochs=5) for e in range(1, 7)]
    np.testing.assert_allclose(warm, [0.00425, 0.0084, 0.01255, 0.0167, 0.02085, 0.025], rtol=1e-12)


@pytest.mark.parametrize(("p", "fractions"), [(1, (0.854, 0.500, 0.147)), (2, (0.807, 0.414, 0.107)),
                                              (10, (0.682, 0.240, 0.045))])
def test_cpa_fraction_of_lr_max_at_quarters(p, fractions):
    """The methods note's table: lr / lr_max at 25/50/75 % of training (lr_min = 0), long schedule."""
    E = 4000
    got = [cosine_power_annealing(int(q * E), E, 1.0, 0.0, p) for q in (0.25, 0.5, 0.75)]
    np.testing.assert_allclose(got, fractions, atol=1.5e-3)


def test_cpa_p1_is_range_limited_cosine_closed_form():
    E = 30
    for e in range(1, E + 1):
        c = (1 + math.cos(math.pi * e / E)) / 2
        assert cosine_power_proportion(e, E, 1.0) == pytest.approx(c / ((1 + math.cos(math.pi / E)) / 2))


def test_cpa_short_runs_stay_in_the_ramp_and_one_epoch_is_lr_max():
    assert [cosine_power_annealing(e, 2, 0.025, 1e-4, 2.0, 5) for e in (1, 2)] == pytest.approx(
        [1e-4 + 0.0249 / 6, 1e-4 + 2 * 0.0249 / 6])
    assert cosine_power_annealing(1, 1, 0.025, 1e-4, 2.0) == 0.025


def test_cpa_contract_and_bad_exponent():
    vals = check_lr_schedule("cosine-power", {"exponent": 10, "warmup_epochs": 2})
    assert vals[2] == pytest.approx(0.1)  # epoch w + 1 reaches lr_max
    from nasfw.errors import ConfigError

    with pytest.raises(ConfigError, match="exponent"):
        get_registry().create("lr_schedule", {"name": "cosine-power", "params": {"exponent": 0.5}})


@pytest.mark.parametrize(("E", "frac", "w"), [(120, 5 / 120, 5), (48, 5 / 120, 2), (4, 5 / 120, 0), (50, 0.1, 5)])
def test_cpa_warmup_as_a_share_of_the_run(E, frac, w):
    """A fractional warm-up is that share of the schedule's epochs: the same lr as the absolute count."""
    by_share = CosinePower(CosinePower.Config(exponent=2, min_lr=1e-4, warmup_epochs=frac))
    by_count = CosinePower(CosinePower.Config(exponent=2, min_lr=1e-4, warmup_epochs=w))
    assert by_share.warmup(E) == w
    assert [by_share.lr(e, E, 0.025) for e in range(E)] == [by_count.lr(e, E, 0.025) for e in range(E)]


def test_cpa_warmup_over_the_whole_run_is_refused():
    from nasfw.errors import ConfigError

    sched = CosinePower(CosinePower.Config(warmup_epochs=5))
    assert sched.plan(120) == {"lr_warmup_epochs": 5}
    with pytest.raises(ConfigError, match=r"^warmup_epochs: a warm-up of 5 epochs ramps the lr over the whole 4-epoch"):
        sched.plan(4)


def test_sharpdarts_default_warmup_scales_and_the_paper_preset_is_absolute():
    from nasfw.budget import Budget
    from nasfw.presets import merge_with_preset

    reg = get_registry()
    opt = reg.create("optimizer", "sharpdarts")
    assert opt.plan(Budget(4, 2))["lr_warmup_epochs"] == 0 and opt.plan(Budget(120, 2))["lr_warmup_epochs"] == 5
    cfg, _ = merge_with_preset("paper", flags={"space": "darts-ssc", "optimizer": "sharpdarts"}, registry=reg)
    assert cfg.optimizer.params["lr_schedule"]["params"]["warmup_epochs"] == 5
    assert (cfg.search.epochs, cfg.search.batch_size, cfg.seed) == (120, 48, 22)
    assert cfg.space.params["layers"] == 8 and cfg.space.params["init_channels"] == 16
    grid, _ = merge_with_preset("paper", flags={"space": "hypercuboid", "optimizer": "sharpdarts"}, registry=reg)
    assert (grid.search.batch_size, grid.seed, grid.space.params["init_channels"]) == (64, 10, 36)
    with pytest.raises(Exception, match="ramps the lr"):
        reg.create("optimizer", {"name": "sharpdarts", "params": {"lr_schedule": {
            "name": "cosine-power", "params": {"warmup_epochs": 5}}}}).plan(Budget(4, 2))
