"""PC-DARTS' published protocol (the ``pc-darts-paper`` preset and ``--preset paper``), each value with its source.

Sources are files of yuhuixu1993/PC-DARTS at commit b74702f (2020-07-02): ``search`` = ``train_search.py``,
``model`` = ``model_search.py`` (CIFAR-10, DARTS space).
"""

from __future__ import annotations

from typing import Any

from nasfw.presets import Cited, Recipe, values

#: optimizer option -> (value, source)
PARAMS: dict[str, tuple[Any, str]] = {
    "w_lr": (0.1, "search: --learning_rate 0.1"),
    "lr_schedule": ({"name": "cosine", "params": {"min_lr": 0.0}}, "search: CosineAnnealingLR(eta_min=0.0)"),
    "w_momentum": (0.9, "search: --momentum 0.9"),
    "w_weight_decay": (3e-4, "search: --weight_decay 3e-4"),
    "grad_clip": (5.0, "search: --grad_clip 5"),
    "arch_lr": (6e-4, "search: --arch_learning_rate 6e-4"),
    "arch_betas": ((0.5, 0.999), "architect.py: Adam(betas=(0.5, 0.999))"),
    "arch_weight_decay": (1e-3, "search: --arch_weight_decay 1e-3"),
    "unrolled": (False, "search: --unrolled defaults to off"),
    "warmup_epochs": (15, "search: `if epoch >= 15: architect.step(...)`"),
}

RUN: dict[str, tuple[Any, str]] = {
    "search.epochs": (50, "search: --epochs 50"),
    "search.batch_size": (256, "search: --batch_size 256"),
    "space.init_channels": (16, "search: --init_channels 16"),
    "space.layers": (8, "search: --layers 8"),
    "space.partial_channels": (4, "model: MixedOp self.k = 4"),
    "space.edge_normalization": (True, "model: betas_normal / betas_reduce, softmax per node"),
}


def preset_params() -> dict[str, Any]:
    """The optimizer options of the paper's protocol (the registered ``pc-darts-paper`` preset)."""
    return values(PARAMS)


def recipe(space: str) -> Recipe:
    """The ``--preset paper`` recipe."""
    run = {k: v for k, v in RUN.items() if not (space.startswith("nb201") and k == "space.layers")}
    return Recipe.from_pairs("yuhuixu1993/PC-DARTS@b74702f (PC-DARTS, ICLR 2020)", PARAMS, run)


def tiny_recipe() -> Recipe:
    """The ``tiny`` preset: K = 2 and edge normalisation (so the method's structure is there), no warm-up."""
    return Recipe(source="nasfw: smallest acting PC-DARTS settings",
                  params={"warmup_epochs": Cited(0, "α must move in a 1-epoch run")},
                  run={"space.partial_channels": Cited(2, "the tiny supernets have 4 channels: K = 2 divides them"),
                       "space.edge_normalization": Cited(True, "β per input edge, as the paper")})
