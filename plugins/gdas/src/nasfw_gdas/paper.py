"""GDAS' published protocol (the ``gdas-paper`` preset and ``--preset paper``), each value with its source.

Sources are files of D-X-Y/AutoDL-Projects at commit f46486e (2022-04-24): ``GDAS.config`` =
``configs/nas-benchmark/algos/GDAS.config`` (NB201), ``NASNet.config`` =
``configs/search-opts/GDAS-NASNet-CIFAR.config`` (DARTS space), ``GDAS.sh`` =
``scripts-search/NAS-Bench-201-algos/GDAS.sh``, ``GDAS.py`` = ``exps/NAS-Bench-201-algos/GDAS.py``.
"""

from __future__ import annotations

from typing import Any

from nasfw.presets import Recipe, values

#: optimizer option -> (value, source)
PARAMS: dict[str, tuple[Any, str]] = {
    "w_lr": (0.025, "GDAS.config / NASNet.config: LR 0.025"),
    "lr_schedule": ({"name": "cosine", "params": {"min_lr": 0.001}}, "GDAS.config: scheduler cos, eta_min 0.001"),
    "w_momentum": (0.9, "GDAS.config: momentum 0.9"),
    "w_nesterov": (True, "GDAS.config: nesterov 1"),
    "w_weight_decay": (5e-4, "GDAS.config: decay 0.0005"),
    "grad_clip": (5.0, "GDAS.py search_func: clip_grad_norm_(network.parameters(), 5)"),
    "arch_lr": (3e-4, "GDAS.sh: --arch_learning_rate 0.0003"),
    "arch_betas": ((0.5, 0.999), "GDAS.py: Adam(betas=(0.5, 0.999))"),
    "arch_weight_decay": (1e-3, "GDAS.sh: --arch_weight_decay 0.001"),
    "tau_max": (10.0, "GDAS.sh: --tau_max 10"),
    "tau_min": (0.1, "GDAS.sh: --tau_min 0.1"),
    "tau_anneal": (250, "GDAS.py: tau_max - (tau_max - tau_min) * epoch / (total_epoch - 1), total 250 epochs"),
    "warmup_epochs": (0, "GDAS.config: warmup 0 (α is updated from the first step)"),
}

#: run-level settings per space family -> (value, source)
RUN: dict[str, dict[str, tuple[Any, str]]] = {
    "nb201": {
        "search.epochs": (250, "GDAS.config: epochs 250"),
        "search.batch_size": (64, "GDAS.config: batch_size 64"),
        "space.init_channels": (16, "GDAS.sh: channel=16"),
        "space.cells_per_stage": (5, "GDAS.sh: num_cells=5"),
    },
    "darts": {
        "search.epochs": (250, "NASNet.config: epochs 250"),
        "search.batch_size": (256, "NASNet.config: batch_size 256"),
        "space.init_channels": (16, "configs/search-archs/GDAS-NASNet-CIFAR.config: C 16"),
        "space.layers": (8, "configs/search-archs/GDAS-NASNet-CIFAR.config: N 2 (3 stages of N + 2 reductions)"),
    },
}


def preset_params() -> dict[str, Any]:
    """The optimizer options of the paper's protocol (the registered ``gdas-paper`` preset)."""
    return values(PARAMS)


def recipe(space: str) -> Recipe:
    """The ``--preset paper`` recipe."""
    family = "nb201" if space.startswith("nb201") else "darts"
    return Recipe.from_pairs("D-X-Y/AutoDL-Projects@f46486e (GDAS, CVPR 2019)", PARAMS, RUN[family])
