"""DrNAS' published protocol (the ``drnas-paper`` preset and ``--preset paper``), each value with its source.

Sources are files of xiangning-chen/DrNAS at commit f2caa4d (2021-04-11): ``201`` = ``201-space/train_search.py``
(NAS-Bench-201, plain schedule), ``cnn`` = ``DARTS-space/train_search.py`` (DARTS space, progressive schedule),
``architect`` = ``architect.py``.
"""

from __future__ import annotations

from typing import Any

from nasfw.presets import Recipe, values

#: optimizer option -> (value, source), NB201 (plain)
PARAMS: dict[str, tuple[Any, str]] = {
    "w_lr": (0.025, "201: --learning_rate 0.025"),
    "lr_schedule": ({"name": "cosine", "params": {"min_lr": 0.001}}, "201: CosineAnnealingLR(eta_min=0.001)"),
    "w_momentum": (0.9, "201: --momentum 0.9"),
    "w_weight_decay": (3e-4, "201: --weight_decay 3e-4"),
    "grad_clip": (5.0, "201: --grad_clip 5"),
    "arch_lr": (3e-4, "201: --arch_learning_rate 3e-4"),
    "arch_betas": ((0.5, 0.999), "architect: Adam(betas=(0.5, 0.999))"),
    "arch_weight_decay": (1e-3, "architect: reg_type l2 -> Adam weight_decay = reg_scale (1e-3)"),
    "kl_scale": (0.0, "201: --reg_type l2 (the KL term is off)"),
    "warmup_epochs": (0, "201: `if epoch >= 15` is commented out: α steps from the first step"),
}

#: the DARTS-space run (progressive) differs in these
DARTS_PARAMS: dict[str, tuple[Any, str]] = {
    "w_lr": (0.1, "cnn: --learning_rate 0.1"),
    "lr_schedule": ({"name": "cosine", "params": {"min_lr": 0.0}}, "cnn: CosineAnnealingLR(eta_min=0.0)"),
    "arch_lr": (6e-4, "cnn: --arch_learning_rate 6e-4"),
    "schedule": ("progressive", "cnn: train_epochs [25, 25] with pruning between"),
    "stages": ([{"length": 25, "keep_ops": None, "warmup": 10},
                {"length": 25, "keep_ops": 4, "warmup": 10, "partial_channels": 4}],
               "cnn: train_epochs [25, 25], num_keeps [7, 4], ks [6, 4], `if epoch >= 10` per stage"),
}

RUN: dict[str, dict[str, tuple[Any, str]]] = {
    "nb201": {
        "search.epochs": (100, "201: --epochs 100"),
        "search.batch_size": (64, "201: --batch_size 64"),
        "space.init_channels": (16, "201: --init_channels 16"),
        "space.cells_per_stage": (5, "201: TinyNetwork(N=5)"),
    },
    "darts": {
        "search.epochs": (50, "cnn: sum(train_epochs) = 50"),
        "search.batch_size": (64, "cnn: --batch_size 64"),
        "space.init_channels": (36, "cnn: --init_channels 36"),
        "space.layers": (20, "cnn: --layers 20"),
        "space.primitives": (["max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                              "dil_conv_3x3", "dil_conv_5x5"], "DARTS-space/genotypes.py: PRIMITIVES without none"),
        "space.partial_channels": (6, "cnn: --k 6 (the first stage; ks = [6, 4] widens to 4)"),
    },
}


def preset_params() -> dict[str, Any]:
    """The optimizer options of the paper's NB201 protocol (the registered ``drnas-paper`` preset)."""
    return values(PARAMS)


def recipe(space: str) -> Recipe:
    """The ``--preset paper`` recipe."""
    family = "nb201" if space.startswith("nb201") else "darts"
    params = PARAMS if family == "nb201" else {**PARAMS, **DARTS_PARAMS}
    return Recipe.from_pairs("xiangning-chen/DrNAS@f2caa4d (DrNAS, ICLR 2021)", params, RUN[family])
