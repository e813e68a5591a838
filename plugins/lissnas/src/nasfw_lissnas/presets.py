"""The ``paper`` and ``tiny`` presets of the shrinkers.

LISSNAS publishes none of its settings (no code; the paper's numbers could not be read — methods note
``lissnas_peers.md`` §A.4), so its ``paper`` preset states nasfw's reconstruction values, each marked as
ours; the same holds for the ABS-style operational-pruning baseline. ``tiny`` scores with a data-free proxy on a
small network, so the shrinkers act (the space shrinks) without the NB201 table.
"""

from __future__ import annotations

from nasfw.presets import Cited, Recipe

_OURS = "not published: nasfw's reconstruction default (lissnas_peers.md §A.4 lists what the sources leave open)"

LISSNAS_PRESETS = {
    "paper": Recipe(
        source="LISSNAS (Gopal et al., IJCAI 2023): sample → seeds → pockets → repeat until the mean plateaus",
        params={"samples": Cited(100, _OURS), "seeds": Cited(10, _OURS), "radius": Cited(1, _OURS),
                "keep_quantile": Cited(0.5, _OURS), "max_iterations": Cited(10, _OURS),
                "tolerance": Cited(0.0, "the paper stops when the mean accuracy plateaus or drops (EPS = 0 is ours)")},
        notes="the paper's own estimator and counts are unknown; see the plugin README"),
    "tiny": Recipe(
        source="nasfw: the smallest settings at which LISSNAS shrinks, with a data-free proxy",
        params={"samples": Cited(12, "CPU test size"), "seeds": Cited(2, "CPU test size"),
                "max_iterations": Cited(2, "CPU test size"), "evaluator": Cited("proxy", "no benchmark table needed"),
                "evaluator_params": Cited({"proxy": "synflow", "network": {"C": 4, "N": 1}, "batch_size": 4},
                                          "a tiny stand-alone network per score")}),
}

OP_PRUNE_PRESETS = {
    "paper": Recipe(
        source="operational pruning as the LISSNAS introduction describes ABS (Hu et al. 2020)",
        params={"samples": Cited(100, _OURS), "rounds": Cited(2, _OURS), "prune_per_round": Cited(1, _OURS)}),
    "tiny": Recipe(
        source="nasfw: the smallest settings at which op-prune shrinks, with a data-free proxy",
        params={"samples": Cited(12, "CPU test size"), "rounds": Cited(1, "one op pruned"),
                "score_members": Cited(False, "no per-member scores needed"),
                "evaluator": Cited("proxy", "no benchmark table needed"),
                "evaluator_params": Cited({"proxy": "synflow", "network": {"C": 4, "N": 1}, "batch_size": 4},
                                          "a tiny stand-alone network per score")}),
}
