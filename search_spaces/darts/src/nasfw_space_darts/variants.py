"""Variants of the DARTS space used by DARTS-PT, ZARTS and RobustDARTS, as presets of ``darts``.

``darts-7op`` drops ``none`` (darts-pt's ``s5``, ZARTS' ``s6``). ``s1``-``s4`` are RobustDARTS'
reduced spaces (Zela et al., ICLR 2020), transcribed from ``automl/RobustDARTS`` ``src/spaces.py``
(checked against commits 3dec3fe and 07f54ba), which darts-pt and ZARTS copy verbatim: S1 has its
own pair of ops per edge, S2 {skip, sep3}, S3 {none, skip, sep3}, S4 {noise, sep3} on every edge of
both cell types.
"""

from __future__ import annotations

from nasfw.components import Preset
from nasfw_space_darts.space import PRIMITIVES

SKIP, SEP3, DIL3, DIL5 = "skip_connect", "sep_conv_3x3", "dil_conv_3x3", "dil_conv_5x5"
MAX, AVG = "max_pool_3x3", "avg_pool_3x3"

DARTS_7OP = [op for op in PRIMITIVES if op != "none"]

#: S1's per-edge op pairs, edge index 0..13 (node 0: edges 0-1, node 1: 2-4, node 2: 5-8, node 3: 9-13).
S1_EDGE_OPS: dict[str, list[list[str]]] = {
    "normal": [
        [SKIP, DIL3], [SKIP, DIL5],
        [SKIP, DIL5], [SKIP, SEP3], [SKIP, DIL3],
        [MAX, SKIP], [SKIP, SEP3], [SKIP, SEP3], [SKIP, DIL3],
        [SKIP, SEP3], [MAX, SKIP], [SKIP, DIL3], [DIL3, DIL5], [DIL3, DIL5],
    ],
    "reduce": [
        [MAX, AVG], [MAX, DIL3],
        [MAX, AVG], [MAX, AVG], [SKIP, DIL5],
        [MAX, AVG], [MAX, SEP3], [SKIP, DIL3], [SKIP, DIL5],
        [MAX, AVG], [MAX, AVG], [SKIP, DIL5], [SKIP, DIL5], [SKIP, DIL5],
    ],
}

#: ops of every edge in S2-S4 (both cell types)
UNIFORM_SPACES: dict[str, list[str]] = {
    "s2": [SKIP, SEP3],
    "s3": ["none", SKIP, SEP3],
    "s4": ["noise", SEP3],
}

PRESETS: dict[str, Preset] = {
    "darts-7op": Preset("darts", {"primitives": DARTS_7OP},
                        "DARTS space without `none` (7 ops; DARTS-PT, ZARTS)"),
    "s1": Preset("darts", {"edge_ops": S1_EDGE_OPS},
                 "RobustDARTS S1: a fixed pair of ops per edge (the two strongest of a DARTS search)"),
    "s2": Preset("darts", {"primitives": UNIFORM_SPACES["s2"]}, "RobustDARTS S2: {skip_connect, sep_conv_3x3}"),
    "s3": Preset("darts", {"primitives": UNIFORM_SPACES["s3"]},
                 "RobustDARTS S3: {none, skip_connect, sep_conv_3x3}"),
    "s4": Preset("darts", {"primitives": UNIFORM_SPACES["s4"]},
                 "RobustDARTS S4: {noise, sep_conv_3x3}; noise = parameter-free N(0, 1)"),
}
