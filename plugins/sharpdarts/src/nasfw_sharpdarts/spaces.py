"""The sharpDARTS cell spaces: the DARTS cell space with sharpDARTS' op lists and SharpSepConv ops.

Nothing of the DARTS space is edited: :class:`SharpSpace` subclasses it, sets sharpDARTS' primitive
list and maps the genotype op names to this plugin's registered ops through ``op_impl`` (so e.g.
``dil_conv_3x3`` is a dilated SharpSepConv, as with the official ``--ops OPS``), and adds the choke
ops' middle width.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from nasfw.components import Preset
from nasfw.data import DataShape
from nasfw.genotype import Genotype
from nasfw_sharpdarts.ops import CHOKE_OPS, DEFAULT_CHOKE_MID, SHARP_OP_IMPL, with_mid
from nasfw_sharpdarts.presets import SHARP_SPACE_PRESETS
from nasfw_space_darts.network import DartsNetwork
from nasfw_space_darts.space import DartsConfig, DartsSpace

#: sharpDARTS' ``PRIMITIVES`` (the default search space: 3×3-based ops, no avg pool)
SHARP_PRIMITIVES = ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3", "dil_conv_3x3", "flood_conv_3x3",
                    "dil_flood_conv_3x3", "choke_conv_3x3", "dil_choke_conv_3x3"]
#: sharpDARTS' ``SHARPER_PRIMITIVES`` (12 ops)
SHARPER_PRIMITIVES = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                      "sep_conv_7x7", "dil_conv_3x3", "dil_conv_5x5", "flood_conv_3x3", "flood_conv_5x5",
                      "dil_flood_conv_3x3"]
#: DARTS' 8 ops (``--primitives DARTS_PRIMITIVES --ops OPS``: the SharpSepConvDARTS search)
DARTS_PRIMITIVES = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                    "dil_conv_3x3", "dil_conv_5x5"]


class SharpConfig(DartsConfig):
    primitives: list[str] = Field(default_factory=lambda: list(SHARP_PRIMITIVES), min_length=1,
                                  description="candidate ops of every edge")
    op_impl: dict[str, str] = Field(default_factory=lambda: dict(SHARP_OP_IMPL),
                                    description="genotype op name -> registered operation implementing it")
    mid_channels: int = Field(default=DEFAULT_CHOKE_MID, ge=1,
                              description="C_mid of the choke ops (sharpDARTS' --mid_channels: 32 CIFAR, 96 ImageNet)")


class SharpSpace(DartsSpace):
    """DARTS cells over sharpDARTS' ops (SharpSepConv convs, resizable pools, choke/flood widths)."""

    Config = SharpConfig
    config: SharpConfig
    presets = SHARP_SPACE_PRESETS

    def op_factory(self, name: str) -> Any:
        return self._factory(name, self.config.mid_channels)

    def _factory(self, name: str, mid: int) -> Any:
        factory = super().op_factory(name)
        if self.config.op_impl.get(name, name) in CHOKE_OPS:
            return with_mid(factory, mid)
        return factory

    def build_network(self, genotype: Genotype, shape: DataShape, C: int = 36, layers: int = 20,
                      auxiliary: bool = True, imagenet: bool = False, mid_channels: int | None = None,
                      **options: Any) -> DartsNetwork:
        """The stand-alone network; ``mid_channels`` overrides the choke width for final training."""
        if mid_channels is None or mid_channels == self.config.mid_channels:
            return super().build_network(genotype, shape, C, layers, auxiliary, imagenet, **options)
        alt = self.__class__(self.config.model_copy(update={"mid_channels": mid_channels}), self.ctx)
        alt.name = self.name
        return alt.build_network(genotype, shape, C, layers, auxiliary, imagenet, **options)


PRESETS: dict[str, Preset] = {
    "sharper": Preset("sharp", {"primitives": SHARPER_PRIMITIVES},
                      "sharpDARTS' SHARPER_PRIMITIVES (12 ops: 3/5/7 sep, dil, flood) over SharpSepConv"),
    "darts-ssc": Preset("sharp", {"primitives": DARTS_PRIMITIVES},
                        "DARTS' 8 ops built as SharpSepConv (dil_conv = dilated SSC): SharpSepConvDARTS' space"),
}
