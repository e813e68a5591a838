"""Entry point of nasfw-drnas."""

from __future__ import annotations

from typing import Any

from nasfw import hookimpl
from nasfw.components import Preset
from nasfw_drnas.dirichlet import DirichletMean
from nasfw_drnas.optimizer import DrNASOptimizer
from nasfw_drnas.paper import preset_params


@hookimpl
def nasfw_register_optimizers(register: Any) -> None:
    register("drnas", DrNASOptimizer, description="DrNAS: Dirichlet mixing weights (elu(β)+1) trained by pathwise "
                                                  "samples, L2/KL pull towards Dir(1)")
    register("drnas-paper", Preset("drnas", preset_params(), "DrNAS with the paper's NB201 protocol values"))


@hookimpl
def nasfw_register_edge_weightings(register: Any) -> None:
    register("dirichlet-mean", DirichletMean, description="DrNAS' Dirichlet mean (elu(β)+1)/Σ as mixing weights; "
                                                          "ranks by softmax(β)")
