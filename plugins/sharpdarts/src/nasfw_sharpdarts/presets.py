"""The ``paper`` and ``tiny`` presets of sharpDARTS' optimizer preset and spaces, every value with its source in
ahundt/sharpDARTS @ 6f593d4 (``cnn/train_search.py`` defaults and the README's search commands)."""

from __future__ import annotations

from typing import Any

from nasfw.presets import Cited, Recipe

_TS = "ahundt/sharpDARTS@6f593d4 cnn/train_search.py"
_MAXW = "ahundt/sharpDARTS@6f593d4 README.md:45 (Max-W SharpSepConvDARTS search command)"
_GRID = "ahundt/sharpDARTS@6f593d4 README.md:121 (multi-channel HyperCuboid search command)"

#: sharpDARTS' warm-up as a fraction of its search: 5 warm-up epochs (train_search.py --warmup_epochs) of the 120
#: the README's search commands run.
WARMUP_FRACTION = 5 / 120


def _optimizer_paper(config: Any) -> Recipe:
    grid = getattr(getattr(config, "space", None), "name", "") == "hypercuboid"
    cmd = _GRID if grid else _MAXW
    return Recipe(
        source="sharpDARTS (Hundt, Jain, Hager, arXiv 1903.09900): cell search with Max-W and cosine power annealing",
        params={
            "unrolled": Cited(False, f"{_TS}:80 --unrolled off (first order)"),
            "w_lr": Cited(0.025, f"{_TS}:49 --learning_rate"),
            "lr_schedule": Cited({"name": "cosine-power", "params": {"exponent": 2.0, "min_lr": 1e-4,
                                                                     "warmup_epochs": 5}},
                                 f"{_TS}:51 --lr_power_annealing_exponent_order 2, :50 --learning_rate_min 1e-4, "
                                 f":62 --warmup_epochs 5"),
            "w_momentum": Cited(0.9, f"{_TS}:55 --momentum"),
            "w_weight_decay": Cited(3e-4, f"{_TS}:56 --weight_decay"),
            "grad_clip": Cited(5.0, f"{_TS}:78 --grad_clip"),
            "arch_lr": Cited(3e-4, f"{_TS}:81 --arch_learning_rate"),
            "arch_weight_decay": Cited(1e-3, f"{_TS}:82 --arch_weight_decay"),
            "edge_weighting": Cited({"name": "max-w"}, f"{cmd} --weighting_algorithm max_w"),
        },
        run={
            "search.epochs": Cited(120, f"{cmd} --epochs 120"),
            "search.batch_size": Cited(64 if grid else 48, f"{cmd} --batch_size {64 if grid else 48}"),
            "seed": Cited(10 if grid else 22, f"{cmd} --seed {10 if grid else 22}"),
        },
        notes="the official search also augments with cutout and AutoAugment (not in nasfw's datasets)",
    )


OPTIMIZER_PRESETS: dict[str, Any] = {
    "paper": _optimizer_paper,
    "tiny": Recipe(source="nasfw: smallest acting settings",
                   params={"lr_schedule.params.warmup_epochs": Cited(0, "no lr warm-up in a 1-epoch run")}),
}

#: The sharp cell spaces (sharp, sharper, darts-ssc): the README's search supernet.
SHARP_SPACE_PRESETS = {
    "paper": Recipe(source="sharpDARTS README search commands",
                    params={"layers": Cited(8, f"{_MAXW} --layers_of_cells 8"),
                            "steps": Cited(4, f"{_MAXW} --layers_in_cells 4"),
                            "init_channels": Cited(16, f"{_MAXW} --init_channels 16"),
                            "mid_channels": Cited(32, f"{_TS}:64 --mid_channels 32")}),
    "tiny": Recipe(source="nasfw: the smallest supernet with a normal and a reduction cell",
                   params={"layers": Cited(3, "cell 0 normal, cells 1-2 reduction"),
                           "init_channels": Cited(4, "CPU test size"), "mid_channels": Cited(4, "CPU test size"),
                           "steps": Cited(2, "two intermediate nodes")}),
}

HYPERCUBOID_PRESETS = {
    "paper": Recipe(source="sharpDARTS README multi-channel search command",
                    params={"init_channels": Cited(36, f"{_GRID} --init_channels 36"),
                            "layers": Cited(8, f"{_TS}:65 --layers_of_cells default 8"),
                            "steps": Cited(4, f"{_TS}:66 --layers_in_cells default 4")}),
    "tiny": Recipe(source="nasfw: a small grid",
                   params={"init_channels": Cited(4, "CPU test size"), "steps": Cited(2, "two widths"),
                           "layers": Cited(2, "one (stride 1, stride 2) layer"),
                           "head_channels": Cited(8, "CPU test size")}),
}
