"""Published sharpDARTS genotypes, transcribed from ahundt/sharpDARTS ``cnn/genotypes.py``.

Checked against the stored revision 8fd6575 of that file: ``SHARPSEPCONV_DARTS`` (=
``DARTS_PRIMITIVES_DIL_IS_SEPCONV``, searched over DARTS' 8 ops built as SharpSepConv, scalar
weighting) and ``SHARP_DARTS`` (= ``CHOKE_FLOOD_DIL_IS_SEP_CONV``, searched over ``PRIMITIVES``).
The Max-W and SHARPER genotypes of later revisions could not be verified and are not shipped.
"""

from __future__ import annotations

from nasfw.genotype import Genotype, GenotypeEdge, ZooEntry

SOURCE = "Hundt et al. 2019, sharpDARTS (arXiv 1903.09900); ahundt/sharpDARTS cnn/genotypes.py @8fd6575"

Pairs = list[tuple[str, int]]

SHARPSEPCONV_DARTS: dict[str, Pairs] = {
    "normal": [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 2),
               ("skip_connect", 0), ("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 1)],
    "reduce": [("max_pool_3x3", 0), ("skip_connect", 1), ("skip_connect", 2), ("avg_pool_3x3", 0),
               ("skip_connect", 2), ("avg_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 3)],
}

SHARP_DARTS: dict[str, Pairs] = {
    "normal": [("choke_conv_3x3", 0), ("choke_conv_3x3", 1), ("skip_connect", 0), ("choke_conv_3x3", 1),
               ("skip_connect", 0), ("skip_connect", 1), ("skip_connect", 0), ("skip_connect", 1)],
    "reduce": [("max_pool_3x3", 0), ("skip_connect", 1), ("max_pool_3x3", 0), ("skip_connect", 2),
               ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("flood_conv_3x3", 0)],
}

#: DARTS_V2 as sharpDARTS trains it with ``--ops OPS`` ("DARTS + SSC, no search")
DARTS_V2: dict[str, Pairs] = {
    "normal": [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
               ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    "reduce": [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
               ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
}


def genotype(space: str, cells: dict[str, Pairs]) -> Genotype:
    """A DARTS-cell genotype from the reference ``[(op, input), ...]`` lists (2 inputs per node)."""
    return Genotype(space=space, cells={
        cell: [GenotypeEdge(node=2 + i // 2, input=inp, op=op) for i, (op, inp) in enumerate(pairs)]
        for cell, pairs in cells.items()
    })


ZOO: dict[str, ZooEntry] = {
    "sharpsepconv-darts": ZooEntry(
        genotype=genotype("darts-ssc", SHARPSEPCONV_DARTS), source=SOURCE + " SHARPSEPCONV_DARTS",
        notes="CIFAR-10 1.98±0.07 % (AutoAugment, best-epoch test error), 3.6 M params at C=36, 20 cells"),
    "sharp-darts": ZooEntry(
        genotype=genotype("sharp", SHARP_DARTS), source=SOURCE + " SHARP_DARTS",
        notes="CIFAR-10 2.29±0.06 % (AutoAugment, best-epoch test error), 1.98 M params at C=36, 20 cells, C_mid 32"),
    "darts-v2-ssc": ZooEntry(
        genotype=genotype("darts-ssc", DARTS_V2), source=SOURCE + " DARTS_V2 (trained with --ops OPS)",
        notes="'DARTS + SSC, no search': CIFAR-10 2.05±0.14 %, 3.5 M params (log: 3.529270 MB)"),
}
