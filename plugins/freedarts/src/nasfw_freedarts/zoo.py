"""Published FreeDARTS (v2) genotypes, transcribed from anonymous-submission1991/FreeDARTS
``DARTS_CNN/genotypes.py`` @93375fa7 (searched on the DARTS space).

Shipped: the two that were retrained in the repository's logs (20-cell SynFlow search seed 1, "FreeDARTS†";
ImageNet-shaped SynFlow search seed 3, "FreeDARTS‡"), the five 8-cell SynFlow seeds ("FreeDARTS") and the
five 8-cell SNIP-α and GraSP-α seeds. The 8-cell SynFlow seeds come from the notebook's train-mode-BN
scoring, which has no signal on this space (see the README): their ops are what rounding chose.
"""

from __future__ import annotations

from nasfw.genotype import Genotype, GenotypeEdge, ZooEntry

SOURCE = ("Zhang et al., FreeDARTS (arXiv 2106.11542 v2); anonymous-submission1991/FreeDARTS "
          "DARTS_CNN/genotypes.py @93375fa7")

Pairs = list[tuple[str, int]]

SYNFLOW_20CELLS_SEED1: dict[str, Pairs] = {
    "normal": [("avg_pool_3x3", 1), ("dil_conv_3x3", 0), ("sep_conv_3x3", 2), ("sep_conv_5x5", 1),
               ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_5x5", 0), ("avg_pool_3x3", 3)],
    "reduce": [("avg_pool_3x3", 1), ("dil_conv_5x5", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
               ("avg_pool_3x3", 0), ("max_pool_3x3", 2), ("skip_connect", 0), ("sep_conv_5x5", 4)],
}
SYNFLOW_IMAGENET_SEED3: dict[str, Pairs] = {
    "normal": [("sep_conv_3x3", 1), ("avg_pool_3x3", 0), ("sep_conv_3x3", 2), ("sep_conv_3x3", 1),
               ("sep_conv_5x5", 3), ("dil_conv_5x5", 0), ("sep_conv_3x3", 2), ("sep_conv_5x5", 1)],
    "reduce": [("sep_conv_5x5", 1), ("dil_conv_5x5", 0), ("max_pool_3x3", 0), ("max_pool_3x3", 2),
               ("sep_conv_5x5", 0), ("sep_conv_5x5", 2), ("dil_conv_5x5", 4), ("sep_conv_3x3", 0)],
}
SYNFLOW_8CELLS: list[dict[str, Pairs]] = [
    {"normal": [("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 0), ("dil_conv_5x5", 1),
                ("dil_conv_3x3", 0), ("dil_conv_3x3", 1), ("max_pool_3x3", 3), ("sep_conv_3x3", 0)],
     "reduce": [("avg_pool_3x3", 0), ("avg_pool_3x3", 1), ("dil_conv_5x5", 2), ("dil_conv_5x5", 0),
                ("avg_pool_3x3", 3), ("sep_conv_3x3", 2), ("dil_conv_5x5", 1), ("dil_conv_5x5", 3)]},
    {"normal": [("dil_conv_3x3", 0), ("dil_conv_5x5", 1), ("avg_pool_3x3", 1), ("sep_conv_3x3", 2),
                ("sep_conv_3x3", 2), ("sep_conv_3x3", 0), ("dil_conv_3x3", 4), ("sep_conv_5x5", 3)],
     "reduce": [("dil_conv_5x5", 0), ("sep_conv_3x3", 1), ("sep_conv_5x5", 1), ("sep_conv_5x5", 2),
                ("dil_conv_5x5", 2), ("sep_conv_5x5", 3), ("dil_conv_5x5", 2), ("avg_pool_3x3", 1)]},
    {"normal": [("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_5x5", 2), ("sep_conv_3x3", 0),
                ("sep_conv_5x5", 0), ("dil_conv_5x5", 2), ("sep_conv_5x5", 4), ("sep_conv_5x5", 3)],
     "reduce": [("skip_connect", 1), ("sep_conv_5x5", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0),
                ("sep_conv_3x3", 1), ("sep_conv_5x5", 3), ("sep_conv_3x3", 4), ("sep_conv_3x3", 3)]},
    {"normal": [("dil_conv_5x5", 0), ("dil_conv_5x5", 1), ("sep_conv_5x5", 2), ("dil_conv_5x5", 0),
                ("dil_conv_5x5", 1), ("dil_conv_5x5", 3), ("sep_conv_3x3", 2), ("avg_pool_3x3", 1)],
     "reduce": [("dil_conv_5x5", 0), ("dil_conv_5x5", 1), ("sep_conv_5x5", 2), ("sep_conv_5x5", 0),
                ("sep_conv_5x5", 3), ("skip_connect", 0), ("sep_conv_3x3", 4), ("sep_conv_3x3", 2)]},
    {"normal": [("sep_conv_5x5", 0), ("sep_conv_3x3", 1), ("sep_conv_5x5", 0), ("dil_conv_5x5", 2),
                ("avg_pool_3x3", 0), ("avg_pool_3x3", 1), ("sep_conv_5x5", 3), ("sep_conv_5x5", 1)],
     "reduce": [("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_3x3", 1), ("sep_conv_5x5", 2),
                ("sep_conv_3x3", 3), ("sep_conv_5x5", 2), ("sep_conv_3x3", 2), ("sep_conv_3x3", 4)]},
]

SNIP_8CELLS: list[dict[str, Pairs]] = [
    {"normal": [("skip_connect", 0), ("skip_connect", 1), ("dil_conv_3x3", 2), ("sep_conv_3x3", 1),
                ("dil_conv_3x3", 0), ("sep_conv_5x5", 1), ("dil_conv_3x3", 0), ("dil_conv_5x5", 4)],
     "reduce": [("sep_conv_3x3", 0), ("sep_conv_5x5", 1), ("dil_conv_3x3", 1), ("dil_conv_3x3", 0),
                ("avg_pool_3x3", 3), ("sep_conv_3x3", 2), ("sep_conv_5x5", 4), ("sep_conv_3x3", 3)]},
    {"normal": [("dil_conv_3x3", 0), ("dil_conv_5x5", 1), ("sep_conv_3x3", 2), ("dil_conv_5x5", 0),
                ("max_pool_3x3", 0), ("dil_conv_3x3", 1), ("avg_pool_3x3", 0), ("dil_conv_5x5", 2)],
     "reduce": [("max_pool_3x3", 0), ("dil_conv_3x3", 1), ("sep_conv_5x5", 1), ("sep_conv_5x5", 2),
                ("dil_conv_5x5", 2), ("sep_conv_3x3", 1), ("avg_pool_3x3", 1), ("sep_conv_3x3", 4)]},
    {"normal": [("max_pool_3x3", 0), ("dil_conv_5x5", 1), ("dil_conv_5x5", 1), ("dil_conv_3x3", 2),
                ("skip_connect", 0), ("dil_conv_5x5", 1), ("dil_conv_3x3", 0), ("max_pool_3x3", 3)],
     "reduce": [("max_pool_3x3", 1), ("sep_conv_5x5", 0), ("dil_conv_5x5", 0), ("sep_conv_3x3", 1),
                ("sep_conv_5x5", 2), ("avg_pool_3x3", 0), ("sep_conv_3x3", 3), ("sep_conv_5x5", 2)]},
    {"normal": [("max_pool_3x3", 0), ("skip_connect", 1), ("skip_connect", 0), ("sep_conv_5x5", 2),
                ("dil_conv_5x5", 3), ("sep_conv_3x3", 0), ("sep_conv_3x3", 2), ("max_pool_3x3", 4)],
     "reduce": [("sep_conv_3x3", 0), ("avg_pool_3x3", 1), ("sep_conv_5x5", 2), ("avg_pool_3x3", 1),
                ("sep_conv_5x5", 3), ("sep_conv_3x3", 2), ("dil_conv_5x5", 4), ("skip_connect", 1)]},
    {"normal": [("avg_pool_3x3", 1), ("avg_pool_3x3", 0), ("sep_conv_5x5", 0), ("max_pool_3x3", 1),
                ("dil_conv_3x3", 3), ("avg_pool_3x3", 1), ("sep_conv_5x5", 3), ("sep_conv_5x5", 1)],
     "reduce": [("avg_pool_3x3", 1), ("avg_pool_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 2),
                ("max_pool_3x3", 0), ("sep_conv_3x3", 3), ("sep_conv_3x3", 4), ("sep_conv_5x5", 1)]},
]
GRASP_8CELLS: list[dict[str, Pairs]] = [
    {"normal": [("sep_conv_3x3", 1), ("skip_connect", 0), ("max_pool_3x3", 2), ("sep_conv_3x3", 0),
                ("dil_conv_3x3", 0), ("dil_conv_3x3", 2), ("sep_conv_5x5", 1), ("max_pool_3x3", 3)],
     "reduce": [("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("max_pool_3x3", 2), ("dil_conv_3x3", 0),
                ("dil_conv_5x5", 0), ("dil_conv_3x3", 1), ("avg_pool_3x3", 0), ("skip_connect", 1)]},
    {"normal": [("max_pool_3x3", 0), ("avg_pool_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 2),
                ("dil_conv_5x5", 2), ("dil_conv_3x3", 1), ("sep_conv_3x3", 2), ("dil_conv_5x5", 1)],
     "reduce": [("max_pool_3x3", 0), ("sep_conv_3x3", 1), ("max_pool_3x3", 1), ("avg_pool_3x3", 2),
                ("dil_conv_3x3", 3), ("max_pool_3x3", 0), ("sep_conv_3x3", 3), ("avg_pool_3x3", 2)]},
    {"normal": [("dil_conv_5x5", 1), ("max_pool_3x3", 0), ("sep_conv_3x3", 0), ("dil_conv_3x3", 2),
                ("max_pool_3x3", 2), ("avg_pool_3x3", 1), ("sep_conv_3x3", 3), ("dil_conv_5x5", 2)],
     "reduce": [("skip_connect", 1), ("sep_conv_5x5", 0), ("sep_conv_5x5", 2), ("dil_conv_5x5", 0),
                ("dil_conv_3x3", 2), ("dil_conv_5x5", 3), ("sep_conv_3x3", 4), ("dil_conv_5x5", 2)]},
    {"normal": [("dil_conv_5x5", 0), ("skip_connect", 1), ("dil_conv_5x5", 0), ("skip_connect", 1),
                ("sep_conv_5x5", 2), ("dil_conv_5x5", 3), ("sep_conv_3x3", 2), ("dil_conv_3x3", 4)],
     "reduce": [("sep_conv_3x3", 0), ("avg_pool_3x3", 1), ("skip_connect", 0), ("sep_conv_5x5", 2),
                ("sep_conv_5x5", 3), ("max_pool_3x3", 2), ("dil_conv_5x5", 3), ("dil_conv_5x5", 4)]},
    {"normal": [("avg_pool_3x3", 0), ("dil_conv_3x3", 1), ("sep_conv_5x5", 0), ("sep_conv_3x3", 1),
                ("dil_conv_3x3", 3), ("max_pool_3x3", 1), ("sep_conv_5x5", 0), ("sep_conv_5x5", 3)],
     "reduce": [("dil_conv_5x5", 1), ("avg_pool_3x3", 0), ("dil_conv_5x5", 2), ("dil_conv_3x3", 1),
                ("avg_pool_3x3", 3), ("sep_conv_5x5", 0), ("sep_conv_3x3", 4), ("max_pool_3x3", 3)]},
]


def genotype(cells: dict[str, Pairs]) -> Genotype:
    """A DARTS genotype from the reference ``[(op, input), ...]`` lists (two inputs per node, nodes 2..5)."""
    return Genotype(space="darts", cells={
        cell: [GenotypeEdge(node=2 + i // 2, input=inp, op=op) for i, (op, inp) in enumerate(pairs)]
        for cell, pairs in cells.items()
    })


ZOO: dict[str, ZooEntry] = {
    "freedarts-synflow-20cells-seed1": ZooEntry(
        genotype=genotype(SYNFLOW_20CELLS_SEED1), source=SOURCE + " SYNFLOW_oneshot_20cells_seed1",
        notes="FreeDARTS† (20-cell search). Repo log: CIFAR-10 best 97.48 % at C=38, 20 cells, 3.65 MB params; "
              "README 2.45 % error"),
    "freedarts-synflow-imagenet-seed3": ZooEntry(
        genotype=genotype(SYNFLOW_IMAGENET_SEED3), source=SOURCE + " SYNFLOW_ImageNet_oneshot_seed3",
        notes="FreeDARTS‡ (ImageNet-shaped search). Repo log: CIFAR-10 best 97.36 % at C=36, 20 cells, 4.14 MB params"),
    **{f"freedarts-synflow-seed{i}": ZooEntry(
        genotype=genotype(cells), source=SOURCE + f" SYNFLOW_oneshot_seed{i}",
        notes="FreeDARTS 8-cell SynFlow search; no retraining log in the repository")
       for i, cells in enumerate(SYNFLOW_8CELLS)},
    **{f"freedarts-{m}-seed{i}": ZooEntry(
        genotype=genotype(cells), source=SOURCE + f" {ref}_oneshot_seed{i}",
        notes=f"FreeDARTS 8-cell {m.upper()}-α search; no retraining log in the repository")
       for m, ref, seeds in (("snip", "SNIP", SNIP_8CELLS), ("grasp", "GraSP", GRASP_8CELLS))
       for i, cells in enumerate(seeds)},
}
