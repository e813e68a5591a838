"""The DARTS cell search space for nasfw."""

from nasfw_space_darts.space import PRIMITIVES, DartsSpace

__all__ = ["PRIMITIVES", "DartsSpace"]
