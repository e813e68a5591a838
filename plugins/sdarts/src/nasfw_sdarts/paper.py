"""SDARTS' published protocol (the ``sdarts-rs-paper`` / ``sdarts-adv-paper`` presets and ``--preset paper``).

Sources are files of xiangning-chen/SmoothDARTS at commit d3dbfed (2021-04-11): ``cnn`` =
``sota/cnn/train_search.py`` (DARTS space and S1-S4), ``nb201`` = ``nasbench201/train_search.py``, ``perturb`` =
``attacker/perturb.py``.
"""

from __future__ import annotations

from typing import Any

from nasfw.presets import Recipe, values

#: optimizer option -> (value, source), both variants
PARAMS: dict[str, tuple[Any, str]] = {
    "w_lr": (0.025, "cnn/nb201: --learning_rate 0.025"),
    "lr_schedule": ({"name": "cosine", "params": {"min_lr": 0.001}}, "cnn/nb201: CosineAnnealingLR to 0.001"),
    "w_momentum": (0.9, "cnn/nb201: --momentum 0.9"),
    "w_weight_decay": (3e-4, "cnn/nb201: --weight_decay 3e-4"),
    "grad_clip": (5.0, "cnn/nb201: --grad_clip 5"),
    "arch_lr": (3e-4, "cnn/nb201: --arch_learning_rate 3e-4"),
    "arch_betas": ((0.5, 0.999), "optimizers/darts/architect.py: Adam(betas=(0.5, 0.999))"),
    "arch_weight_decay": (1e-3, "cnn/nb201: --arch_weight_decay 1e-3"),
    "unrolled": (False, "cnn/nb201: --unrolled defaults to off"),
    "epsilon_min": (0.03, "cnn/nb201: epsilon_alpha = 0.03 + (args.epsilon_alpha - 0.03) * epoch / args.epochs"),
    "epsilon_max": (0.3, "cnn/nb201: --epsilon_alpha 0.3"),
    "projection": ("official", "perturb: clamp to the ball, then model.clip() (clamp [0, 1], divide by the sum)"),
    "warmup_epochs": (0, "cnn/nb201: the α step runs from the first step"),
}
#: SDARTS-ADV's attack
ADV_PARAMS: dict[str, tuple[Any, str]] = {
    "attack_steps": (7, "perturb: Linf_PGD_alpha(steps=7)"),
    "random_start": (True, "perturb: Linf_PGD_alpha(random_start=True)"),
    "attack_bn": ("eval", "perturb: model.eval() during the attack"),
}
#: ε ramps over the whole search: the absolute count is the protocol's epochs
RAMP = {"nb201": (100, "nb201: --epochs 100 (the ramp's denominator)"),
        "darts": (50, "cnn: --epochs 50 (the ramp's denominator)")}

RUN: dict[str, dict[str, tuple[Any, str]]] = {
    "nb201": {
        "search.epochs": (100, "nb201: --epochs 100"),
        "search.batch_size": (64, "nb201: --batch_size 64"),
        "space.init_channels": (16, "nb201: --init_channels 16"),
        "space.cells_per_stage": (5, "nb201: Network(N=5)"),
    },
    "darts": {
        "search.epochs": (50, "cnn: --epochs 50"),
        "search.batch_size": (64, "cnn: --batch_size 64"),
        "space.init_channels": (16, "cnn: --init_channels 16"),
        "space.layers": (8, "cnn: --layers 8"),
    },
}


def _family(space: str) -> str:
    return "nb201" if space.startswith("nb201") else "darts"


def preset_params(adversarial: bool, space: str = "darts") -> dict[str, Any]:
    """The optimizer options of the paper's protocol (the registered ``-paper`` presets: DARTS-space ramp)."""
    params = {**PARAMS, **(ADV_PARAMS if adversarial else {}), "epsilon_ramp": RAMP[_family(space)]}
    return values(params)


def recipe(space: str, adversarial: bool) -> Recipe:
    """The ``--preset paper`` recipe."""
    family = _family(space)
    params = {**PARAMS, **(ADV_PARAMS if adversarial else {}), "epsilon_ramp": RAMP[family]}
    return Recipe.from_pairs("xiangning-chen/SmoothDARTS@d3dbfed (SDARTS, ICML 2020)", params, RUN[family])
