"""Entry point of nasfw-example-plugin (``[project.entry-points.nasfw] example = "nasfw_example.plugin"``)."""

from __future__ import annotations

from typing import Any

from nasfw import hookimpl
from nasfw.components import Preset
from nasfw_example.selector import SampleBestSelector
from nasfw_example.space import TINY, MobileChainSpace


@hookimpl
def nasfw_register_search_spaces(register: Any) -> None:
    register("mbv2", MobileChainSpace,
             description="MobileNetV2-style chain: per-layer kernel {3,5,7} x expansion {3,6} (+ skip), 21 layers")
    register("mbv2-tiny", Preset("mbv2", TINY, "mbv2 shrunk to 4 layers and 8-16 channels for 8x8 inputs (CPU tests)"))


@hookimpl
def nasfw_register_selectors(register: Any) -> None:
    register("sample-best", SampleBestSelector,
             description="sample architectures from the mixing weights (Gumbel-max), keep the most accurate one")
