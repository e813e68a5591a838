"""RunConfig: files, flags and --set overrides merge into one validated model with one-line errors."""

from __future__ import annotations

import json

import pytest

from nasfw.config import merge_config, parse_override, read_config_file
from nasfw.errors import ConfigError


def test_precedence_file_then_flags_then_set(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("search:\n  epochs: 7\n  batch_size: 32\nseed: 3\n")
    cfg = merge_config(f, {"search.epochs": 2}, ["search.batch_size=16", "optimizer.arch_lr=0.01"])
    assert cfg.search.epochs == 2 and cfg.search.batch_size == 16 and cfg.seed == 3
    assert cfg.optimizer.name == "darts" and cfg.optimizer.params == {"arch_lr": 0.01}


def test_component_shorthand_keeps_default_space_params():
    cfg = merge_config(None, {}, ["space.layers=2"])
    assert cfg.space.name == "darts" and cfg.space.params["layers"] == 2 and "init_channels" in cfg.space.params


def test_space_flag_replaces_component_and_set_fills_its_params():
    cfg = merge_config(None, {"space": "s1"}, ["space.init_channels=4"])
    assert cfg.space.name == "s1" and cfg.space.params == {"init_channels": 4}


def test_json_config(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"optimizer": {"name": "darts-2nd", "params": {"arch_lr": 1e-3}}}))
    assert merge_config(f).optimizer.name == "darts-2nd"


@pytest.mark.parametrize("text, fragment", [
    ("search:\n  epoch: 3\n", "unknown setting 'search.epoch'"),
    ("search:\n  epochs: -1\n", "search.epochs"),
    ("seed: banana\n", "seed"),
    ("- a\n- b\n", "must hold a mapping"),
    ("a: [1, 2\n", "not valid YAML"),
    ("device: gpu0\n", "not a torch device"),
    ("optimizer: {params: {}}\n", "optimizer.name"),
])
def test_bad_files_give_one_line_errors(tmp_path, text, fragment):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as exc:
        merge_config(f)
    assert fragment in str(exc.value) and "\n" not in str(exc.value) and exc.value.exit_code == 2


def test_unknown_setting_suggests_closest():
    with pytest.raises(ConfigError, match="epochs"):
        merge_config(None, {}, ["search.epoch=3"])


def test_missing_and_unsafe_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        read_config_file(tmp_path / "nope.yaml")
    f = tmp_path / "evil.yaml"
    f.write_text("!!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_config_file(f)


@pytest.mark.parametrize("text", ["noequals", "=3", "a..b=1"])
def test_bad_overrides(text):
    with pytest.raises(ConfigError):
        parse_override(text)
