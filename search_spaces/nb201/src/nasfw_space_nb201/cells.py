"""NB201 cell structure and its string form ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.

A cell has nodes 0 (input) .. 3 (output); node j sums one op on each earlier node, so there are six
edges in the order (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2) — the benchmark's order. A genotype
stores all six edges (a ``none`` edge is a decision too) under the cell type ``cell``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

from nasfw.errors import GenotypeError
from nasfw.genotype import Genotype, GenotypeEdge
from nasfw_space_nb201.ops import NB201_OPS

CELL = "cell"
NODES = 4
#: (node, input) of each edge, in the benchmark's order.
EDGES: tuple[tuple[int, int], ...] = tuple((j, i) for j in range(1, NODES) for i in range(j))


def to_string(ops: Sequence[str]) -> str:
    """Six ops (edge order) -> the NB201 string."""
    parts, k = [], 0
    for j in range(1, NODES):
        parts.append("|" + "|".join(f"{ops[k + i]}~{i}" for i in range(j)) + "|")
        k += j
    return "+".join(parts)


def from_string(text: str, ops: Sequence[str] = NB201_OPS) -> tuple[str, ...]:
    """The NB201 string -> six ops in edge order; a malformed string is a :class:`GenotypeError`."""
    text = text.strip()
    nodes = text.split("+")
    if len(nodes) != NODES - 1:
        raise GenotypeError(f"NB201 string '{text}' needs {NODES - 1} '+'-separated nodes like '|nor_conv_3x3~0|'")
    out: list[str] = []
    for j, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")):
            raise GenotypeError(f"node {j} of NB201 string '{text}' must look like '|op~0|op~1|'")
        items = [p for p in node.strip("|").split("|")]
        if len(items) != j:
            raise GenotypeError(f"node {j} of NB201 string '{text}' needs {j} inputs, got {len(items)}")
        for i, item in enumerate(items):
            op, sep, src = item.partition("~")
            if not sep or src != str(i):
                raise GenotypeError(f"'{item}' in NB201 string must be 'op~{i}' (inputs in order 0..{j - 1})")
            if op not in ops:
                raise GenotypeError(f"unknown NB201 op '{op}'; allowed: {', '.join(ops)}")
            out.append(op)
    return tuple(out)


def ops_of(genotype: Genotype) -> tuple[str, ...]:
    """The six ops of an NB201 genotype in edge order (every edge must be present exactly once)."""
    if set(genotype.cells) != {CELL}:
        raise GenotypeError(f"an NB201 genotype has one cell type '{CELL}', got {sorted(genotype.cells)}")
    found = {(e.node, e.input): e.op for e in genotype.cells[CELL]}
    if len(found) != len(genotype.cells[CELL]) or set(found) != set(EDGES):
        raise GenotypeError("an NB201 genotype needs exactly the six edges 0->1, 0->2, 1->2, 0->3, 1->3, 2->3")
    return tuple(found[e] for e in EDGES)


def make_genotype(ops: Sequence[str], space: str = "nb201") -> Genotype:
    if len(ops) != len(EDGES):
        raise GenotypeError(f"an NB201 cell has {len(EDGES)} edges, got {len(ops)} ops")
    return Genotype(space=space, cells={CELL: [GenotypeEdge(node=n, input=i, op=o) for (n, i), o in zip(EDGES, ops)]})


def all_cells(choices: Sequence[Sequence[str]]) -> Iterator[tuple[str, ...]]:
    """Every op tuple, given each edge's allowed ops (5^6 = 15,625 for the full space)."""
    return itertools.product(*choices)
