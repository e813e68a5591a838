"""Named presets (``--preset NAME``): precedence under the user's settings, nested params, presets of presets,
run-level conflicts between components, sources in ``config show``, and the one-line error for a name no
component has."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import Field

from nasfw import hookimpl
from nasfw import testing as kit
from nasfw.components import Optimizer, Preset, Selector, StrictModel
from nasfw.config import ComponentRef
from nasfw.errors import ConfigError
from nasfw.presets import Cited, Recipe, describe, merge_with_preset

PAPER = Recipe(source="Toy paper §1",
               params={"lr": Cited(0.5, "toy.py:1"), "schedule.warm": Cited(3, "toy.py:2")},
               run={"search.epochs": Cited(50, "§1"), "search.batch_size": Cited(32, "toy.py:3")})


class _Opt(Optimizer):
    class Config(StrictModel):
        lr: float = Field(default=0.1, gt=0)
        momentum: float = 0.9
        schedule: dict[str, Any] = Field(default_factory=lambda: {"warm": 0, "min": 0.0})

    presets = {"paper": PAPER}

    @classmethod
    def preset(cls, name: str, config: Any) -> Recipe | None:
        if name == "paper" and config.space.name == "other":
            return Recipe(source="Toy paper §2", params={"lr": Cited(0.7, "§2")})
        return super().preset(name, config)


class _Sel(Selector):
    presets = {"paper": Recipe(source="Selector paper", run={"search.epochs": Cited(60, "sel §3")})}

    def select(self, supernet: Any, space: Any, run: Any) -> Any:
        return space.discretize(supernet.strengths())


class _Plugin:
    @hookimpl
    def nasfw_register_optimizers(self, register: Any) -> None:
        register("p-opt", _Opt)
        register("p-opt-fast", Preset("p-opt", {"momentum": 0.5}))  # inherits p-opt's presets
        register("p-opt-own", Preset("p-opt", {}, presets={"paper": Recipe(source="own", params={"lr": 0.9})}))
        register("p-opt-fn", Preset("p-opt", {}, presets={"paper": lambda cfg: Recipe(
            source="fn", params={"lr": 0.3 if cfg.seed == 7 else 0.4})}))

    @hookimpl
    def nasfw_register_selectors(self, register: Any) -> None:
        register("p-sel", _Sel)


@pytest.fixture
def reg():
    r = kit.toy_registry(load_entrypoints=False)
    r.add_plugin(_Plugin(), "test-presets")
    return r


def _base(**kw: Any) -> dict[str, Any]:
    return {"space": {"name": kw.get("space", "toy-cell")}, "optimizer": {"name": kw.get("optimizer", "p-opt")},
            "selector": {"name": kw.get("selector", "kit-strongest")}, "dataset": {"name": "toy-images"}}


def test_preset_sits_between_defaults_and_the_users_settings(reg, tmp_path) -> None:
    cfg, applied = merge_with_preset("paper", base=_base(), registry=reg)
    assert cfg.preset == "paper"
    assert cfg.optimizer.params["lr"] == 0.5 and cfg.search.epochs == 50 and cfg.search.batch_size == 32
    assert cfg.optimizer.params["schedule"] == {"warm": 3}  # a dotted key reaches into a nested option
    assert {a.key for a in applied} == {"optimizer.lr", "optimizer.schedule.warm", "search.epochs",
                                       "search.batch_size"}
    # file < flags < --set, all above the preset
    f = tmp_path / "run.yaml"
    f.write_text("optimizer: p-opt\nsearch: {batch_size: 16}\n")
    cfg, applied = merge_with_preset("paper", f, {"search.epochs": 5}, ["optimizer.lr=0.25"], base=_base(),
                                     registry=reg)
    assert (cfg.search.epochs, cfg.search.batch_size, cfg.optimizer.params["lr"]) == (5, 16, 0.25)
    assert cfg.optimizer.params["schedule"] == {"warm": 3}  # the file named the optimizer; its preset params stay
    won = {a.key for a in applied if a.overridden_by_user}
    assert won == {"search.epochs", "search.batch_size", "optimizer.lr"}
    lines = describe("paper", applied, cfg, reg)
    assert any("search.epochs = 50" in ln and "[yours wins]" in ln and "§1" in ln for ln in lines)


def test_preset_name_from_the_config_file(reg, tmp_path) -> None:
    f = tmp_path / "run.yaml"
    f.write_text("preset: paper\noptimizer: p-opt\n")
    cfg, _ = merge_with_preset(None, f, base=_base(), registry=reg)
    assert cfg.optimizer.params["lr"] == 0.5 and cfg.search.epochs == 50


def test_presets_of_registered_presets_and_run_dependent_ones(reg) -> None:
    assert merge_with_preset("paper", base=_base(optimizer="p-opt-fast"), registry=reg)[0].optimizer.params["lr"] \
        == 0.5  # inherited from p-opt
    assert merge_with_preset("paper", base=_base(optimizer="p-opt-own"), registry=reg)[0].optimizer.params["lr"] \
        == 0.9
    assert merge_with_preset("paper", base={**_base(optimizer="p-opt-fn"), "seed": 7},
                             registry=reg)[0].optimizer.params["lr"] == 0.3
    # the class hook sees the run config: a space-dependent recipe
    reg_cfg = merge_with_preset("paper", base=_base(), registry=reg)[0]
    assert _Opt.preset("paper", reg_cfg.model_copy(update={"space": ComponentRef(name="other")})).source \
        == "Toy paper §2"


def test_later_component_wins_a_run_setting_and_says_whom_it_replaced(reg) -> None:
    cfg, applied = merge_with_preset("paper", base=_base(selector="p-sel"), registry=reg)
    assert cfg.search.epochs == 60  # the selector comes after the optimizer in ORDER
    epochs = next(a for a in applied if a.key == "search.epochs")
    assert epochs.component == "selector p-sel" and epochs.replaced == "optimizer p-opt"


def test_unknown_preset_is_one_line_naming_what_exists(reg) -> None:
    with pytest.raises(ConfigError) as err:
        merge_with_preset("papr", base=_base(), registry=reg)
    msg = str(err.value)
    assert "\n" not in msg and "'papr'" in msg and "Did you mean 'paper'" in msg and "optimizer p-opt" in msg


def test_config_show_prints_every_preset_value_with_its_source(tmp_path) -> None:
    code, out, err = kit.run_cli("config", "show", "--preset", "paper", "--optimizer", "darts", "--epochs", "3")
    assert code == 0, err
    assert "# preset 'paper':" in out
    assert "search.epochs = 50" in out and "[yours wins]" in out and "train_search.py:30" in out
    assert "space.layers = 8" in out and "\nsearch:\n  epochs: 3\n" in out and "batch_size: 64" in out
    code, _, err = kit.run_cli("run", "--preset", "nope", "--out", str(tmp_path / "r"))
    assert code == 2 and "no component of this run has a preset 'nope'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
