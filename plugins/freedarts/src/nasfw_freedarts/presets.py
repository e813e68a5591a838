"""The ``paper`` and ``tiny`` presets of the FreeDARTS selectors: the official notebooks' settings
(anonymous-submission1991/FreeDARTS @ b64bfdc), which differ between the NB201 and the DARTS-space notebooks."""

from __future__ import annotations

from typing import Any

from nasfw.presets import Cited, Recipe

_REPO = "anonymous-submission1991/FreeDARTS@b64bfdc"


def _nb(measure: str) -> str:
    return f"{_REPO} NAS_Bench201/exps/algos/FreeDARTS_{measure}_oneshot.ipynb"


def _dc(measure: str) -> str:
    return f"{_REPO} DARTS_CNN/FreeDARTS_{measure}_oneshot.ipynb"


def _on_nb201(config: Any) -> bool:
    return getattr(getattr(config, "space", None), "name", "") == "nb201"


def paper(measure: str, config: Any) -> Recipe:
    """The notebook of ``measure`` (synflow, snip, grasp) for the run's space (NB201 or the DARTS space)."""
    nb = _on_nb201(config)
    name = {"synflow": "SynFlow", "snip": "SNIP", "grasp": "GraSP"}[measure]
    src = _nb(name) if nb else _dc(name)
    params: dict[str, Any] = {}
    run: dict[str, Any] = {}
    if measure == "synflow":
        params["dtype"] = Cited("float32", f"{src} cell 0: torch.ones([1] + input_dim).float()")
        params["abs_alpha"] = Cited(nb, f"{src}: |state_dict| in place; α is " + (
            "an nn.Parameter there, so it turns absolute" if nb else "a plain tensor there, so it keeps its signs"))
        params["alpha_value"] = Cited(None, f"{src}: committed α init 1e-3·N(0,1) (the saved NB201 output used ones)")
        run["seed"] = Cited(4 if nb else 0, f"{src} cell 0 " + ("--rand_seed 4" if nb else "--seed 0"))
    else:
        params["batch_size"] = Cited(64, f"{src} " + ("config batch_size 64 (methods note §1.2)" if nb
                                                      else "cell 0 --batch_size 64"))
        params["abs_weights"] = Cited(not nb, f"{src}: " + ("weights left signed" if nb
                                                           else "|θ| first, as in the SynFlow notebook"))
        run["seed"] = Cited(4 if nb else 9, f"{src} cell 0 " + ("--rand_seed 4" if nb else "--seed 9"))
        if measure == "grasp":
            params["variant"] = Cited("nb201" if nb else "darts", f"{src}: the notebook's Adam pre-step on α")
            params["adam_lr"] = Cited(3e-2 if nb else 3e-4, f"{src} cell 0 --arch_learning_rate")
    return Recipe(source=f"FreeDARTS v2 (arXiv 2106.11542v2), {name}-α notebook on "
                         f"{'NAS-Bench-201' if nb else 'the DARTS space'}", params=params, run=run,
                  notes="the notebooks score CIFAR-10 batches; set --dataset cifar10 for the paper's data"
                        + ("; SynFlow keeps bn=eval: the notebooks' train-mode BN (bn=batch) has no signal on the "
                           "DARTS space (README)" if measure == "synflow" and not nb else ""))


def tiny(measure: str) -> Recipe | None:
    """A small labelled batch (SynFlow needs no data)."""
    if measure == "synflow":
        return None
    return Recipe(source="nasfw: smallest acting settings", params={"batch_size": Cited(8, "CPU test size")})
