"""The ``paper`` and ``tiny`` presets of the ZARTS optimizers, every value with the line of the official code
it comes from: vicFigure/ZARTS @ 38bb2a6 (the only commit). ``train_search.py`` is the MGS search,
``script/run_search.sh`` its DARTS-space invocation (space s6 = nasfw's ``darts-7op``),
``script/run_search_rdarts.sh`` the RobustDARTS one (s1-s4), ``loss_landscape/vis_optimzation.py`` the only
code of RS and GLD (and of a correct inner loop).
"""

from __future__ import annotations

from typing import Any

from nasfw.presets import Cited, Recipe

_REPO = "vicFigure/ZARTS@38bb2a6 cnn/"
_TS = _REPO + "train_search.py"
_SH = _REPO + "script/run_search.sh"
_RD = _REPO + "script/run_search_rdarts.sh"
_VIS = _REPO + "loss_landscape/vis_optimzation.py"

#: what all three share: the search protocol of train_search.py / run_search.sh
COMMON: dict[str, Any] = {
    "w_lr": Cited(0.025, f"{_TS}:37 --learning_rate"),
    "lr_schedule": Cited({"name": "cosine", "params": {"min_lr": 0.001}},
                         f"{_TS}:38 --learning_rate_min, :189 CosineAnnealingLR(epochs, eta_min)"),
    "w_momentum": Cited(0.9, f"{_TS}:39 --momentum"),
    "w_weight_decay": Cited(3e-4, f"{_TS}:40 --weight_decay"),
    "grad_clip": Cited(5.0, f"{_TS}:53 --grad_clip, :420 clip_grad_norm_"),
    "warmup_epochs": Cited(10, f"{_SH}:9 WARMUP=10 (--warmup, {_TS}:60)"),
    "inner_steps": Cited(10, f"{_SH}:10 ITERW=10 (--iter_w: inner steps, {_TS}:353)"),
    "update_every": Cited(10, f"{_TS}:337 'step % args.iter_w == 0' (the same iter_w sets the period)"),
    "inner_batch_size": Cited(48, f"{_TS}:158 train_weight_queue batch_size=48"),
    "inner_split": Cited("val", f"{_TS}:160 indices[split:num_train] (the α split; :155 the train split is "
                                f"commented out)"),
    "inner_lr": Cited(0.001, f"{_VIS}:531 fresh SGD lr 0.001 (train_search.py's inner loop steps the main "
                             f"optimizer instead: the released bug)"),
    "inner_momentum": Cited(0.0, f"{_VIS}:38 --momentum default 0.0, :532"),
    "inner_weight_decay": Cited(3e-4, f"{_VIS}:39 --weight_decay, :533"),
    "inner_grad_clip": Cited(5.0, f"{_TS}:480 / {_VIS}:258 clip_grad_norm_(args.grad_clip) in train_weight"),
}

#: run-level settings of the paper's CIFAR-10 search (the network size, 8 cells / C = 16 as train_search.py:44-45,
#: is the space's own ``paper`` preset)
RUN: dict[str, Any] = {
    "search.epochs": Cited(50, f"{_SH}:6 EPOCHS=50"),
    "search.batch_size": Cited(64, f"{_TS}:36 --batch_size (train and α streams, :150, :163)"),
}

MGS_PAPER = Recipe(
    source="ZARTS (Wang et al., NeurIPS 2022); official train_search.py + script/run_search.sh (DARTS space, s6)",
    params={**COMMON,
            "num_samples": Cited(4, f"{_SH}:11 SAMPLE=4"),
            "std": Cited(0.025, f"{_SH}:12 STD=0.025"),
            "std_decay": Cited("cosine", f"{_SH}:13 STD_DECAY_TYPE='cosine'"),
            "tau": Cited(0.01, f"{_SH}:14 TAU=0.01"),
            "lamb": Cited(1e-3, f"{_TS}:66 --lamb")},
    run=RUN,
    notes="run_search.sh uses space s6 (nasfw: --space darts-7op); on s1-s4 STD=0.2 (run_search_rdarts.sh:13)",
)

MGS_PAPER_RDARTS = Recipe(
    source="ZARTS; official train_search.py + script/run_search_rdarts.sh (RobustDARTS s1-s4)",
    params={**MGS_PAPER.params, "std": Cited(0.2, f"{_RD}:13 STD=0.2")},
    run=RUN,
)

RS_PAPER = Recipe(
    source="ZARTS-RS: the authors' only RS code, optimize_rs in loss_landscape/vis_optimzation.py (a 2-D "
           "visualisation; nasfw moves in the full α space), with train_search.py's search protocol",
    params={**COMMON,
            "num_samples": Cited(4, f"{_VIS}:66 --num_sample"),
            "rs_delta": Cited(0.1, f"{_VIS}:73 --rs_delta"),
            "rs_lr": Cited(1e-4, f"{_VIS}:72 --rs_lr"),
            "estimator": Cited("antithetic", f"{_VIS}:77 --rs_anti True"),
            "directions": Cited("sphere", f"{_VIS}:76 --rs_dist 'uniform' (on the sphere)")},
    run=RUN,
)

GLD_PAPER = Recipe(
    source="ZARTS-GLD: the authors' only GLD code, optimize_gld in loss_landscape/vis_optimzation.py (a 2-D "
           "visualisation; nasfw moves in the full α space), with train_search.py's search protocol",
    params={**COMMON,
            "max_radius": Cited(0.13, f"{_VIS}:75 --rs_maxr"),
            "radius_error": Cited(0.01, f"{_VIS}:74 --rs_error"),
            "num_radii": Cited(None, f"{_VIS}:503-515 ⌊log2(R/r)⌋+1 from the space (DARTS 15, S1/S2 14, NB201 13)"),
            "baseline": Cited("plain", f"{_VIS}:493, :511 best_loss = base_loss of the unadapted supernet")},
    run=RUN,
)

#: the smallest settings at which a ZARTS optimizer still moves α (the "every method acts" matrix)
TINY = Recipe(
    source="nasfw: the smallest settings at which α still moves",
    params={"warmup_epochs": Cited(0, "α must move in a 1-epoch run"),
            "update_every": Cited(1, "an α update at every weight step"),
            "inner_steps": Cited(1, "one scratch step per sample"),
            "num_samples": Cited(2, "two samples"),
            "inner_batch_size": Cited(8, "small scratch batches")},
)

GLD_TINY = Recipe(source=TINY.source, params={**TINY.params, "num_radii": Cited(2, "two radii")})


def on_robust_darts(config: object) -> bool:
    space = getattr(config, "space", None)
    return getattr(space, "name", "") in ("s1", "s2", "s3", "s4")
