"""Entry point of nasfw-zarts."""

from __future__ import annotations

from typing import Any

from nasfw import hookimpl
from nasfw_zarts.optimizer import ZartsGLD, ZartsMGS, ZartsRS


@hookimpl
def nasfw_register_optimizers(register: Any) -> None:
    register("zarts-mgs", ZartsMGS, description="ZARTS MGS: importance-weighted Gaussian samples around -grad")
    register("zarts-rs", ZartsRS, description="ZARTS RS: antithetic random-direction gradient estimate")
    register("zarts-gld", ZartsGLD, description="ZARTS GLD: gradientless descent with radius halving")
