"""Published DARTS-space genotypes (the zoo), transcribed from the authors' repository.

Each list is the reference code's ``normal`` / ``reduce`` list of ``(op, input)`` pairs: pairs ``2k`` and
``2k+1`` feed intermediate node ``k + 2``; inputs 0 and 1 are the outputs of cells k-2 and k-1.
"""

from __future__ import annotations

from nasfw.genotype import Genotype, GenotypeEdge, ZooEntry

DARTS_SOURCE = ("Liu, Simonyan & Yang, DARTS, ICLR 2019; github.com/quark0/darts cnn/genotypes.py "
                "(DARTS_V1 / DARTS_V2, normal_concat = reduce_concat = [2, 3, 4, 5])")

#: DARTS (first order), CIFAR-10 search: 3.00 ± 0.14 % test error, 3.3M params (paper Table 1). This released
#: cell counts 3.17M (3,169,414) at C = 36, 20 cells: DARTS_V2's 3,349,342 minus one dil_conv_3x3 per normal
#: cell (the reduction cells are parameter-free), so the table's 3.3M is not this cell's size.
DARTS_V1_PAIRS = {
    "normal": [("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
               ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
    "reduce": [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
               ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)],
}

#: DARTS (second order), CIFAR-10 search: 2.76 ± 0.09 % test error, 3.3M params; ImageNet 26.7 % top-1,
#: 4.7M params, 574M mult-adds (paper Tables 1 and 3).
DARTS_V2_PAIRS = {
    "normal": [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
               ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    "reduce": [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
               ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
}


def from_pairs(pairs: dict[str, list[tuple[str, int]]], space: str = "darts") -> Genotype:
    """A genotype from the reference code's per-cell ``(op, input)`` lists (two pairs per node)."""
    cells = {cell: [GenotypeEdge(node=2 + i // 2, input=inp, op=op) for i, (op, inp) in enumerate(lst)]
             for cell, lst in pairs.items()}
    return Genotype(space=space, cells=cells)


ZOO: dict[str, ZooEntry] = {
    "darts-v1": ZooEntry(genotype=from_pairs(DARTS_V1_PAIRS), source=DARTS_SOURCE,
                         notes="first-order DARTS; CIFAR-10 3.00 ± 0.14 % error, 3.3M params (paper; this released "
                               "cell has 3.17M)"),
    "darts-v2": ZooEntry(genotype=from_pairs(DARTS_V2_PAIRS), source=DARTS_SOURCE,
                         notes="second-order DARTS; CIFAR-10 2.76 ± 0.09 % error, 3.3M params; "
                               "ImageNet 26.7 % top-1, 4.7M params, 574M mult-adds"),
}
