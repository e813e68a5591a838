"""The registry over pluggy: discovery, failures, duplicates, disabling, API versions, presets."""

from __future__ import annotations

import pytest

from nasfw.errors import ConfigError, PluginError, UnknownComponentError
from nasfw.registry import Registry

GOOD = """
import nasfw
from nasfw.components import Selector, StrictModel

class Pick(Selector):
    class Config(StrictModel):
        depth: int = 2
    def select(self, supernet, space, run):
        return space.discretize({k: v.detach() for k, v in supernet.alphas.items()})

@nasfw.hookimpl
def nasfw_register_selectors(register):
    register("tp-pick", Pick, description="test selector")
"""


def test_good_plugin_is_discovered_with_its_distribution(site):
    site("tp-good", GOOD)
    reg = Registry()
    info = reg.info("selector", "tp-pick")
    assert info.distribution == "tp-good" and info.version == "0.0.1"
    assert reg.create("selector", {"name": "tp-pick", "params": {"depth": 3}}).config.depth == 3
    assert not [f for f in reg.failures if f.distribution == "tp-good"]


def test_plugin_failing_on_import_is_reported_not_raised(site):
    site("tp-broken", "raise RuntimeError('boom at import')")
    site("tp-good", GOOD)
    reg = Registry()
    assert "tp-pick" in reg.names("selector")  # the good one still loads
    (fail,) = [f for f in reg.failures if f.distribution == "tp-broken"]
    assert "boom at import" in fail.error and "failed to import" in fail.error


def test_plugin_raising_while_registering_is_reported(site):
    code = GOOD + "\n@nasfw.hookimpl\ndef nasfw_register_optimizers(register):\n    raise ValueError('bad reg')\n"
    site("tp-half", code)
    reg = Registry()
    assert "tp-pick" in reg.names("selector")
    assert any("bad reg" in f.error for f in reg.failures)


def test_duplicate_names_error_names_both_distributions(site):
    site("tp-one", GOOD)
    site("tp-two", GOOD)
    reg = Registry()
    with pytest.raises(PluginError) as exc:
        reg.info("selector", "tp-pick")
    assert "'tp-one'" in str(exc.value) and "'tp-two'" in str(exc.value)
    assert any("tp-one" in f.error and "tp-two" in f.error for f in reg.failures)


def test_disable_plugins_env(site, monkeypatch):
    site("tp-one", GOOD)
    site("tp-two", GOOD)
    monkeypatch.setenv("NASFW_DISABLE_PLUGINS", "tp-two")
    reg = Registry()
    assert reg.info("selector", "tp-pick").distribution == "tp-one"


def test_incompatible_api_version_is_refused(site):
    site("tp-old", "NASFW_API_VERSION = 0\n" + GOOD)
    reg = Registry()
    assert "tp-pick" not in reg.names("selector")
    (fail,) = [f for f in reg.failures if f.distribution == "tp-old"]
    assert "hook API 0" in fail.error


def test_unknown_name_suggests_closest(fresh_registry):
    reg = fresh_registry()
    with pytest.raises(UnknownComponentError) as exc:
        reg.info("optimizer", "dartz")
    msg = str(exc.value)
    assert "'darts'" in msg and "\n" not in msg and exc.value.exit_code == 2


def test_option_typo_names_option_component_and_allowed_fields(fresh_registry):
    reg = fresh_registry()
    with pytest.raises(ConfigError) as exc:
        reg.resolve("optimizer", {"name": "darts", "params": {"arch_lrr": 0.1}})
    msg = str(exc.value)
    assert "arch_lrr" in msg and "'darts'" in msg and "arch_lr" in msg.split("Allowed options:")[1]


def test_presets_follow_base_and_merge_params(fresh_registry):
    reg = fresh_registry()
    name, _, cfg = reg.resolve("optimizer", "darts-2nd")
    assert name == "darts-2nd" and cfg.unrolled is True
    _, _, cfg = reg.resolve("optimizer", {"name": "darts-2nd", "params": {"arch_lr": 1e-2}})
    assert cfg.unrolled is True and cfg.arch_lr == 1e-2


def test_lifecycle_hook_failure_does_not_crash(fresh_registry):
    import nasfw

    class Logger:
        @nasfw.hookimpl
        def nasfw_epoch_end(self, run, epoch, metrics):
            raise RuntimeError("logger broke")

    reg = fresh_registry(load_entrypoints=False)
    reg.add_plugin(Logger(), "tp-logger")
    reg.epoch_end(run=None, epoch=0, metrics={})
    assert any("logger broke" in f.error for f in reg.failures)
