"""Bad input never crashes: one line on stderr, exit code 2, no traceback (explicit cases + hypothesis)."""

from __future__ import annotations

import json
import os
import string

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nasfw.errors import GenotypeError
from nasfw.genotype import Genotype


def _assert_clean_error(code: int, err: str, args: list[str]) -> None:
    assert code == 2, (args, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and lines[0].startswith("Error:"), (args, err)


BAD_CONFIGS = {
    "unknown_top_key": "epochz: 3\n",
    "unknown_search_key": "search: {epoch: 3}\n",
    "negative_epochs": "search: {epochs: -1}\n",
    "zero_batch": "search: {batch_size: 0}\n",
    "string_batch": "search: {batch_size: many}\n",
    "float_epochs": "search: {epochs: 2.5}\n",
    "list_search": "search: [1, 2]\n",
    "seed_negative": "seed: -4\n",
    "seed_text": "seed: abc\n",
    "device_bogus": "device: quantum\n",
    "top_level_list": "- 1\n- 2\n",
    "top_level_scalar": "42\n",
    "broken_yaml": "search: {epochs: 3\n",
    "tab_yaml": "search:\n\tepochs: 3\n",
    "python_tag": "!!python/object/apply:os.system ['true']\n",
    "unknown_space": "space: dartz\n",
    "unknown_optimizer": "optimizer: zarts-gdl-x\n",
    "unknown_selector": "selector: magnitud\n",
    "unknown_dataset": "dataset: cifar11\n",
    "unknown_shrinker": "shrinker: lisnas-x\n",
    "component_without_name": "optimizer: {params: {arch_lr: 1}}\n",
    "component_params_list": "optimizer: {name: darts, params: [1]}\n",
    "component_extra_key": "optimizer: {name: darts, paramz: {}}\n",
    "optimizer_bad_option": "optimizer: {name: darts, params: {arch_lrr: 0.1}}\n",
    "optimizer_negative_lr": "optimizer: {name: darts, params: {w_lr: -1}}\n",
    "optimizer_lr_text": "optimizer: {name: darts, params: {arch_lr: fast}}\n",
    "optimizer_momentum_one": "optimizer: {name: darts, params: {w_momentum: 1.0}}\n",
    "space_bad_layers": "space: {name: darts, params: {layers: 0}}\n",
    "space_bad_primitive": "space: {name: darts, params: {primitives: [none, warp_conv]}}\n",
    "space_dup_primitive": "space: {name: darts, params: {primitives: [none, none]}}\n",
    "space_unknown_option": "space: {name: darts, params: {cells: 3}}\n",
    "dataset_bad_portion": "dataset: {name: digits, params: {train_portion: 2.0}}\n",
    "evaluation_bad": "evaluation: {train: maybe}\n",
    "evaluation_protocol_unknown": "evaluation: {train: true, protocol: darts-cifarr}\n",
    "evaluation_param_typo": "evaluation: {train: true, params: {epochz: 3}}\n",
    "evaluation_network_typo": "evaluation: {train: true, params: {network.layerz: 3}}\n",
    "evaluation_network_dict_typo": "evaluation: {train: true, params: {network: {Cc: 8}}}\n",
    "log_progress_bad": "log: {progress: loud}\n",
    "performance_bad": "performance: {bf16: perhaps}\n",
    "edge_weighting_unknown": "edge_weighting: softmaxx\n",
    "lr_schedule_unknown": "optimizer: {name: darts, params: {lr_schedule: cosinus}}\n",
    "binary_garbage": "\x00\x01\x02",
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_bad_config_files(tmp_path, cli_exit, name):
    f = tmp_path / "c.yaml"
    f.write_text(BAD_CONFIGS[name])
    for args in (["config", "validate", str(f)], ["run", "--config", str(f), "--out", str(tmp_path / "r")]):
        code, err = cli_exit(args)
        _assert_clean_error(code, err, args)
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


BAD_ARGS = {
    "unknown_command": ["serach"],
    "unknown_flag": ["run", "--epoch", "3"],
    "epochs_text": ["run", "--epochs", "three"],
    "epochs_negative": ["run", "--epochs", "-1"],
    "batch_zero": ["run", "--batch-size", "0"],
    "seed_text": ["run", "--seed", "x"],
    "set_no_equals": ["run", "--set", "search.epochs"],
    "set_empty_key": ["run", "--set", "=3"],
    "set_double_dot": ["run", "--set", "search..epochs=3"],
    "set_unknown_key": ["run", "--set", "search.epoch=3"],
    "set_into_scalar": ["run", "--set", "seed.value=3"],
    "set_bad_type": ["run", "--set", "search.epochs=[1,2]"],
    "space_unknown": ["run", "--space", "nb202"],
    "optimizer_typo": ["run", "--optimizer", "zarts-gdl"],
    "selector_unknown": ["run", "--selector", "perturbb"],
    "dataset_unknown": ["run", "--dataset", "mnistt"],
    "device_bad": ["run", "--device", "gpu:zero"],
    "missing_config": ["run", "--config", "/no/such/file.yaml"],
    "config_is_dir": ["run", "--config", "/"],
    "resume_missing": ["run", "--resume", "/no/such/run"],
    "resume_with_flags": ["run", "--resume", "/tmp", "--epochs", "3"],
    "data_dir_missing": ["run", "--dataset", "cifar10", "--data-dir", "/no/such/dir"],
    "image_folder_missing": ["run", "--dataset", "image-folder", "--data-dir", "/no/such/dir"],
    "schema_kind_without_name": ["config", "schema", "--kind", "optimizer"],
    "schema_bad_kind": ["config", "schema", "--kind", "wizard", "--name", "x"],
    "schema_unknown_name": ["config", "schema", "--kind", "optimizer", "--name", "nope"],
    "validate_missing": ["config", "validate", "/no/such.yaml"],
    "show_bad_set": ["config", "show", "--set", "optimizer.arch_lrr=1"],
    "eval_network_typo": ["eval", "darts-v2", "--dry-run", "--set", "network.layerz=8"],
    "eval_network_unknown_for_space": ["eval", "--space", "nb201", "--dry-run", "--protocol", "nb201", "--set",
                                       "network.layers=8", "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|"
                                       "skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"],
}


@pytest.mark.parametrize("name", sorted(BAD_ARGS))
def test_bad_cli_arguments(cli_exit, name):
    code, err = cli_exit(BAD_ARGS[name])
    _assert_clean_error(code, err, BAD_ARGS[name])


def test_network_option_typo_names_the_space_options(cli_exit):
    code, err = cli_exit(["eval", "darts-v2", "--dry-run", "--set", "network.layerz=8"])
    assert code == 2 and "Did you mean 'layers'?" in err and "C, auxiliary, imagenet, layers" in err


def test_protocol_network_options_a_space_lacks_are_not_errors(cli_exit, capsys):
    """One protocol serves several spaces: 'quick' passes DARTS' layers/auxiliary to NB201 too; only what the
    user sets is checked, and a space whose build_network takes only **options is not checked."""
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    code, err = cli_exit(["eval", "--space", "nb201", "--dry-run", "--protocol", "quick", "--set", "network.C=4", cell])
    assert code == 0, err
    from nasfw.components import Context
    from nasfw.registry import get_registry
    from nasfw.testing import ToyCellSpace

    assert ToyCellSpace(ToyCellSpace.Config(), Context(registry=get_registry())).network_options() is None


def test_typo_suggests_closest_name(cli_exit):
    code, err = cli_exit(["config", "show", "--optimizer", "darts-2dn"])
    assert code == 2 and "darts-2nd" in err


BAD_GENOTYPES = {
    "not_json": "{nope",
    "list": "[1, 2]",
    "no_space": json.dumps({"cells": {}}),
    "wrong_format": json.dumps({"format": "other", "space": "darts", "cells": {}}),
    "future_version": json.dumps({"version": 9, "space": "darts", "cells": {}}),
    "edge_missing_op": json.dumps({"space": "darts", "cells": {"normal": [{"node": 2, "input": 0}]}}),
    "edge_negative_node": json.dumps({"space": "darts", "cells": {"normal": [{"node": -1, "input": 0, "op": "x"}]}}),
    "edge_extra_key": json.dumps({"space": "darts", "cells": {"normal": [
        {"node": 2, "input": 0, "op": "skip_connect", "weight": 1}]}}),
    "cells_not_mapping": json.dumps({"space": "darts", "cells": [1]}),
}


@pytest.mark.parametrize("name", sorted(BAD_GENOTYPES))
def test_bad_genotype_files(tmp_path, name):
    f = tmp_path / "genotype.json"
    f.write_text(BAD_GENOTYPES[name])
    with pytest.raises(GenotypeError) as exc:
        Genotype.load(f)
    assert "\n" not in str(exc.value) and exc.value.exit_code == 2


def test_genotype_not_in_space_is_rejected():
    from nasfw.registry import get_registry

    space = get_registry().create("search_space", "darts")
    bad = Genotype(space="darts", cells={"normal": [{"node": 2, "input": 7, "op": "warp"}], "reduce": []})
    with pytest.raises(GenotypeError):
        space.validate_genotype(bad)


# ---------------------------------------------------------------- property-based fuzzing

# derandomize: CI sees the same 40 cases every run (a new random case may not turn CI red on an unrelated
# change); run with NASFW_FUZZ_RANDOM=1 to explore fresh ones, then pin what they find with @example.
FUZZ = settings(max_examples=40, deadline=None, derandomize=not os.environ.get("NASFW_FUZZ_RANDOM"),
                database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
keys = st.sampled_from(["search.epochs", "search.batch_size", "seed", "device", "optimizer.arch_lr",
                        "optimizer.w_momentum", "space.layers", "space.primitives", "dataset.train_portion",
                        "log.progress", "search.zz", "zz", "optimizer.zz", "performance.bf16", "evaluation.train"])
values = st.one_of(st.text(string.printable, max_size=12), st.integers(-5, 5).map(str),
                   st.floats(allow_nan=True).map(str), st.sampled_from(["[1, 2]", "{a: 1}", "null", "-1", "1e9"]))


@FUZZ
@given(pairs=st.lists(st.tuples(keys, values), min_size=1, max_size=3))
@example(pairs=[("device", "0\x0c")])  # a form feed once split the error over two lines
@example(pairs=[("seed", "1\u2028x"), ("log.progress", "\x1b[31m")])
def test_fuzzed_overrides_never_crash(cli_exit, pairs):
    args = ["config", "show"]
    for k, v in pairs:
        args += ["--set", f"{k}={v}"]
    code, err = cli_exit(args)
    assert code in (0, 2), (args, err)
    if code == 2:
        _assert_clean_error(code, err, args)


@FUZZ
@given(doc=st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
                        lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                st.dictionaries(st.sampled_from(
                                                    ["search", "epochs", "seed", "optimizer", "name", "params",
                                                     "space", "device", "x"]), inner, max_size=3)),
                        max_leaves=8))
def test_fuzzed_config_documents_never_crash(tmp_path_factory, cli_exit, doc):
    f = tmp_path_factory.mktemp("fuzz") / "c.json"
    f.write_text(json.dumps(doc))
    code, err = cli_exit(["config", "validate", str(f)])
    assert code in (0, 2), (doc, err)
    if code == 2:
        _assert_clean_error(code, err, [str(doc)])


@FUZZ
@given(text=st.text(max_size=60))
def test_fuzzed_genotype_text_is_clean_error(tmp_path_factory, text):
    f = tmp_path_factory.mktemp("g") / "genotype.json"
    f.write_text(text)
    try:
        Genotype.load(f)
    except GenotypeError as exc:
        assert "\n" not in str(exc)
