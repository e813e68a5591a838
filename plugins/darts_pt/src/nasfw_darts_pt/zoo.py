"""DARTS-PT's published cells, transcribed from the official ``sota/cnn/genotypes.py``.

Each entry is ``(normal, reduce)`` in the reference's ``[(op, input), ...]`` order (two inputs per
intermediate node 2..5, ``concat=range(2, 6)``). ``darts_pt_*`` are DARTS+PT cells, ``blank_pt_*`` the
fixed-α variant; ``s5`` is the DARTS space as darts-pt searches it (7 ops, no ``none``), ``s1``-``s4``
the RobustDARTS spaces, all searched on CIFAR-10 (seeds ``_0``.. / ``_1``, ``_2``). The reference's
trailing comments (``# 2.85`` etc.) are param sizes in M for ``s5`` and are kept in the notes.
"""

from __future__ import annotations

from nasfw.genotype import Genotype, GenotypeEdge, ZooEntry

SOURCE = ("Wang et al., Rethinking Architecture Selection in Differentiable NAS, ICLR 2021; "
          "github.com/ruocwang/darts-pt sota/cnn/genotypes.py @ a5393d5c9731a6eff0bc379f3153bf24a2ab8ec5")

Cell = list[tuple[str, int]]

# name in the reference -> (space, normal, reduce, trailing comment)
_CELLS: dict[str, tuple[str, Cell, Cell, str]] = {
    # ---- DARTS space (darts-pt's s5: the 7-op DARTS space) ----
    "darts_pt_s5_0": ("darts-7op",
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_5x5", 0), ("dil_conv_3x3", 1), ("skip_connect", 0),
         ("skip_connect", 2), ("skip_connect", 0), ("max_pool_3x3", 4)],
        [("sep_conv_3x3", 0), ("avg_pool_3x3", 1), ("dil_conv_5x5", 1), ("dil_conv_3x3", 2), ("avg_pool_3x3", 0),
         ("max_pool_3x3", 2), ("sep_conv_3x3", 2), ("skip_connect", 4)], "2.85 (param size)"),
    "darts_pt_s5_1": ("darts-7op",
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("dil_conv_3x3", 1), ("max_pool_3x3", 0),
         ("skip_connect", 2), ("skip_connect", 0), ("dil_conv_3x3", 4)],
        [("dil_conv_5x5", 0), ("avg_pool_3x3", 1), ("max_pool_3x3", 0), ("sep_conv_5x5", 2), ("max_pool_3x3", 1),
         ("dil_conv_3x3", 3), ("sep_conv_5x5", 0), ("sep_conv_3x3", 4)], "3.05"),
    "darts_pt_s5_2": ("darts-7op",
        [("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("dil_conv_3x3", 1), ("skip_connect", 2),
         ("dil_conv_3x3", 3), ("max_pool_3x3", 1), ("skip_connect", 2)],
        [("avg_pool_3x3", 0), ("max_pool_3x3", 1), ("avg_pool_3x3", 0), ("sep_conv_3x3", 1), ("dil_conv_5x5", 2),
         ("skip_connect", 3), ("sep_conv_3x3", 2), ("sep_conv_5x5", 4)], "2.66"),
    "darts_pt_s5_3": ("darts-7op",
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 0),
         ("skip_connect", 2), ("sep_conv_3x3", 1), ("skip_connect", 3)],
        [("avg_pool_3x3", 0), ("sep_conv_5x5", 1), ("max_pool_3x3", 1), ("skip_connect", 2), ("dil_conv_5x5", 1),
         ("max_pool_3x3", 3), ("sep_conv_5x5", 2), ("skip_connect", 3)], "3.33"),
    "blank_pt_s5_0": ("darts-7op",
        [("sep_conv_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("avg_pool_3x3", 1),
         ("skip_connect", 3), ("max_pool_3x3", 0), ("avg_pool_3x3", 2)],
        [("skip_connect", 0), ("sep_conv_5x5", 1), ("dil_conv_3x3", 1), ("sep_conv_5x5", 2), ("max_pool_3x3", 0),
         ("skip_connect", 3), ("max_pool_3x3", 0), ("max_pool_3x3", 2)], "3.04 (param size)"),
    "blank_pt_s5_1": ("darts-7op",
        [("avg_pool_3x3", 0), ("avg_pool_3x3", 1), ("sep_conv_3x3", 0), ("max_pool_3x3", 2), ("skip_connect", 2),
         ("sep_conv_3x3", 3), ("sep_conv_5x5", 0), ("sep_conv_5x5", 1)],
        [("max_pool_3x3", 0), ("dil_conv_5x5", 1), ("sep_conv_3x3", 0), ("skip_connect", 1), ("avg_pool_3x3", 2),
         ("max_pool_3x3", 3), ("sep_conv_5x5", 3), ("sep_conv_5x5", 4)], "3.15"),
    "blank_pt_s5_2": ("darts-7op",
        [("avg_pool_3x3", 0), ("dil_conv_3x3", 1), ("sep_conv_5x5", 0), ("max_pool_3x3", 1), ("max_pool_3x3", 0),
         ("skip_connect", 1), ("sep_conv_5x5", 1), ("avg_pool_3x3", 2)],
        [("sep_conv_3x3", 0), ("avg_pool_3x3", 1), ("avg_pool_3x3", 0), ("sep_conv_5x5", 1), ("max_pool_3x3", 0),
         ("sep_conv_5x5", 3), ("max_pool_3x3", 2), ("dil_conv_5x5", 4)], "2.58"),
    "blank_pt_s5_3": ("darts-7op",
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 1), ("max_pool_3x3", 2),
         ("sep_conv_3x3", 3), ("avg_pool_3x3", 0), ("sep_conv_5x5", 1)],
        [("dil_conv_5x5", 0), ("sep_conv_5x5", 1), ("sep_conv_5x5", 0), ("dil_conv_3x3", 1), ("avg_pool_3x3", 1),
         ("skip_connect", 2), ("max_pool_3x3", 0), ("skip_connect", 4)], "3.40"),
    # ---- RobustDARTS S1-S4, CIFAR-10 ----
    "darts_pt_s1_1": ("s1",
        [("skip_connect", 0), ("skip_connect", 1), ("skip_connect", 0), ("skip_connect", 1), ("skip_connect", 0),
         ("skip_connect", 1), ("dil_conv_3x3", 3), ("dil_conv_5x5", 4)],
        [("max_pool_3x3", 0), ("dil_conv_3x3", 1), ("max_pool_3x3", 0), ("max_pool_3x3", 1), ("sep_conv_3x3", 1),
         ("skip_connect", 3), ("skip_connect", 2), ("dil_conv_5x5", 3)], "1.87"),
    "darts_pt_s1_2": ("s1",
        [("dil_conv_3x3", 0), ("skip_connect", 1), ("skip_connect", 0), ("skip_connect", 2), ("skip_connect", 0),
         ("skip_connect", 3), ("dil_conv_3x3", 3), ("dil_conv_5x5", 4)],
        [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("max_pool_3x3", 0), ("max_pool_3x3", 1), ("sep_conv_3x3", 1),
         ("skip_connect", 2), ("skip_connect", 2), ("dil_conv_5x5", 4)], "2.02"),
    "darts_pt_s2_1": ("s2",
        [("skip_connect", 0), ("skip_connect", 1), ("sep_conv_3x3", 0), ("skip_connect", 2), ("sep_conv_3x3", 1),
         ("skip_connect", 3), ("sep_conv_3x3", 1), ("sep_conv_3x3", 4)],
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2), ("sep_conv_3x3", 0),
         ("skip_connect", 2), ("sep_conv_3x3", 1), ("skip_connect", 4)], "3.09"),
    "darts_pt_s2_2": ("s2",
        [("skip_connect", 0), ("sep_conv_3x3", 1), ("skip_connect", 1), ("skip_connect", 2), ("sep_conv_3x3", 0),
         ("skip_connect", 3), ("skip_connect", 3), ("sep_conv_3x3", 4)],
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2), ("sep_conv_3x3", 1),
         ("sep_conv_3x3", 3), ("sep_conv_3x3", 1), ("skip_connect", 3)], "2.79"),
    "darts_pt_s3_1": ("s3",
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 1), ("skip_connect", 0),
         ("skip_connect", 2), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1)],
        [("sep_conv_3x3", 0), ("skip_connect", 1), ("sep_conv_3x3", 0), ("skip_connect", 2), ("sep_conv_3x3", 0),
         ("skip_connect", 3), ("skip_connect", 3), ("sep_conv_3x3", 4)], "3.42"),
    "darts_pt_s3_2": ("s3",
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 1), ("skip_connect", 0),
         ("sep_conv_3x3", 3), ("sep_conv_3x3", 1), ("skip_connect", 4)],
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 1), ("sep_conv_3x3", 0),
         ("sep_conv_3x3", 1), ("sep_conv_3x3", 2), ("skip_connect", 3)], "3.54"),
    "darts_pt_s4_1": ("s4",
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0),
         ("sep_conv_3x3", 1), ("sep_conv_3x3", 1), ("sep_conv_3x3", 2)],
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 2), ("sep_conv_3x3", 0),
         ("sep_conv_3x3", 3), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1)], "4.7"),
    "darts_pt_s4_2": ("s4",
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0),
         ("sep_conv_3x3", 3), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1)],
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0),
         ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 2)], "4.7"),
    "blank_pt_s1_1": ("s1",
        [("skip_connect", 0), ("dil_conv_5x5", 1), ("sep_conv_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
         ("skip_connect", 3), ("sep_conv_3x3", 0), ("max_pool_3x3", 1)],
        [("avg_pool_3x3", 0), ("max_pool_3x3", 1), ("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2),
         ("dil_conv_5x5", 3), ("dil_conv_5x5", 2), ("skip_connect", 3)], "2.36"),
    "blank_pt_s1_2": ("s1",
        [("skip_connect", 0), ("skip_connect", 1), ("sep_conv_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
         ("sep_conv_3x3", 1), ("skip_connect", 2), ("dil_conv_5x5", 3)],
        [("avg_pool_3x3", 0), ("dil_conv_3x3", 1), ("max_pool_3x3", 1), ("dil_conv_5x5", 2), ("avg_pool_3x3", 0),
         ("skip_connect", 3), ("skip_connect", 2), ("dil_conv_5x5", 3)], "2.39"),
    "blank_pt_s2_1": ("s2",
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 2), ("sep_conv_3x3", 1),
         ("sep_conv_3x3", 2), ("sep_conv_3x3", 0), ("skip_connect", 3)],
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 1), ("skip_connect", 2), ("sep_conv_3x3", 0),
         ("skip_connect", 3), ("sep_conv_3x3", 2), ("skip_connect", 4)], "3.45"),
    "blank_pt_s2_2": ("s2",
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 2), ("sep_conv_3x3", 0),
         ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 4)],
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 2), ("sep_conv_3x3", 0),
         ("skip_connect", 1), ("sep_conv_3x3", 1), ("sep_conv_3x3", 2)], "4.3"),
    "blank_pt_s3_1": ("s3",
        [("sep_conv_3x3", 0), ("skip_connect", 1), ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0),
         ("skip_connect", 2), ("skip_connect", 3), ("skip_connect", 4)],
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 2), ("sep_conv_3x3", 0),
         ("sep_conv_3x3", 1), ("sep_conv_3x3", 1), ("sep_conv_3x3", 3)], "2.9"),
    "blank_pt_s3_2": ("s3",
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 1), ("sep_conv_3x3", 0),
         ("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 2)],
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0),
         ("skip_connect", 3), ("skip_connect", 2), ("skip_connect", 3)], "3.81"),
    "blank_pt_s4_1": ("s4",
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0),
         ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1)],
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 2), ("sep_conv_3x3", 0),
         ("sep_conv_3x3", 3), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1)], "4.7"),
    "blank_pt_s4_2": ("s4",
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0),
         ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1)],
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0),
         ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1)], "4.7"),
}


def _genotype(space: str, normal: Cell, reduce: Cell) -> Genotype:
    cells = {name: [GenotypeEdge(node=2 + i // 2, input=inp, op=op) for i, (op, inp) in enumerate(pairs)]
             for name, pairs in (("normal", normal), ("reduce", reduce))}
    return Genotype(space=space, cells=cells, extra={})


def zoo_entries() -> dict[str, ZooEntry]:
    """Zoo names are the reference's with dashes: ``darts-pt-s5-0``, ``blank-pt-s1-1``, ..."""
    out = {}
    for ref_name, (space, normal, reduce, comment) in _CELLS.items():
        variant = "DARTS+PT" if ref_name.startswith("darts_pt") else "DARTS+PT with fixed α (blank)"
        out[ref_name.replace("_", "-")] = ZooEntry(
            genotype=_genotype(space, normal, reduce), source=SOURCE,
            notes=f"{variant}, CIFAR-10 search; reference name {ref_name}; reference comment '# {comment}'")
    return out
