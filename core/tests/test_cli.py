"""The CLI through click's runner and through ``main`` (which maps bad input to one line + exit 2)."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from nasfw.cli import cli
from nasfw.testing import run_cli


def test_plugins_json_lists_kinds_with_distributions():
    res = CliRunner().invoke(cli, ["plugins", "--json"])
    assert res.exit_code == 0
    rows = json.loads(res.output)
    have = {(r["kind"], r["name"]) for r in rows}
    for needed in [("search_space", "darts"), ("optimizer", "darts"), ("optimizer", "darts-2nd"),
                   ("selector", "magnitude"), ("dataset", "digits"), ("edge_weighting", "softmax"),
                   ("lr_schedule", "cosine"), ("operation", "sep_conv_3x3")]:
        assert needed in have
    for r in rows:
        if r["kind"] != "failed":
            assert set(r) >= {"kind", "name", "distribution", "version"} and r["distribution"]


def test_plugins_table():
    res = CliRunner().invoke(cli, ["plugins"])
    assert res.exit_code == 0 and "darts-2nd" in res.output


def test_config_show_resolves_component_params():
    res = CliRunner().invoke(cli, ["config", "show", "--optimizer", "darts-2nd", "--set", "optimizer.arch_lr=0.01"])
    assert res.exit_code == 0, res.output
    data = yaml.safe_load(res.output)
    assert data["optimizer"]["params"]["unrolled"] is True and data["optimizer"]["params"]["arch_lr"] == 0.01
    assert data["optimizer"]["params"]["w_lr"] == 0.025


def test_config_validate_and_schema(tmp_path):
    f = tmp_path / "ok.yaml"
    f.write_text("optimizer: darts\nsearch: {epochs: 1}\n")
    assert CliRunner().invoke(cli, ["config", "validate", str(f)]).exit_code == 0
    res = CliRunner().invoke(cli, ["config", "schema"])
    assert "properties" in json.loads(res.output)
    res = CliRunner().invoke(cli, ["config", "schema", "--kind", "optimizer", "--name", "darts"])
    assert "arch_lr" in json.loads(res.output)["properties"]


@pytest.mark.parametrize("args, fragment", [
    (["run", "--optimizer", "dartz"], "darts"),
    (["run", "--selector", "magnitud"], "magnitude"),
    (["run", "--set", "optimizer.arch_lrr=1"], "arch_lr"),
    (["run", "--set", "search.epochs=-2"], "search.epochs"),
    (["run", "--epochs", "x"], "epochs"),
    (["run", "--config", "/nonexistent/c.yaml"], "not found"),
    (["run", "--device", "tpu9"], "device"),
    (["run", "--resume", "/nonexistent/run"], "/nonexistent/run"),
    (["config", "schema", "--kind", "optimizer"], "--name"),
    (["nosuchcommand"], "nosuchcommand"),
])
def test_bad_input_is_one_line_exit_2(capsys, args, fragment):
    code, out, err = run_cli(*args)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in err


def test_version(capsys):
    code, out, _ = run_cli("--version")
    assert code == 0 and "nasfw" in out
