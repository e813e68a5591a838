"""Published sharpDARTS genotypes, transcribed from ahundt/sharpDARTS ``cnn/genotypes.py``.

``SHARPSEPCONV_DARTS`` (= ``DARTS_PRIMITIVES_DIL_IS_SEPCONV``, searched over DARTS' 8 ops built as
SharpSepConv, scalar weighting) and ``SHARP_DARTS`` (= ``CHOKE_FLOOD_DIL_IS_SEP_CONV``, searched over
``PRIMITIVES``) as in revision 8fd6575; the Max-W and SHARPER searches as in master 6f593d4 (the file's last
revision): ``SHARPSEPCONV_DARTS_MAX_W`` (its second definition, which is the one the module ends up with and
the one the logged parameter count is for), ``SHARP_DARTS_MAX_W``, ``SHARPER_SCALAR`` and ``SHARPER_MAX_W``
(the paper's best ImageNet model, SharperDARTS-MaxW). Each comes with the parameter count the official
``NetworkCIFAR`` / ``NetworkImageNet`` of 6f593d4 gives it in the logged setting; the tests check ours
equals it.
"""

from __future__ import annotations

from nasfw.genotype import Genotype, GenotypeEdge, ZooEntry

PAPER = "Hundt et al. 2019, sharpDARTS (arXiv 1903.09900); ahundt/sharpDARTS cnn/genotypes.py"
SOURCE = PAPER + " @8fd6575"
SOURCE_MASTER = PAPER + " @6f593d4"

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

#: Max-W search over DARTS' ops (SharpSepConv), log of search-20190321-024555 (second definition in the file)
SHARPSEPCONV_DARTS_MAX_W: dict[str, Pairs] = {
    "normal": [("dil_conv_3x3", 0), ("dil_conv_5x5", 1), ("sep_conv_3x3", 2), ("dil_conv_5x5", 1),
               ("avg_pool_3x3", 2), ("sep_conv_3x3", 0), ("avg_pool_3x3", 4), ("max_pool_3x3", 3)],
    "reduce": [("max_pool_3x3", 0), ("skip_connect", 1), ("sep_conv_5x5", 0), ("skip_connect", 2),
               ("sep_conv_5x5", 0), ("dil_conv_5x5", 3), ("sep_conv_5x5", 4), ("skip_connect", 3)],
}

#: Max-W search over ``PRIMITIVES``, log of search-20190323-002241
SHARP_DARTS_MAX_W: dict[str, Pairs] = {
    "normal": [("sep_conv_3x3", 0), ("choke_conv_3x3", 1), ("skip_connect", 0), ("dil_conv_3x3", 2),
               ("dil_flood_conv_3x3", 3), ("flood_conv_3x3", 0), ("dil_flood_conv_3x3", 0), ("flood_conv_3x3", 3)],
    "reduce": [("max_pool_3x3", 0), ("skip_connect", 1), ("dil_choke_conv_3x3", 0), ("dil_flood_conv_3x3", 2),
               ("dil_conv_3x3", 0), ("skip_connect", 3), ("flood_conv_3x3", 0), ("skip_connect", 3)],
}

#: scalar-weighting search over ``SHARPER_PRIMITIVES``, log of search-20190409-183345
SHARPER_SCALAR: dict[str, Pairs] = {
    "normal": [("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 1), ("skip_connect", 0),
               ("dil_flood_conv_3x3", 3), ("flood_conv_3x3", 1), ("dil_flood_conv_3x3", 3), ("dil_conv_3x3", 4)],
    "reduce": [("max_pool_3x3", 0), ("skip_connect", 1), ("skip_connect", 1), ("avg_pool_3x3", 0),
               ("avg_pool_3x3", 1), ("dil_flood_conv_3x3", 0), ("flood_conv_3x3", 3), ("skip_connect", 4)],
}

#: Max-W search over ``SHARPER_PRIMITIVES``, log of search-20190409-180403: the paper's SharperDARTS-MaxW
SHARPER_MAX_W: dict[str, Pairs] = {
    "normal": [("sep_conv_3x3", 0), ("dil_conv_5x5", 1), ("max_pool_3x3", 0), ("sep_conv_7x7", 2),
               ("avg_pool_3x3", 3), ("flood_conv_3x3", 0), ("flood_conv_3x3", 1), ("skip_connect", 2)],
    "reduce": [("flood_conv_5x5", 0), ("dil_flood_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2),
               ("sep_conv_3x3", 0), ("skip_connect", 2), ("dil_conv_5x5", 4), ("sep_conv_3x3", 0)],
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
    "sharpsepconv-darts-max-w": ZooEntry(
        genotype=genotype("darts-ssc", SHARPSEPCONV_DARTS_MAX_W), source=SOURCE_MASTER + " SHARPSEPCONV_DARTS_MAX_W",
        notes="Max-W search over DARTS' ops; 2,477,062 params at C=36, 14 cells (log: 2.477062 MB)"),
    "sharp-darts-max-w": ZooEntry(
        genotype=genotype("sharp", SHARP_DARTS_MAX_W), source=SOURCE_MASTER + " SHARP_DARTS_MAX_W",
        notes="Max-W search over PRIMITIVES; 5,902,558 params at C=36, 14 cells, C_mid 96 (log: 5.902558 MB)"),
    "sharper-scalar": ZooEntry(
        genotype=genotype("sharper", SHARPER_SCALAR), source=SOURCE_MASTER + " SHARPER_SCALAR",
        notes="scalar search over SHARPER_PRIMITIVES; 7,109,470 params at C=36, 20 cells (log: 7.109470 MB)"),
    "sharper-max-w": ZooEntry(
        genotype=genotype("sharper", SHARPER_MAX_W), source=SOURCE_MASTER + " SHARPER_MAX_W",
        notes="SharperDARTS-MaxW: ImageNet 24.0/7.3 % top-1/5 err, 8.3 M params at C=48, 14 cells; "
              "6,087,142 at C=36, 20 cells CIFAR (log: 6.087142 MB)"),
}
