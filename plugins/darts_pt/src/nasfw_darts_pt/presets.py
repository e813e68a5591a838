"""The ``paper`` and ``tiny`` presets of the perturbation selector, each value with its source in the official
code, ruocwang/darts-pt @ 4ec3149 (as read in ``shared/methods/zarts_dartspt.md`` §4.4-4.5): ``sota/cnn/``
holds the DARTS-space search and projection, ``nasbench201/`` the NAS-Bench-201 ones."""

from __future__ import annotations

from typing import Any

from nasfw.presets import Cited, Recipe

_REPO = "ruocwang/darts-pt@4ec3149 "
_CNN = _REPO + "sota/cnn/"
_NB = _REPO + "nasbench201/"


def _on_nb201(config: Any) -> bool:
    return getattr(getattr(config, "space", None), "name", "") == "nb201"


def paper(config: Any) -> Recipe:
    """DARTS+PT on the DARTS space (s5, 7 ops) or on NAS-Bench-201, by the run's space."""
    nb = _on_nb201(config)
    fixed = getattr(getattr(config, "selector", None), "name", "") == "perturb-fixed-alpha"
    proj = (_NB if nb else _CNN) + "projection.py"
    search = (_NB if nb else _CNN) + "train_search.py"
    params: dict[str, Any] = {
        "tune_epochs": Cited(5, f"{search} --proj_intv 5 (tuning epochs between projections)"),
        "tune_epochs_after_last": Cited(1, f"{proj}: tune_epochs = proj_intv·num_projs + 1 (one epoch after the "
                                           f"last projection)" if not nb else f"{proj}: projections at epochs "
                                           f"0, 5, …, 20 and 24 of 25"),
        "tune_lr": Cited(0.0025, f"{proj}: SGD at learning_rate/10 = 0.0025; the cosine scheduler is never stepped"),
        "criterion": Cited("acc", f"{search} --proj_crit_normal/--proj_crit_reduce/--proj_crit_edge acc"),
        "edge_order": Cited("random", f"{search} --edge_decision random"),
        "bn_mode": Cited("train", f"{proj}: model.train() during the projection evaluations (batch statistics)"),
        "eval_batches": Cited(None, f"{proj}: every projection evaluates the whole validation split"),
        "update_alpha": Cited(not fixed, f"{proj}: α keeps its 1st-order DARTS Adam step while tuning (DARTS+PT)"
                              if not fixed else "DARTS-PT (fix α), the paper's 'blank' variant: α frozen"),
        "zero_ops": Cited(False, "space s5: the DARTS space without 'none' (7 ops)"),
    }
    run: dict[str, Any] = {
        "search.epochs": Cited(100 if nb else 50, f"{search}: PT resumes from the epoch-{100 if nb else 50} "
                                                 f"supernet checkpoint"),
        "search.batch_size": Cited(64, f"{search} --batch_size 64 (train and val streams)"),
        "seed": Cited(0 if nb else 2, f"{_REPO}scripts: seed {0 if nb else 2} for "
                                      f"{'NAS-Bench-201' if nb else 'the DARTS space and S1-S4'}"),
    }
    if nb:
        params["tune_epochs_before_last"] = Cited(4, f"{proj}: the last projection at epoch 24, 4 after the 5th")
    return Recipe(source="DARTS-PT (Wang et al., ICLR 2021), official projection code on "
                         f"{'NAS-Bench-201' if nb else 'the DARTS space'}", params=params, run=run,
                  notes="the official DARTS space is s5 = nasfw's darts-7op (no 'none')" if not nb else "")


TINY = Recipe(source="nasfw: the smallest settings at which every decision is still made",
              params={"tune_epochs": Cited(1, "one tuning epoch"), "tune_steps": Cited(1, "of one step"),
                      "eval_batches": Cited(1, "one evaluation batch")})
